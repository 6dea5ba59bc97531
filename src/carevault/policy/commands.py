"""`carevault policy check FILE` and `carevault policy render FILE`: the privacy policy as code;
`carevault policy post FILE`, `policy versions` and `policy render [--version N]`: its versions.

Registered on the command line by cli.py. `check` and `render FILE` do not open the data folder:
a policy file is checked and rendered on its own, so an author can work on it before deploying
it. `post` checks the file the same way, then stores it as the deployment's next version (as a
named system actor, audited); `versions` lists them; `render` without a file shows the
deployment's version in effect (or version N) with its posting dates.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.identity.models import system_actor
from carevault.identity.permissions import Purpose
from carevault.policy.bases import Basis
from carevault.policy.loader import PolicyError, load_policy, read_policy_text
from carevault.policy.model import PrivacyPolicy
from carevault.policy.render import Format, render_notice

if TYPE_CHECKING:
    from carevault.runtime import Runtime

Opener = Callable[[], AbstractContextManager["Runtime"]]
_FILE = Annotated[Path, typer.Argument(help="The policy file (YAML)", show_default=False)]
POSTER = "policy post (command line)"


def summary(policy: PrivacyPolicy) -> str:
    doc = policy.document
    allowed = sum(1 for b in Basis if policy.basis(b).allowed)
    counts = [
        (len(doc.categories), "categories"),
        (len(doc.purposes), "purposes"),
        (len(doc.recipients), "recipients"),
        (allowed, "bases allowed"),
        (len(Basis) - allowed, "refused"),
        (len(doc.minimum_necessary), "minimum-necessary profiles"),
        (len(doc.retention), "retention rules"),
        (len(doc.rights), "rights"),
        (len(doc.notices), "notices"),
    ]
    return f"ok: {doc.name} ({', '.join(f'{n} {label}' for n, label in counts)})"


def _load(file: Path, err: Console) -> PrivacyPolicy:
    try:
        return load_policy(file)
    except PolicyError as exc:
        raise _refused(exc, file, err) from None


def _refused(exc: PolicyError, file: Path, err: Console) -> typer.Exit:
    if not exc.issues:
        err.print(f"error: {exc.message}", markup=False, highlight=False)
    else:
        err.print(f"error: {file.name}: {len(exc.issues)} problem(s)", markup=False)
        for path, message in exc.issues:
            err.print(f"  {path}: {message}", markup=False, highlight=False)
    return typer.Exit(2)


def register(app: typer.Typer, opened: Opener) -> None:
    policy_app = typer.Typer(no_args_is_help=True, help="The privacy policy as code.")
    app.add_typer(policy_app, name="policy")
    err = Console(stderr=True, soft_wrap=True)

    @policy_app.command("check")
    def check(file: _FILE) -> None:
        """Validate a policy file: its schema, cross-references and contradictions (exit 2)."""
        typer.echo(summary(_load(file, err)))

    @policy_app.command("post")
    def post(file: _FILE) -> None:
        """Post a new version of the deployment's policy: checked like `check` (exit 2, nothing
        stored); it takes effect after the days the policy in effect gives; tenants are told."""
        with opened() as rt:
            try:
                text = read_policy_text(file)
                actor = system_actor(VENDOR_CHAIN, POSTER, Purpose.HSYSADMIN)
                version = rt.policy_posts.post(actor, text, file.name)
            except PolicyError as exc:
                raise _refused(exc, file, err) from None
        assert version.effective_at is not None  # a posted version has its dates
        typer.echo(
            f"posted: {version.policy.name} version {version.version} "
            f"(sha256 {version.sha256[:12]}); takes effect {version.effective_at.isoformat()}; "
            f"tenants notified: {version.tenants_notified}"
        )

    @policy_app.command("versions")
    def versions() -> None:
        """Every version of the deployment's policy: when posted, when in effect, its state."""
        with opened() as rt:
            actor = system_actor(VENDOR_CHAIN, "policy versions (command line)", Purpose.HCOMPL)
            listed = rt.policy_posts.listed(actor)
        # plain tab-separated lines: scripts (and auditors' spreadsheets) read this
        for v in listed:
            typer.echo(
                f"{v.version}\t{v.state}\t{v.posted_at or '-'}\t{v.effective_at or '-'}\t"
                f"{v.name}\t{v.sha256[:12]}\t{v.posted_by}"
            )

    @policy_app.command("render")
    def render(
        file: Annotated[
            Path | None,
            typer.Argument(
                help="The policy file (YAML); none: the deployment's version", show_default=False
            ),
        ] = None,
        version: Annotated[
            int | None,
            typer.Option(help="A posted version of the deployment (default: the one in effect)"),
        ] = None,
        format: Annotated[Format, typer.Option("--format", help="Output format")] = (
            Format.MARKDOWN
        ),
        out: Annotated[
            Path | None, typer.Option(help="Write the notice to this file (default: stdout)")
        ] = None,
    ) -> None:
        """Render the human-readable privacy notice (Markdown or HTML) from a policy file, or
        the deployment's version with the dates it was posted and takes effect."""
        if file is not None and version is not None:
            err.print("error: give a policy file or --version, not both", markup=False)
            raise typer.Exit(2)
        if file is not None:
            text = render_notice(_load(file, err), format)
        else:
            with opened() as rt:
                text = rt.policy_posts.notice(version, format)
        if out is None:
            typer.echo(text, nl=False)
            return
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            err.print(f"error: cannot write {out}: {exc.strerror}", markup=False)
            raise typer.Exit(2) from None
        typer.echo(f"wrote {out} ({format.value})")
