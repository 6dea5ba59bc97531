"""`carevault deid export | aggregate`: registered on the command line by cli.py."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

if TYPE_CHECKING:
    from carevault.runtime import Runtime

Opener = Callable[[], AbstractContextManager["Runtime"]]
err = Console(stderr=True)


def register(app: typer.Typer, opened: Opener) -> None:
    deid_app = typer.Typer(no_args_is_help=True, help="De-identified extracts and aggregates.")
    app.add_typer(deid_app, name="deid")

    @deid_app.command("export")
    def export_command(
        tenant: Annotated[str, typer.Option(help="Tenant slug")],
        out: Annotated[Path, typer.Option(help="New directory for the extract (created 0700)")],
        profile: Annotated[
            str, typer.Option(help="safe-harbor, limited-data-set, or a profile file's path")
        ] = "safe-harbor",
        format_: Annotated[str, typer.Option("--format", help="ndjson or parquet")] = "ndjson",
        project: Annotated[
            str, typer.Option(help="Research project: its pseudonyms stay stable across exports")
        ] = "default",
        purpose: Annotated[str, typer.Option(help="The policy's purpose")] = "research",
        dask: Annotated[
            str | None, typer.Option(help="Run partitioned on this dask.distributed scheduler")
        ] = None,
        style: Annotated[str, typer.Option(help="Free text: tag or surrogate")] = "tag",
        notes_model: Annotated[
            Path | None,
            typer.Option(help="A trained notes model (default: CAREVAULT_DEID_NOTES_MODEL)"),
        ] = None,
    ) -> None:
        """De-identify a tenant's patients; exit 1 if the residual scan finds anything."""
        from carevault.deid.fhir.export import ExportOptions, ResidualFound, export
        from carevault.deid.fhir.job import export_actor
        from carevault.deid.fhir.profile import ProfileError, load_profile
        from carevault.deid.text import STYLES
        from carevault.privacy.deid_cohort import patient_count

        if style not in STYLES:
            raise typer.BadParameter(" or ".join(STYLES), param_hint="--style")
        try:
            load_profile(profile)  # a bad profile stops here, naming its entry
        except ProfileError as exc:
            raise typer.BadParameter(str(exc), param_hint="--profile") from None
        options = ExportOptions(tenant, out, profile, format_, project, purpose, dask,
                                style=style)  # fmt: skip
        with opened() as rt, _bar() as bar:
            options = replace(options, notes_model=notes_model or rt.settings.deid_notes_model)
            found = rt.identity.tenant_by_slug(tenant)
            total = patient_count(rt.gate_services, export_actor(found.tenant_id))
            task = bar.add_task("de-identifying", total=total)
            try:
                report = export(rt, options, lambda n: bar.advance(task, n))
            except ResidualFound as exc:
                bar.stop()
                scan = exc.report.residual_scan
                kinds = sorted({f["kind"] for f in scan.get("findings", [])})
                err.print(f"[red]error:[/red] the residual scan found original identifying "
                          f"values ({', '.join(kinds)}); nothing was released. See "
                          f"{out / 'deid-report.json'}")  # fmt: skip
                raise typer.Exit(1) from None
        Console().print(
            f"{report.patients} patients, {report.resources} resources de-identified "
            f"({report.profile['name']} {report.profile['version']}) in {report.seconds:.1f} s "
            f"({report.patients_per_second:.1f} patients/s); residual scan clean; "
            f"report: {out / 'deid-report.json'}"
        )

    @deid_app.command("train-notes")
    def train_notes_command(
        corpus: Annotated[
            Path, typer.Option(help="Annotated notes: a folder with id.text and id-phi.phrase")
        ],
        out: Annotated[Path, typer.Option(help="New file for the model")],
        half: Annotated[
            str, typer.Option(help="odd (the tuning half: even patients stay a fair test) or all")
        ] = "odd",
        copies: Annotated[
            int, typer.Option(min=0, max=10, help="Copies of each note, names and places swapped")
        ] = 2,
    ) -> None:
        """Train the free-text model that exports add to the rules (names and places)."""
        from carevault.deid.text.training import train_from_corpus

        if half not in ("odd", "all"):
            raise typer.BadParameter("odd or all", param_hint="--half")
        if not ((corpus / "id.text").is_file() and (corpus / "id-phi.phrase").is_file()):
            raise typer.BadParameter("no id.text and id-phi.phrase there", param_hint="--corpus")
        if out.exists():
            raise typer.BadParameter("the file exists; name a new one", param_hint="--out")
        try:
            with err.status("training (a minute or two)"):
                learned = train_from_corpus(corpus, out, half=half, copies=copies)
        except (ValueError, KeyError, UnicodeDecodeError):
            out.unlink(missing_ok=True)  # (the error would quote the notes: not shown)
            raise typer.BadParameter("the corpus cannot be read: a phrase line is malformed "
                                     "or does not match its note", param_hint="--corpus",
                                     ) from None  # fmt: skip
        out.chmod(0o600)
        Console().print(f"learned from {learned} notes (copies included); model: {out}; "
                        f"use it with --notes-model or CAREVAULT_DEID_NOTES_MODEL")  # fmt: skip

    @deid_app.command("aggregate")
    def aggregate_command(
        tenant: Annotated[str, typer.Option(help="Tenant slug")],
        by: Annotated[str, typer.Option(help="Comma-separated: condition,age_band,sex,state,year")],
        out: Annotated[Path, typer.Option(help="New JSON file for the aggregate")],
        purpose: Annotated[str, typer.Option(help="The policy's purpose")] = "research",
    ) -> None:
        """Counts and rates by category, small cells suppressed; refused unless the policy
        allows de-identified data for the purpose."""
        from carevault.deid.aggregates import aggregate
        from carevault.deid.fhir.export import tenant_policy

        if out.exists():
            raise typer.BadParameter("the output file exists; name a new one", param_hint="--out")
        with opened() as rt:
            found = rt.identity.tenant_by_slug(tenant)
            dims = [d.strip() for d in by.split(",") if d.strip()]
            document = aggregate(rt, tenant_policy(rt), found.tenant_id, dims, purpose)
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(document, fh, indent=2)
        shown = sum(1 for c in document["cells"] if not c["suppressed"])
        Console().print(f"{len(document['cells'])} cells ({shown} released, "
                        f"{len(document['cells']) - shown} suppressed); release "
                        f"{document['release_id']}")  # fmt: skip


def _bar() -> Progress:
    columns = (TextColumn("{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    return Progress(*columns, console=err, transient=False)
