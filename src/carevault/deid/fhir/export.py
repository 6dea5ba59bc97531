"""`carevault deid export`: a tenant's patients, de-identified under a profile, as NDJSON or
Parquet, with the report and its residual scan.

Patient by patient, in partitions of a few dozen: the driver lists ids (no PHI), draws the
partition's pseudonyms, and runs each partition (job.py) here or on a Dask cluster, with at
most a few partitions in flight, so memory stays flat whatever the tenant's size. Any
residual finding stops the run: the data files are removed and the report says "failed";
only a clean run is recorded as a release and marked complete.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from carevault.clock import isoformat
from carevault.deid.fhir.engine import Tally
from carevault.deid.fhir.job import (
    PartitionJob,
    PartitionSummary,
    export_actor,
    output,
    register_runtime,
    run_partition,
    unregister_runtime,
)
from carevault.deid.fhir.profile import Profile, ProfileError, load_profile
from carevault.deid.fhir.residual import ResidualScan
from carevault.deid.fhir.writers import FORMATS, finalize, write_dictionary
from carevault.deid.report import ExportReport
from carevault.deid.text import STYLES
from carevault.deid.text.learned import NoteTagger
from carevault.errors import Conflict, Forbidden, Invalid
from carevault.policy import PrivacyPolicy
from carevault.policy import load_profile as load_policy_profile
from carevault.privacy.deid_cohort import patient_partitions
from carevault.privacy.deid_pseudonyms import DeidPseudonyms
from carevault.privacy.deid_release import record_release
from carevault.runtime import Runtime

PARTITION_PATIENTS = 25
"""Patients per partition: one gate export (a query per type) and one pass of the engine."""

Progress = Callable[[int], None]


class ResidualFound(Exception):
    """The residual scan found original identifying values in the output (the export failed)."""

    def __init__(self, report: ExportReport) -> None:
        super().__init__("the residual scan found original identifying values; nothing released")
        self.report = report


@dataclass(frozen=True)
class ExportOptions:
    tenant: str
    out: Path
    profile: str = "safe-harbor"
    fmt: str = "ndjson"
    project: str = "default"
    purpose: str = "research"
    dask: str | None = None
    partition_patients: int = PARTITION_PATIENTS
    style: str = "tag"
    notes_model: Path | None = None
    """A trained notes model (`carevault deid train-notes`) the free-text scrubber adds."""
    requested_by: str | None = None
    """The user who asked (over HTTP), recorded with the release; None from the command line."""
    sealed_job: str | None = None
    """An export job's id: the extract is sealed as it is written into `out`, that job's own
    new folder (extract_jobs.py); None writes plain files into a new `out`."""


def tenant_policy(rt: Runtime) -> PrivacyPolicy:
    """The deployment's policy (runtime.policy once the runtime carries it)."""
    found = getattr(rt, "policy", None)
    return found if isinstance(found, PrivacyPolicy) else load_policy_profile("default")


def check_options(rt: Runtime, options: ExportOptions) -> tuple[Profile, dict[str, str]]:
    """Refuse (Invalid, Forbidden) what cannot run before anything is read: the format, the
    profile, the policy's word on the purpose, the notes model; the profile and free text."""
    if options.fmt not in FORMATS:
        raise Invalid(f"--format is one of {', '.join(FORMATS)}")
    try:
        profile = load_profile(options.profile)
    except ProfileError as exc:
        raise Invalid(str(exc)) from None
    if not tenant_policy(rt).allows_deidentified(options.purpose):
        raise Forbidden("the tenant's privacy policy does not allow de-identified data "
                        "for that purpose")  # fmt: skip
    if options.style not in STYLES:
        raise Invalid(f"the free-text style is one of {', '.join(STYLES)}")
    return profile, _free_text(options.notes_model)


def export(rt: Runtime, options: ExportOptions, progress: Progress | None = None) -> ExportReport:
    profile, free_text = check_options(rt, options)
    tenant = rt.identity.tenant_by_slug(options.tenant)
    if options.sealed_job is None and options.out.exists():
        raise Conflict("the output directory exists already; name a new one")
    actor = export_actor(tenant.tenant_id)
    store = DeidPseudonyms(rt.gate_services)
    project = store.project(actor, options.project)
    today = rt.clock.now().date()
    report = ExportReport(
        options.tenant, options.project, profile.describe(), options.fmt, today.isoformat(),
        isoformat(rt.clock.now()), dask=options.dask, free_text=free_text,
    )  # fmt: skip
    options.out.mkdir(mode=0o700, parents=True, exist_ok=options.sealed_job is not None)
    options.out.chmod(0o700)
    out = output(rt, options.out, tenant.tenant_id, options.sealed_job)
    started = time.perf_counter()
    tally, scan = Tally(), ResidualScan(profile.residual_scan)

    def jobs() -> Iterator[PartitionJob]:
        parts = patient_partitions(rt.gate_services, actor, options.partition_patients)
        for index, ids in enumerate(parts):
            store.codes(actor, project, ids)  # drawn here, one writer: no race between jobs
            yield PartitionJob(
                str(rt.settings.home), rt.settings.database_url,
                str(rt.settings.keystore_path) if rt.settings.keystore_path else None,
                tenant.tenant_id,
                options.profile, options.project, tuple(ids), options.fmt, str(options.out),
                index, today.isoformat(), options.style,
                str(options.notes_model) if options.notes_model else None, options.sealed_job,
            )  # fmt: skip

    try:
        runner = _dask_runner(options.dask) if options.dask else _local
        for summary in runner(rt, jobs()):
            _add(report, summary, tally, scan)
            if progress is not None:
                progress(summary.patients)
            if not scan.clean:
                break  # fail fast: no more PHI read for an export that cannot be released
        report.counts, report.residual_scan = tally.as_dict(), scan.as_dict()
        if not scan.clean:
            raise ResidualFound(report)
        for name, sha256 in finalize(out, options.fmt, report.per_type).items():
            report.files[name] = sha256
            report.rows[name] = report.per_type[name.removesuffix(".ndjson")]
        if options.fmt == "parquet":
            report.files.update(write_dictionary(out, profile.describe(), report.per_type))
        report.files = dict(sorted(report.files.items()))
        report.rows = dict(sorted(report.rows.items()))
        report.release_id = record_release(
            rt.gate_services, actor, kind="export", profile=_label(profile),
            purpose=options.purpose, project=options.project,
            detail={"patients": report.patients, "resources": report.resources,
                    "counts": report.counts, "files": report.files, "format": options.fmt,
                    "requested_by": options.requested_by or actor.user_id},
        )  # fmt: skip
        report.status = "complete"
    except BaseException as exc:
        report.status = "failed"
        report.error = "residual identifying values found" if isinstance(
            exc, ResidualFound) else type(exc).__name__  # fmt: skip
        _remove_data(options.out)
        raise
    finally:
        report.seconds = time.perf_counter() - started
        report.finished_at = isoformat(rt.clock.now())
        report.write(out)
    return report


def _free_text(model: Path | None) -> dict[str, str]:
    """What scrubs free text, for the report: the rules, and the model by its digest."""
    if model is None:
        return {"detector": "rules"}
    try:
        NoteTagger(model)
    except (OSError, ValueError):
        raise Invalid("the notes model cannot be read: train one with "
                      "`carevault deid train-notes`") from None  # fmt: skip
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    return {"detector": "rules+model", "model": model.name, "model_sha256": digest}


def _label(profile: Profile) -> str:
    return f"{profile.name}@{profile.version}"


def _add(report: ExportReport, s: PartitionSummary, tally: Tally, scan: ResidualScan) -> None:
    report.partitions += 1
    report.patients += s.patients
    report.resources += s.resources
    report.per_type.update(s.per_type)
    for name, (sha256, rows) in s.files.items():
        report.files[name] = sha256
        report.rows[name] = rows
    tally.add(s.tally)
    scan.add(s.scan)


def _remove_data(out: Path) -> None:
    """Everything but the report: a failed export leaves nothing to mistake for a release."""
    for path in out.iterdir() if out.exists() else []:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.name != "deid-report.json":
            path.unlink(missing_ok=True)


def _local(rt: Runtime, jobs: Iterator[PartitionJob]) -> Iterator[PartitionSummary]:
    register_runtime(rt)
    try:
        for job in jobs:
            yield run_partition(job)
    finally:
        unregister_runtime(rt)


def _dask_runner(scheduler: str) -> Callable[[Runtime, Iterator[PartitionJob]],
                                              Iterator[PartitionSummary]]:  # fmt: skip
    def run(rt: Runtime, jobs: Iterator[PartitionJob]) -> Iterator[PartitionSummary]:
        from carevault.deid.fhir.distributed import run_on_cluster

        register_runtime(rt)  # a LocalCluster(processes=False) runs jobs in this process
        try:
            yield from run_on_cluster(scheduler, jobs)
        finally:
            unregister_runtime(rt)

    return run
