"""The 6-year purge: refuses younger entries, archives what it removes (sealed), re-anchors
the chain at a signed anchor so verification still passes, and is itself audited."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.audit.evidence_models import audit_checkpoints, audit_purges
from carevault.audit.models import audit_entries
from carevault.audit.purge import TooYoung, purge, read_archive
from carevault.clock import ManualClock
from carevault.database import make_engine
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.cli_process import run_cli
from tests.conftest import START, Clinic


def _count(runtime: Runtime, tenant_id: str) -> int:
    with runtime.reader.connect() as conn:
        return int(
            conn.execute(
                sa.select(sa.func.count())
                .select_from(audit_entries)
                .where(audit_entries.c.tenant_id == tenant_id)
            ).scalar_one()
        )


def _maintenance(settings: Settings) -> sa.Engine:
    return make_engine(settings.resolved_maintenance_url, writer=True, pool_size=1)


def test_purge_after_seven_years(
    client: TestClient,
    clinic: Clinic,
    runtime: Runtime,
    clock: ManualClock,
    settings: Settings,
    tmp_path: Path,
) -> None:
    north = clinic.north
    for _ in range(3):
        client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers())
    old = _count(runtime, north.tenant_id)
    clock.advance(timedelta(days=365 * 7 + 2))
    for _ in range(2):
        client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers())
    before = START + timedelta(days=1)
    engine = _maintenance(settings)
    try:
        report = purge(engine, runtime.vault, clock, north.tenant_id, before, tmp_path / "arch")
    finally:
        engine.dispose()
    assert report.removed == old
    assert report.first_seq == 1
    assert report.last_seq == old
    assert _count(runtime, north.tenant_id) == 2 + 1  # the young reads and the purge's entry
    assert runtime.audit_verification(north.tenant_id).ok
    assert runtime.audit_verification(clinic.south.tenant_id).ok
    verified = run_cli(settings, "audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr

    with runtime.reader.connect() as conn:
        record = conn.execute(sa.select(audit_purges)).mappings().one()
        last = (
            conn.execute(
                sa.select(audit_entries)
                .where(audit_entries.c.tenant_id == north.tenant_id)
                .order_by(audit_entries.c.seq.desc())
            )
            .mappings()
            .first()
        )
    assert record["entries"] == old
    assert record["last_seq"] == old
    assert last is not None
    assert last["detail"].startswith("audit purge")
    assert report.archive is not None
    archived = list(
        read_archive(runtime.vault, north.tenant_id, report.archive, record["purge_id"])
    )
    assert [e["seq"] for e in archived] == list(range(1, old + 1))
    assert b"Quintero" not in report.archive.read_bytes()


def test_purge_refuses_anything_younger_than_six_years(
    clinic: Clinic, runtime: Runtime, clock: ManualClock, settings: Settings, tmp_path: Path
) -> None:
    n = _count(runtime, clinic.north.tenant_id)
    engine = _maintenance(settings)
    try:
        clock.advance(timedelta(days=365 * 5))
        with pytest.raises(TooYoung):
            purge(
                engine,
                runtime.vault,
                clock,
                clinic.north.tenant_id,
                START + timedelta(days=1),
                tmp_path,
            )
    finally:
        engine.dispose()
    assert _count(runtime, clinic.north.tenant_id) == n
    refused = run_cli(settings, "audit", "purge", "--tenant", "north", "--before", "2025-01-01")
    assert refused.returncode == 2
    assert "kept 6 years" in refused.stderr.replace("\n", " ")
    assert _count(runtime, clinic.north.tenant_id) == n


def test_a_forged_or_missing_anchor_is_caught(
    clinic: Clinic, runtime: Runtime, clock: ManualClock, settings: Settings, tmp_path: Path
) -> None:
    clock.advance(timedelta(days=365 * 7))
    engine = _maintenance(settings)
    try:
        purge(
            engine,
            runtime.vault,
            clock,
            clinic.north.tenant_id,
            START + timedelta(days=1),
            tmp_path,
        )
    finally:
        engine.dispose()
    tenant = clinic.north.tenant_id
    with runtime.writer.begin() as conn:
        conn.execute(
            sa.update(audit_checkpoints)
            .where(audit_checkpoints.c.tenant_id == tenant, audit_checkpoints.c.kind == "anchor")
            .values(signed_at="2000-01-01")
        )
    assert "forged" in (runtime.audit_verification(tenant).problem or "")
    with runtime.writer.begin() as conn:
        conn.execute(sa.delete(audit_checkpoints).where(audit_checkpoints.c.tenant_id == tenant))
    assert not runtime.audit_verification(tenant).ok
