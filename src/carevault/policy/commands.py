"""`carevault policy check FILE` and `carevault policy render FILE`: the privacy policy as code.

Registered on the command line by cli.py. Neither command opens the data folder: a policy file
is checked and rendered on its own, so an author can work on it before deploying it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from carevault.policy.bases import Basis
from carevault.policy.loader import PolicyError, load_policy
from carevault.policy.model import PrivacyPolicy
from carevault.policy.render import Format, render_notice

_FILE = Annotated[Path, typer.Argument(help="The policy file (YAML)", show_default=False)]


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
        if not exc.issues:
            err.print(f"error: {exc.message}", markup=False, highlight=False)
        else:
            err.print(f"error: {file.name}: {len(exc.issues)} problem(s)", markup=False)
            for path, message in exc.issues:
                err.print(f"  {path}: {message}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def register(app: typer.Typer) -> None:
    policy_app = typer.Typer(no_args_is_help=True, help="The privacy policy as code.")
    app.add_typer(policy_app, name="policy")
    err = Console(stderr=True, soft_wrap=True)

    @policy_app.command("check")
    def check(file: _FILE) -> None:
        """Validate a policy file: its schema, cross-references and contradictions (exit 2)."""
        typer.echo(summary(_load(file, err)))

    @policy_app.command("render")
    def render(
        file: _FILE,
        format: Annotated[Format, typer.Option("--format", help="Output format")] = (
            Format.MARKDOWN
        ),
        out: Annotated[
            Path | None, typer.Option(help="Write the notice to this file (default: stdout)")
        ] = None,
    ) -> None:
        """Render the human-readable privacy notice (Markdown or HTML) from a policy file."""
        text = render_notice(_load(file, err), format)
        if out is None:
            typer.echo(text, nl=False)
            return
        try:
            out.write_text(text, encoding="utf-8")
        except OSError as exc:
            err.print(f"error: cannot write {out}: {exc.strerror}", markup=False)
            raise typer.Exit(2) from None
        typer.echo(f"wrote {out} ({format.value})")
