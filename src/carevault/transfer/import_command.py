"""`carevault import`: FHIR NDJSON and Bundle files into a tenant, through the gate, with a
progress bar; refused items are listed as `file:line: reason` (no values: no PHI)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from carevault.audit.models import RequestInfo
from carevault.identity.models import system_actor
from carevault.privacy.importer import ImportReport, OnError
from carevault.runtime import Runtime
from carevault.transfer.sources import UnreadableFile, expand

IMPORT_REASON = "import"


class RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} resources/s" if speed else "", style="progress.data.speed")


class BarProgress:
    """The importer's phases as rich progress bars (checking, then writing)."""

    def __init__(self, bar: Progress) -> None:
        self._bar = bar
        self._task: TaskID | None = None

    def phase(self, name: str, total: int | None) -> None:
        if self._task is not None:
            # the hint counted blank lines too: the phase is complete at what it did
            done = next(t.completed for t in self._bar.tasks if t.id == self._task)
            self._bar.update(self._task, total=done)
            self._bar.stop_task(self._task)
        self._task = self._bar.add_task(name, total=total)

    def advance(self, count: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, count)


@contextmanager
def _progress(console: Console) -> Iterator[BarProgress]:
    columns = (TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
               RateColumn(), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console, speed_estimate_period=5) as bar:
        yield BarProgress(bar)


def run_import(
    rt: Runtime,
    paths: list[Path],
    tenant_slug: str,
    on_error: OnError,
    keep_unresolved: bool,
    console: Console,
) -> int:
    """Import the files; the exit code: 0 when every item was imported, 1 when some were
    refused (with `abort`, then nothing was written)."""
    tenant = rt.identity.tenant_by_slug(tenant_slug)
    try:
        expansion = expand(paths)
    except UnreadableFile as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}")
        return 2
    for note in expansion.skipped:
        console.print(f"note: {note}", highlight=False, markup=False)
    request = RequestInfo(request_id=f"import-{secrets.token_hex(8)}", user_agent="carevault")
    gate = rt.gate(system_actor(tenant.tenant_id, IMPORT_REASON), request)
    with _progress(console) as progress:
        report = gate.import_resources(
            expansion.sources,
            on_error=on_error,
            keep_unresolved=keep_unresolved,
            progress=progress,
        )
    if report.total_written:
        rt.refresh_statistics()  # a bulk load: let the planner see it before the first search
    _print_report(report, console)
    return 1 if report.refused else 0


def _print_report(report: ImportReport, console: Console) -> None:
    for refusal in report.refused:
        console.print(str(refusal), highlight=False, markup=False)
    if report.written:
        table = Table(box=box.SIMPLE_HEAD)
        table.add_column("type")
        table.add_column("written", justify="right")
        for rtype, count in sorted(report.written.items()):
            table.add_row(rtype, f"{count:,}")
        console.print(table)
    for rtype, count in sorted(report.unresolved_kept.items()):
        console.print(f"kept {count:,} reference(s) to {rtype} that resolve to nothing here")
    rate = report.total_written / report.seconds if report.seconds else 0.0
    if report.aborted:
        console.print(
            f"[red]{len(report.refused):,} item(s) refused: nothing was written[/red] "
            "(--on-error skip imports the rest)"
        )
    else:
        refused = f", {len(report.refused):,} refused" if report.refused else ""
        console.print(
            f"{report.total_written:,} resources imported in {report.seconds:.1f} s "
            f"({rate:,.0f}/s){refused}"
        )
