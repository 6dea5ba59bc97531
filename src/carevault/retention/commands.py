"""`carevault retention run|holds` and `carevault tenant offboard`.

Registered by cli.py with one line: `register(app, tenant_app, opened)`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from carevault.retention.job import RetentionJob
from carevault.retention.offboard import offboard
from carevault.retention.service import Retention

if TYPE_CHECKING:
    from carevault.runtime import Runtime

Opener = Callable[[], AbstractContextManager["Runtime"]]


def register(app: typer.Typer, tenant_app: typer.Typer, opened: Opener) -> None:
    retention_app = typer.Typer(no_args_is_help=True, help="Retention schedules and the job.")
    app.add_typer(retention_app, name="retention")

    @retention_app.command("run")
    def run(
        tenant: Annotated[str, typer.Option(help="The tenant's slug")],
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Report what would be deleted; change nothing")
        ] = False,
        as_of: Annotated[
            datetime | None,
            typer.Option(
                "--as-of",
                formats=["%Y-%m-%d"],
                help="With --dry-run: what a run on this day (YYYY-MM-DD, UTC) would delete",
            ),
        ] = None,
    ) -> None:
        """Delete what the policy's schedules say is due now (legal holds keep what they cover)."""
        at = as_of.replace(tzinfo=UTC) if as_of else None
        with opened() as rt:
            found = rt.identity.tenant_by_slug(tenant)
            job = RetentionJob(Retention.from_runtime(rt))
            report = job.run(found.tenant_id, dry_run=dry_run, as_of=at)
        out = Console()
        verb = "would delete" if dry_run else "deleted"
        done = report.due if dry_run else report.deleted
        for item in done:
            typer.echo(
                f"{verb}\t{item.category}\t{item.resource_type}/{item.resource_id}"
                f"\tdue {item.due_at[:10]}"
            )
        kept = Counter(k.why for k in report.kept)
        for why, count in sorted(kept.items()):
            typer.echo(f"kept\t{count}\t{why}")
        out.print(
            f"{len(done)} {verb} at {report.at}"
            + (f"; certificate {report.certificate_id}" if report.certificate_id else "")
        )

    @tenant_app.command("offboard")
    def tenant_offboard(
        tenant: Annotated[str, typer.Option(help="The tenant's slug")],
        archive: Annotated[Path, typer.Option(help="Folder for the sealed archive of its ePHI")],
        yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation")] = False,
    ) -> None:
        """Archive all the tenant's ePHI, then destroy its data (contract ended), certified."""
        if not yes:
            typer.confirm(
                f"Archive and then destroy every record of {tenant}? This cannot be undone",
                abort=True,
            )
        with opened() as rt:
            found = rt.identity.tenant_by_slug(tenant)
            report = offboard(Retention.from_runtime(rt), found.tenant_id, found.slug, archive)
        typer.echo(f"archive\t{report.archive}\tsha256 {report.archive_sha256}")
        typer.echo(f"archive key\t{report.archive_key}")
        typer.echo(f"patients shredded\t{report.patients_shredded}")
        typer.echo(f"certificate\t{report.certificate_id}")
        Console(stderr=True).print(
            "[yellow]the archive key is shown only now: hand it to the tenant apart from the "
            "archive[/yellow]"
        )
