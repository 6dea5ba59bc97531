"""One partition of a de-identification export, as a picklable job: the same function runs
in the command's process or on a Dask worker, which opens the CareVault runtime of the data
folder it is given (the key store must be reachable there) or reuses the one registered in
its process. Only patient ids travel with a job; PHI is read through the gate where it runs."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

import orjson

from carevault.audit.models import RequestInfo
from carevault.deid.fhir.engine import Tally
from carevault.deid.fhir.partition import Pseudonyms, Scrubber, deidentify_partition
from carevault.deid.fhir.profile import load_profile
from carevault.deid.fhir.residual import ResidualScan
from carevault.deid.fhir.writers import Output, write_part
from carevault.deid.text import scrub_text
from carevault.deid.text.learned import NoteTagger
from carevault.identity.models import Actor, system_actor
from carevault.identity.permissions import Purpose
from carevault.privacy.deid_pseudonyms import DeidPseudonyms
from carevault.privacy.sealed_files import JobSealing
from carevault.runtime import Runtime
from carevault.settings import Settings

EXPORT_REASON = "de-identification export"
_RUNTIMES: dict[tuple[str, str], Runtime] = {}
_OPENED: set[tuple[str, str]] = set()  # opened by jobs (a worker's own), not registered
_LOCK = threading.Lock()


def export_actor(tenant_id: str) -> Actor:
    return system_actor(tenant_id, EXPORT_REASON, Purpose.HRESCH)


def _key(settings: Settings) -> tuple[str, str]:
    return (str(settings.home.resolve()), settings.resolved_database_url)


def register_runtime(rt: Runtime) -> None:
    """Let jobs in this process (a LocalCluster's threads) use the command's runtime."""
    with _LOCK:
        _RUNTIMES[_key(rt.settings)] = rt


def unregister_runtime(rt: Runtime) -> None:
    with _LOCK:
        _RUNTIMES.pop(_key(rt.settings), None)


def _runtime(home: str, database_url: str | None, keystore: str | None) -> Runtime:
    settings = Settings(home=Path(home), database_url=database_url,
                        keystore_path=Path(keystore) if keystore else None)  # fmt: skip
    with _LOCK:
        found = _RUNTIMES.get(_key(settings))
        if found is None:  # a remote worker: its own runtime, kept for the next jobs
            found = _RUNTIMES[_key(settings)] = Runtime(settings)
            _OPENED.add(_key(settings))
        return found


def close_worker_runtimes() -> None:
    """Close the runtimes jobs opened in this process (a worker shutting down, tests)."""
    with _LOCK:
        opened = [_RUNTIMES.pop(k) for k in list(_OPENED) if k in _RUNTIMES]
        _OPENED.clear()
    for rt in opened:
        rt.close()


@dataclass(frozen=True)
class PartitionJob:
    home: str
    database_url: str | None
    keystore: str | None
    """The data folder, database and key store, as the driver's settings name them."""
    tenant_id: str
    profile: str
    """A shipped profile's name or a profile file's path."""
    project: str
    patient_ids: tuple[str, ...]
    fmt: str
    out: str
    index: int
    export_date: str
    style: str = "tag"
    notes_model: str | None = None
    """A trained notes model (carevault deid train-notes) the free-text scrubber adds."""
    sealed_job: str | None = None
    """An export job's id: its parts are sealed for that job (writers.Output)."""


@dataclass
class PartitionSummary:
    index: int
    patients: int = 0
    resources: int = 0
    per_type: Counter[str] = field(default_factory=Counter)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)
    """Final files this partition wrote (Parquet parts): their SHA-256 and rows."""
    tally: Tally = field(default_factory=Tally)
    scan: ResidualScan = field(default_factory=lambda: ResidualScan(frozenset()))


@cache
def _tagger(path: str) -> NoteTagger:
    return NoteTagger(Path(path))  # opened once per process, whatever the partitions


def _scrubber(notes_model: str | None) -> Scrubber:
    tagger = _tagger(notes_model) if notes_model else None

    def scrub(text: str, style: str, key: bytes) -> str:
        return scrub_text(text, style=style, key=key, tagger=tagger)[0]  # type: ignore[arg-type]

    return scrub


def run_partition(job: PartitionJob) -> PartitionSummary:
    rt = _runtime(job.home, job.database_url, job.keystore)
    actor = export_actor(job.tenant_id)
    profile = load_profile(job.profile)
    store = DeidPseudonyms(rt.gate_services)
    project = store.project(actor, job.project, create=False)
    members = frozenset(job.patient_ids)
    codes = store.codes(actor, project, members)
    pseudonyms = Pseudonyms(
        codes, project.pseudonym, project.derived_key,
        lambda rid: store.codes(actor, project, [rid])[rid],
    )  # fmt: skip
    request = RequestInfo(f"deid-{secrets.token_hex(8)}", user_agent="carevault deid export")
    gate = rt.gate(actor, request)
    stream = gate.export(None, patients=members)  # decided, read and audited per patient
    bodies = [orjson.loads(b) for batch in stream for b in batch.bodies]
    result = deidentify_partition(
        profile, bodies, members, pseudonyms, date.fromisoformat(job.export_date),
        _scrubber(job.notes_model),
        style=job.style,
    )  # fmt: skip
    del bodies
    summary = PartitionSummary(job.index, result.patients, result.resources,
                               tally=result.tally, scan=result.scan)  # fmt: skip
    if result.scan.clean:  # nothing of a failed partition reaches a file
        out = output(rt, Path(job.out), job.tenant_id, job.sealed_job)
        for rtype, rows in result.outputs.items():
            name, sha256 = write_part(out, job.fmt, job.index, rtype, rows)
            summary.per_type[rtype] = len(rows)
            if job.fmt == "parquet":  # (NDJSON parts are joined into the final files)
                summary.files[name] = (sha256, len(rows))
    return summary


def output(rt: Runtime, folder: Path, tenant_id: str, sealed_job: str | None) -> Output:
    """The extract's folder: plain, or sealed for an export job under the tenant's key."""
    vault = rt.gate_services.vault
    sealing = JobSealing(vault, tenant_id, sealed_job) if sealed_job else None
    return Output(folder, sealing)
