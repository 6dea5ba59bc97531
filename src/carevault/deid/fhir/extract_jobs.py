"""A research extract asked for over HTTP: the export of export.py, run as a job of the
export worker (privacy/bulk_jobs.py), written sealed into the job's folder as it is made
(writers.Output), so no plaintext of it is ever on disk; the requester fetches each file
once. A residual finding withholds the extract: the job fails and keeps only its report,
which names kinds and counts, never a value.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from carevault.deid.fhir.export import (
    ExportOptions,
    ResidualFound,
    check_options,
    export,
)
from carevault.deid.fhir.writers import DICTIONARY
from carevault.deid.report import REPORT_NAME, ExportReport
from carevault.errors import Forbidden, Invalid
from carevault.identity.models import Actor
from carevault.privacy.bulk_jobs import JobFailed, JobFiles, OutputFile
from carevault.privacy.deid_release import REQUESTER_ROLES
from carevault.runtime import Runtime

LEVEL = "deid"
"""The kind of job in the export jobs table."""
PROFILES = ("safe-harbor", "limited-data-set")
"""Over HTTP, only the shipped profiles: a profile file's path is for the command line."""


@dataclass(frozen=True)
class ExtractRequest:
    profile: str = "safe-harbor"
    fmt: str = "ndjson"
    project: str = "default"
    purpose: str = "research"
    style: str = "tag"


def start_extract(rt: Runtime, actor: Actor, request: ExtractRequest, request_url: str) -> str:
    """Check the request now (refusals are the kick-off's answer), queue the job; its id."""
    if actor.role not in REQUESTER_ROLES:
        raise Forbidden("de-identified extracts are released to the privacy officer")
    if request.profile not in PROFILES:
        raise Invalid(f"the profile is one of {', '.join(PROFILES)}")
    options = ExportOptions(
        rt.identity.tenant(actor.tenant_id).slug, Path(), request.profile, request.fmt,
        request.project, request.purpose, style=request.style,
        notes_model=rt.settings.deid_notes_model, requested_by=actor.user_id,
    )  # fmt: skip
    check_options(rt, options)

    def produce(files: JobFiles) -> tuple[OutputFile, ...]:
        return produce_extract(rt, options, files)

    return rt.exports.start(actor, LEVEL, request_url, produce)


def produce_extract(rt: Runtime, options: ExportOptions, files: JobFiles) -> tuple[OutputFile, ...]:
    """Make the extract, sealed, in the job's folder; list its files, the report last."""
    options = replace(options, out=files.folder, sealed_job=files.job_id)
    done = 0

    def advance(patients: int) -> None:
        nonlocal done
        done += patients
        files.progress(done)  # stops the export if the job was cancelled

    report_file = OutputFile("report", REPORT_NAME, 1)
    try:
        report = export(rt, options, advance)
    except ResidualFound as exc:
        raise JobFailed(
            "the residual scan found original identifying values in the extract; "
            f"nothing was released (kinds: {_kinds(exc.report)}; see {REPORT_NAME})",
            (report_file,),
        ) from None
    return (*(_listed(name, sha256, report) for name, sha256 in report.files.items()),
            report_file)  # fmt: skip


def _listed(name: str, sha256: str, report: ExportReport) -> OutputFile:
    if name == DICTIONARY:
        return OutputFile("dictionary", name, 1, sha256)
    return OutputFile(name.split(".", 1)[0], name, report.rows[name], sha256)


def _kinds(report: ExportReport) -> str:
    found = report.residual_scan.get("findings", [])
    return ", ".join(sorted({str(f.get("kind")) for f in found})) or "unknown"
