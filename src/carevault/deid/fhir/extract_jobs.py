"""A research extract asked for over HTTP: the export of export.py, run as a job of the
export worker (privacy/bulk_jobs.py), its files sealed there for the requester to fetch.

The extract is made in a work folder inside the job's own (0700) and each file is sealed
as soon as the export is done, then the work folder is removed: the plaintext lives only
while the job runs. A residual finding withholds the extract: the job fails and keeps only
its report, which names kinds and counts, never a value.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from carevault.deid.fhir.export import (
    ExportOptions,
    ResidualFound,
    check_options,
    export,
)
from carevault.deid.report import REPORT_NAME, ExportReport
from carevault.errors import Forbidden, Invalid
from carevault.identity.models import Actor
from carevault.identity.permissions import Role
from carevault.privacy.bulk_jobs import JobFailed, JobFiles, OutputFile
from carevault.runtime import Runtime

LEVEL = "deid"
"""The kind of job in the export jobs table."""
ALLOWED_ROLES = frozenset({Role.PRIVACY_OFFICER})
PROFILES = ("safe-harbor", "limited-data-set")
"""Over HTTP, only the shipped profiles: a profile file's path is for the command line."""
WORK = "work"
DICTIONARY = "data-dictionary.json"


@dataclass(frozen=True)
class ExtractRequest:
    profile: str = "safe-harbor"
    fmt: str = "ndjson"
    project: str = "default"
    purpose: str = "research"
    style: str = "tag"


def start_extract(rt: Runtime, actor: Actor, request: ExtractRequest, request_url: str) -> str:
    """Check the request now (refusals are the kick-off's answer), queue the job; its id."""
    if actor.role not in ALLOWED_ROLES:
        raise Forbidden("de-identified extracts are released to the privacy officer")
    if request.profile not in PROFILES:
        raise Invalid(f"the profile is one of {', '.join(PROFILES)}")
    options = ExportOptions(
        rt.identity.tenant(actor.tenant_id).slug, Path(WORK), request.profile, request.fmt,
        request.project, request.purpose, style=request.style,
        notes_model=rt.settings.deid_notes_model, requested_by=actor.user_id,
    )  # fmt: skip
    check_options(rt, options)

    def produce(files: JobFiles) -> tuple[OutputFile, ...]:
        return produce_extract(rt, replace(options, out=files.folder / WORK), files)

    return rt.exports.start(actor, LEVEL, request_url, produce)


def produce_extract(rt: Runtime, options: ExportOptions, files: JobFiles) -> tuple[OutputFile, ...]:
    """Make the extract in `options.out` (inside the job's folder), seal it, remove it."""
    done = 0

    def advance(patients: int) -> None:
        nonlocal done
        done += patients
        files.progress(done)  # stops the export if the job was cancelled

    try:
        try:
            report = export(rt, options, advance)
        except ResidualFound as exc:
            kept = (_seal(files, options.out, REPORT_NAME, "report", 1, None),)
            raise JobFailed(
                "the residual scan found original identifying values in the extract; "
                f"nothing was released (kinds: {_kinds(exc.report)}; see {REPORT_NAME})",
                kept,
            ) from None
        return _seal_all(files, options.out, report)
    finally:
        shutil.rmtree(options.out, ignore_errors=True)


def _seal_all(files: JobFiles, out: Path, report: ExportReport) -> tuple[OutputFile, ...]:
    """Every file of the extract, sealed under a flat name (`Patient/part-00000.parquet`
    is served as `Patient.part-00000.parquet`), with its count and digest; the report last."""
    sealed = []
    for relative, sha256 in sorted(report.files.items()):
        if relative == DICTIONARY:
            sealed.append(_seal(files, out, relative, "dictionary", 1, sha256))
        elif relative.endswith(".parquet"):
            rows = pq.ParquetFile(out / relative).metadata.num_rows
            sealed.append(_seal(files, out, relative, relative.split("/")[0], rows, sha256))
        else:
            rtype = relative.removesuffix(".ndjson")
            sealed.append(_seal(files, out, relative, rtype, report.per_type[rtype], sha256))
    sealed.append(_seal(files, out, REPORT_NAME, "report", 1, None))
    return tuple(sealed)


def _seal(
    files: JobFiles, out: Path, relative: str, kind: str, count: int, sha256: str | None
) -> OutputFile:
    name = relative.replace("/", ".")
    writer = files.sealed(name)
    try:
        with (out / relative).open("rb") as source:
            while chunk := source.read(1 << 20):
                writer.write(chunk)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return OutputFile(kind, name, count, sha256)


def _kinds(report: ExportReport) -> str:
    found = report.residual_scan.get("findings", [])
    return ", ".join(sorted({str(f.get("kind")) for f in found})) or "unknown"
