"""The proof that comes with every de-identified release: what was applied, what was removed
or transformed per identifier type, and the residual scan. Written as JSON beside the output
(`deid-report.json`); it holds names of rules, counts and digests, never a value."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from carevault.deid.fhir.writers import Output

REPORT_NAME = "deid-report.json"


@dataclass
class ExportReport:
    tenant: str
    project: str
    profile: dict[str, str]
    fmt: str
    export_date: str
    started_at: str
    status: str = "running"
    """running, complete, or failed (the residual scan found an original value, or an error)."""
    finished_at: str | None = None
    patients: int = 0
    resources: int = 0
    partitions: int = 0
    per_type: Counter[str] = field(default_factory=Counter)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    residual_scan: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    """Output file -> SHA-256 of its plaintext, so a recipient can check what they got."""
    rows: dict[str, int] = field(default_factory=dict)
    """Data file -> the resources (lines, or Parquet rows) in it."""
    seconds: float = 0.0
    dask: str | None = None
    release_id: str | None = None
    error: str | None = None
    free_text: dict[str, str] = field(default_factory=lambda: {"detector": "rules"})
    """What scrubbed the free text: the rules, or the rules and a notes model (its digest)."""

    @property
    def patients_per_second(self) -> float:
        return self.patients / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "deid-export", "status": self.status, "tenant": self.tenant,
            "project": self.project, "profile": self.profile, "format": self.fmt,
            "export_date": self.export_date, "started_at": self.started_at,
            "finished_at": self.finished_at, "patients": self.patients,
            "resources": self.resources, "partitions": self.partitions,
            "resources_per_type": dict(sorted(self.per_type.items())), "counts": self.counts,
            "residual_scan": self.residual_scan, "free_text": self.free_text,
            "files": self.files, "rows_per_file": self.rows,
            "seconds": round(self.seconds, 3),
            "patients_per_second": round(self.patients_per_second, 2),
            "dask_scheduler": self.dask, "release_id": self.release_id, "error": self.error,
        }  # fmt: skip

    def write(self, out: Output) -> None:
        out.write(REPORT_NAME, [json.dumps(self.as_dict(), indent=2).encode()])
