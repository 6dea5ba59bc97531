"""The served app's timetable triggers the retention job; the job reads the injected clock, so
the test calls the scheduled function with a moved clock instead of waiting for the timer."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carevault.retention import schedule
from tests.promises.conftest import Deployment


@pytest.mark.promise("AM-17")
def test_the_daily_run_erases_an_account_a_year_after_it_closed(profiled: object) -> None:
    dep: Deployment = profiled("allmeds")  # type: ignore[operator]
    north = dep.clinic.north
    closed = dep.client.post("/patient/account/close", headers=north.headers("patient"))
    assert closed.status_code == 200, closed.text
    dep.runtime.settings.retention_run_hours = 24.0
    dep.runtime.start_retention_schedule()
    scheduler = dep.runtime._retention_scheduler
    assert scheduler is not None
    assert scheduler.running
    job = scheduler.get_job(schedule.JOB_ID)
    assert job.trigger.interval == timedelta(hours=24)

    dep.clock.advance(timedelta(days=364))
    early = {r.tenant_id: r for r in job.func(*job.args)}
    assert {north.tenant_id, dep.clinic.south.tenant_id} <= set(early)
    assert not any(d.category == "account" for d in early[north.tenant_id].deleted)

    dep.clock.advance(timedelta(days=2))
    late = {r.tenant_id: r for r in job.func(*job.args)}
    erased = [d for d in late[north.tenant_id].deleted if d.category == "account"]
    assert len(erased) == 1
    assert late[north.tenant_id].certificate_id
    assert not any(d.category == "account" for d in late[dep.clinic.south.tenant_id].deleted)
