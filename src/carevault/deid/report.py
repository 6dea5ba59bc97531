"""The proof that comes with every de-identified release: what was applied, what was removed
or transformed per identifier type, and the residual scan. Written as JSON beside the output
(`deid-report.json`); it holds names of rules, counts and digests, never a value."""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    """Output file -> SHA-256, so a recipient can check what they were given."""
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
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "patients_per_second": round(self.patients_per_second, 2),
            "dask_scheduler": self.dask, "release_id": self.release_id, "error": self.error,
        }  # fmt: skip

    def write(self, out: Path) -> Path:
        path = out / REPORT_NAME
        data = json.dumps(self.as_dict(), indent=2, sort_keys=False).encode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return path


def digests(out: Path) -> dict[str, str]:
    """SHA-256 of every output file (the report itself excepted)."""
    found = {}
    for path in sorted(p for p in out.rglob("*") if p.is_file() and p.name != REPORT_NAME):
        sha = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
        found[str(path.relative_to(out))] = sha.hexdigest()
    return found
