"""The retention job on a timetable, for `carevault serve`.

APScheduler only triggers: every `CAREVAULT_RETENTION_RUN_HOURS` it calls `run_every_tenant`,
and the job takes "now" from the runtime's clock like any other caller, so tests call the
scheduled function directly with a moved clock instead of waiting for the timer.
"""

from __future__ import annotations

import logging
from datetime import UTC
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from carevault.errors import CareVaultError
from carevault.retention.job import RetentionJob, RunReport
from carevault.retention.service import Retention

if TYPE_CHECKING:
    from carevault.runtime import Runtime

log = logging.getLogger("carevault.retention")
JOB_ID = "retention"


def run_every_tenant(runtime: Runtime) -> list[RunReport]:
    """One real run per tenant; a tenant whose run is refused does not stop the others."""
    job = RetentionJob(Retention.from_runtime(runtime))
    reports = []
    for tenant in runtime.identity.list_tenants():
        try:
            reports.append(job.run(tenant.tenant_id))
        except CareVaultError as exc:  # audited by the job; the log names no data
            log.error("retention run refused", extra={"error": type(exc).__name__})
    return reports


def start(runtime: Runtime, every_hours: float) -> BackgroundScheduler:
    """A background scheduler running the job every `every_hours`; stop it with shutdown()."""
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.add_job(
        run_every_tenant,
        IntervalTrigger(hours=every_hours, timezone=UTC),
        args=[runtime],
        id=JOB_ID,
        max_instances=1,  # a slow run is never overlapped by the next
        coalesce=True,  # after a pause, one catch-up run rather than a burst
    )
    scheduler.start()
    return scheduler
