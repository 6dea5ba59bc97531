"""Signed checkpoints: periodic and on demand, exported to a file, checked by `audit verify`;
a truncated tail (even with a consistent head row) is caught."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.audit import chain, checkpoints
from carevault.audit.evidence_models import audit_checkpoints
from carevault.audit.models import audit_entries, audit_heads
from carevault.audit.recorder import AUDIT_KEY_PURPOSE
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.cli_process import run_cli
from tests.conftest import Clinic


def _reads(client: TestClient, clinic: Clinic, n: int) -> None:
    for _ in range(n):
        client.get(f"/fhir/Patient/{clinic.north.patient_id}", headers=clinic.north.headers())


def _cut_tail(runtime: Runtime, tenant_id: str, keep: int, *, drop_checkpoints: bool) -> None:
    """What someone with database and key access (or an older backup) leaves: fewer entries and
    a head row that matches them."""
    key = runtime.vault.subkey(tenant_id, AUDIT_KEY_PURPOSE)
    with runtime.writer.begin() as conn:
        conn.execute(
            sa.delete(audit_entries).where(
                audit_entries.c.tenant_id == tenant_id, audit_entries.c.seq > keep
            )
        )
        last = conn.execute(
            sa.select(audit_entries.c.entry_hash).where(
                audit_entries.c.tenant_id == tenant_id, audit_entries.c.seq == keep
            )
        ).scalar_one()
        conn.execute(
            sa.update(audit_heads)
            .where(audit_heads.c.tenant_id == tenant_id)
            .values(seq=keep, entry_hash=last, head_mac=chain._head_mac(key, tenant_id, keep, last))
        )
        if drop_checkpoints:
            conn.execute(sa.delete(audit_checkpoints))


def test_periodic_checkpoints_catch_a_cut_tail(
    client: TestClient, clinic: Clinic, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpoints, "CHECKPOINT_EVERY", 5)
    _reads(client, clinic, 12)
    tenant = clinic.north.tenant_id
    with runtime.reader.connect() as conn:
        stored = (
            conn.execute(
                sa.select(audit_checkpoints.c.seq).where(audit_checkpoints.c.tenant_id == tenant)
            )
            .scalars()
            .all()
        )
    assert len(stored) >= 2
    assert runtime.audit_verification(tenant).ok
    _cut_tail(runtime, tenant, keep=max(stored) - 1, drop_checkpoints=False)
    result = runtime.audit_verification(tenant)
    assert not result.ok
    assert "checkpoint" in (result.problem or "")


def test_a_forged_checkpoint_is_caught(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    _reads(client, clinic, 2)
    tenant = clinic.north.tenant_id
    point = runtime.committer.submit(
        lambda conn: runtime.audit.signer.checkpoint_head(conn, tenant, "2026-11-23T09:30:00Z")
    )
    with runtime.writer.begin() as conn:
        conn.execute(
            sa.update(audit_checkpoints)
            .where(audit_checkpoints.c.seq == point.seq)
            .values(signed_at="2026-11-23T09:31:00Z")
        )
    assert "bad signature" in (runtime.audit_verification(tenant).problem or "")


def test_exported_checkpoint_catches_a_restored_copy(
    client: TestClient, clinic: Clinic, runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    _reads(client, clinic, 4)
    out = tmp_path / "north.checkpoint.json"
    made = run_cli(settings, "audit", "checkpoint", "--tenant", "north", "--out", str(out))
    assert made.returncode == 0, made.stderr
    document = orjson.loads(out.read_bytes())
    assert document["tenant_id"] == clinic.north.tenant_id
    assert len(document["public_key"]) == 64
    ok = run_cli(settings, "audit", "verify", "--tenant", "north", "--checkpoint", str(out))
    assert ok.returncode == 0, ok.stdout + ok.stderr

    # The database goes back to an earlier state, head row and stored checkpoints included.
    _cut_tail(runtime, clinic.north.tenant_id, keep=document["seq"] - 2, drop_checkpoints=True)
    plain = run_cli(settings, "audit", "verify", "--tenant", "north")
    assert plain.returncode == 0  # the chain alone cannot tell
    caught = run_cli(settings, "audit", "verify", "--tenant", "north", "--checkpoint", str(out))
    assert caught.returncode == 1
    assert "older copy was restored" in caught.stdout.replace("\n", " ")

    # An altered exported file is refused as forged, not trusted.
    document["seq"] = 1
    forged = tmp_path / "forged.json"
    forged.write_bytes(orjson.dumps(document))
    bad = run_cli(settings, "audit", "verify", "--tenant", "north", "--checkpoint", str(forged))
    assert bad.returncode == 1
    assert "bad signature" in bad.stdout
    junk = tmp_path / "junk.json"
    junk.write_text("{")
    assert run_cli(settings, "audit", "verify", "--checkpoint", str(junk)).returncode == 2


def test_public_key_is_exportable(runtime: Runtime, clinic: Clinic, settings: Settings) -> None:
    shown = run_cli(settings, "audit", "public-key", "--tenant", "north")
    assert shown.returncode == 0
    assert shown.stdout.startswith("-----BEGIN PUBLIC KEY-----")
