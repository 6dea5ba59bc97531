"""`carevault export`: a tenant's current resources as NDJSON, one file per type, via the gate.

It acts as the named system actor "ndjson export": the gate decides, decrypts and
audits each batch per patient like any export. The files are the operator's plaintext
copy, so they are created owner-only (0600) in a new owner-only directory (0700), and
a failed export removes what it wrote.
"""

from __future__ import annotations

import os
import secrets
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from carevault.audit.models import RequestInfo
from carevault.errors import Conflict
from carevault.identity.models import system_actor
from carevault.privacy.exporter import EXPORT_BATCH
from carevault.runtime import Runtime

EXPORT_REASON = "ndjson export"


@dataclass
class ExportSummary:
    directory: Path
    counts: dict[str, int] = field(default_factory=dict)
    """Resources written per type (types with none have no file)."""
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def file(self, resource_type: str) -> Path:
        return self.directory / f"{resource_type}.ndjson"


def export_tenant(
    rt: Runtime,
    tenant_slug: str,
    out: Path,
    *,
    types: Sequence[str] | None = None,
    since: str | None = None,
    console: Console | None = None,
    batch_size: int = EXPORT_BATCH,
) -> ExportSummary:
    """Write every current resource of the tenant (of `types`, changed after `since`)."""
    tenant = rt.identity.tenant_by_slug(tenant_slug)
    if out.exists():
        raise Conflict("the output directory exists already; name a new one")
    request = RequestInfo(f"export-{secrets.token_hex(8)}", user_agent="carevault export")
    gate = rt.gate(system_actor(tenant.tenant_id, EXPORT_REASON), request)
    stream = gate.export(types, since=since, batch_size=batch_size)  # refusals raised here
    total = stream.count()
    out.mkdir(mode=0o700, parents=True)
    out.chmod(0o700)
    summary = ExportSummary(out)
    files: dict[str, BinaryIO] = {}
    started = time.perf_counter()
    try:
        with _progress(console, total) as progress:
            task = progress.add_task("export", total=total, what="exporting")
            for batch in stream:
                rtype = batch.resource_type
                if rtype not in files:
                    files[rtype] = _create(summary.file(rtype))
                files[rtype].write(b"\n".join(batch.bodies) + b"\n")
                summary.counts[rtype] = summary.counts.get(rtype, 0) + len(batch.bodies)
                progress.update(task, advance=len(batch.bodies), what=rtype)
        for fh in files.values():
            fh.close()
    except BaseException:
        for fh in files.values():
            fh.close()
        shutil.rmtree(out, ignore_errors=True)  # no partial plaintext copy is left behind
        raise
    summary.seconds = time.perf_counter() - started
    return summary


def print_summary(summary: ExportSummary, console: Console) -> None:
    table = Table(title=f"exported to {summary.directory}", title_justify="left", box=box.SIMPLE)
    table.add_column("type")
    table.add_column("resources", justify="right")
    table.add_column("file")
    for rtype, count in summary.counts.items():
        table.add_row(rtype, str(count), summary.file(rtype).name)
    table.add_row("[bold]total[/bold]", f"[bold]{summary.total}[/bold]", "")
    console.print(table)
    rate = summary.total / summary.seconds if summary.seconds > 0 else 0.0
    console.print(f"{summary.total} resources in {summary.seconds:.1f} s ({rate:,.0f} per second)")


def _create(path: Path) -> BinaryIO:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def _progress(console: Console | None, total: int) -> Progress:
    columns = (
        TextColumn("{task.fields[what]:<24}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    return Progress(*columns, console=console or Console(stderr=True), transient=False)
