"""`carevault keys rotate`: data keys re-wrapped under a new tenant KEK, tenant keys under a
new master key; no data rewritten, old ciphertext still readable, search hashes and the
audit chain unchanged; each rotation audited; a crash mid-rotation leaves keys readable."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from carevault.audit.models import audit_entries
from carevault.cli import app
from carevault.clock import ManualClock
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import master_key_path
from carevault.identity.models import TenantKind, system_actor
from carevault.records.models import resource_versions, search_tokens
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from tests.conftest import PATIENT_ALICE, PATIENT_BOB


@pytest.fixture
def rt(settings: Settings, clock: ManualClock) -> Iterator[Runtime]:
    initialize(settings)
    runtime = Runtime(settings, clock=clock)
    tenant = runtime.identity.create_tenant("north", "North", TenantKind.PRACTICE)
    gate = runtime.gate(system_actor(tenant.tenant_id, "test fixture"))
    for body in (PATIENT_ALICE, PATIENT_BOB):
        gate.create("Patient", dict(body))
    yield runtime
    runtime.close()


def snapshot(runtime: Runtime) -> tuple[list[bytes], list[str]]:  # ciphertexts, token codes
    with runtime.reader.connect() as conn:
        sealed = [r.sealed for r in conn.execute(sa.select(resource_versions.c.sealed))]
        hashes = [r.code for r in conn.execute(sa.select(search_tokens).order_by(
            *search_tokens.primary_key.columns))]  # fmt: skip
    return sorted(sealed), hashes


def data_key_rows(path: Path) -> list[tuple[str, bytes, int]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT key_name, wrapped, kek_version FROM data_keys").fetchall()


def test_tenant_and_master_rotation_rewrap_keys_only(
    rt: Runtime, settings: Settings, clock: ManualClock
) -> None:
    tenant = rt.identity.tenant_by_slug("north")
    before = snapshot(rt)
    keys_before = data_key_rows(settings.resolved_keystore_path)
    done = rt.keys.rotate_tenant(system_actor(tenant.tenant_id, "keys rotate"))
    assert done.new_version == 2
    assert done.rewrapped == len(keys_before)
    assert done.retired_versions == (1,)
    keys_after = data_key_rows(settings.resolved_keystore_path)
    assert {k[2] for k in keys_after} == {2}
    assert not {k[1] for k in keys_before} & {k[1] for k in keys_after}  # all re-wrapped
    master_before = master_key_path(settings.resolved_keystore_path).read_bytes()
    moved = rt.keys.rotate_master("keys rotate --master")
    assert moved.old_fingerprint != moved.new_fingerprint
    assert master_key_path(settings.resolved_keystore_path).read_bytes() != master_before
    assert snapshot(rt) == before  # no data rewritten, same search hashes
    rt.close()
    # a fresh process (new caches) reads everything with the new master key file
    again = Runtime(settings, clock=clock)
    try:
        found = again.gate(system_actor(tenant.tenant_id, "check")).search(
            "Patient", [("family", "Quintero")]
        )
        assert len(found.resources) == 1
        assert b"Quintero" in (found.resources[0].body or b"")
        assert again.audit_verification(tenant.tenant_id).ok
        assert again.audit_verification(VENDOR_CHAIN).ok
        with again.reader.connect() as conn:
            details = [r.detail for r in conn.execute(sa.select(audit_entries.c.detail).where(
                audit_entries.c.action == "admin"))]  # fmt: skip
        assert any("key-encryption key v2" in (d or "") for d in details)
        assert any("keys rotate --master" in (d or "") for d in details)
        # new patients are written under the current KEK
        again.gate(system_actor(tenant.tenant_id, "after")).create("Patient", dict(PATIENT_BOB))
        assert {k[2] for k in data_key_rows(settings.resolved_keystore_path)} == {2}
    finally:
        again.close()


def test_a_crash_between_rename_and_swap_is_rolled_forward(
    rt: Runtime, settings: Settings, clock: ManualClock
) -> None:
    """Simulate the crash: the new master file is in place, the rows still carry the new
    wrapping aside. Opening the store rolls the rotation forward."""
    tenant = rt.identity.tenant_by_slug("north")
    path = settings.resolved_keystore_path
    original_finish = type(rt.vault._keys).finish_master_rotation
    type(rt.vault._keys).finish_master_rotation = lambda self: 0  # type: ignore[method-assign]
    try:
        rt.keys.rotate_master("keys rotate --master")
    finally:
        type(rt.vault._keys).finish_master_rotation = original_finish  # type: ignore[method-assign]
    with sqlite3.connect(path) as db:
        pending = db.execute("SELECT count(*) FROM tenant_keys WHERE wrapped_next IS NOT NULL")
        assert pending.fetchone()[0] > 0
    rt.close()
    again = Runtime(settings, clock=clock)
    try:
        with sqlite3.connect(path) as db:
            left = db.execute("SELECT count(*) FROM tenant_keys WHERE wrapped_next IS NOT NULL")
            assert left.fetchone()[0] == 0
        found = again.gate(system_actor(tenant.tenant_id, "check")).search("Patient", [])
        assert len(found.resources) == 2
    finally:
        again.close()


def test_a_legacy_key_store_is_upgraded_in_place(tmp_path: Path) -> None:
    """A store from before KEK versions: data keys wrapped by the tenant root key (v0)."""
    from carevault.crypto.envelope import new_key, seal
    from carevault.crypto.keystore import KeyStore
    from carevault.crypto.master import FileMasterKey

    path = tmp_path / "keys" / "keystore.db"
    master = FileMasterKey.create(tmp_path / "keys" / "master.key")
    path.parent.mkdir(parents=True, exist_ok=True)
    root, data = new_key(), new_key()
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE tenant_keys (tenant_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL);"
            "CREATE TABLE data_keys (tenant_id TEXT NOT NULL, key_name TEXT NOT NULL,"
            " wrapped BLOB NOT NULL, PRIMARY KEY (tenant_id, key_name));"
        )
        db.execute("INSERT INTO tenant_keys VALUES ('t', ?)", (master.wrap(root, b"tenant|t"),))
        db.execute("INSERT INTO data_keys VALUES ('t', 'patient/p', ?)",
                   (seal(root, data, b"data|t|patient/p"),))  # fmt: skip
    store = KeyStore(path, master)
    try:
        assert store.data_key("t", "patient/p", create=False) == data
        from carevault.crypto.rotation import rotate_tenant

        done = rotate_tenant(store, "t")
        assert done.rewrapped == 1
        assert done.retired_versions == ()
        store.forget_wrapped_keys()
    finally:
        store.close()
    reopened = KeyStore(path, master)
    try:
        assert reopened.data_key("t", "patient/p", create=False) == data
        assert reopened.tenant_key("t") == root  # derived sub-keys stay stable
    finally:
        reopened.close()


def test_cli_rotate_and_shred(
    rt: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = rt.identity.tenant_by_slug("north")
    patient = rt.gate(system_actor(tenant.tenant_id, "t")).search("Patient", []).resources[0]
    rt.close()
    monkeypatch.setenv("CAREVAULT_HOME", str(settings.home))
    if settings.database_url:
        monkeypatch.setenv("CAREVAULT_DATABASE_URL", settings.database_url)
    runner = CliRunner()
    assert runner.invoke(app, ["keys", "rotate"]).exit_code == 2
    result = runner.invoke(app, ["keys", "rotate", "--tenant", "north", "--master"])
    assert result.exit_code == 0, result.output
    assert "re-wrapped" in result.output
    assert "escrow" in result.output
    refused = runner.invoke(
        app, ["keys", "shred-patient", "--tenant", "north", patient.resource_id], input="n\n"
    )
    assert refused.exit_code != 0
    shred = runner.invoke(
        app, ["keys", "shred-patient", "--tenant", "north", patient.resource_id, "--yes"]
    )
    assert shred.exit_code == 0, shred.output
    assert "destroyed" in shred.output
    # a fresh Runtime for the fixture's teardown
    rt.__init__(settings)  # type: ignore[misc]
