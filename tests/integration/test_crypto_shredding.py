"""Crypto-shredding: a copy of the database taken BEFORE shredding, opened afterwards with
the key store and master key as they now are, yields nothing of the shredded patient
(reads answer 410, no 500; the raw rows do not decrypt) while every other patient stays
readable. The wrapped key lingers neither in the key store file nor in its WAL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.crypto.keystore import KeyNotFound
from carevault.errors import NotFound
from carevault.identity.models import TenantKind, system_actor
from carevault.identity.permissions import Role
from carevault.records.models import resource_versions
from carevault.records.sealing import open_version
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from tests.conftest import PATIENT_ALICE, PATIENT_BOB, _admin_conninfo


@pytest.fixture
def world(settings: Settings, clock: ManualClock) -> dict[str, str]:
    """A tenant, two patients with an observation each, and a practitioner token."""
    initialize(settings)
    rt = Runtime(settings, clock=clock)
    tenant = rt.identity.create_tenant("north", "North", TenantKind.PRACTICE)
    gate = rt.gate(system_actor(tenant.tenant_id, "test fixture"))
    ids = {"tenant": tenant.tenant_id}
    for name, body in (("alice", PATIENT_ALICE), ("bob", PATIENT_BOB)):
        pid = gate.create("Patient", dict(body)).resource_id
        ids[name] = pid
        ids[f"{name}-obs"] = gate.create("Observation", {
            "resourceType": "Observation", "status": "final", "code": {"text": "weight"},
            "subject": {"reference": f"Patient/{pid}"}}).resource_id  # fmt: skip
    user = rt.identity.create_user(tenant, "doc@north.example.org", Role.PRACTITIONER,
                                   password="a long passphrase")  # fmt: skip
    ids["token"] = rt.identity.create_token(tenant, user).token
    rt.close()
    return ids


def copy_database(settings: Settings, tmp_path: Path) -> Settings:
    """A copy of the database as a backup would take it; the key store stays where it is."""
    if settings.database_url is None:
        source = settings.home / "carevault.db"
        target = tmp_path / "copy.db"
        with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
            src.backup(dst)
        url = f"sqlite:///{target}"
    else:
        name = settings.database_url.rsplit("/", 1)[1]
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}_copy"')
            conn.execute(f'CREATE DATABASE "{name}_copy" TEMPLATE "{name}"')
        url = settings.database_url + "_copy"
    return Settings(home=settings.home, database_url=url,
                    keystore_path=settings.resolved_keystore_path)  # fmt: skip


def drop_copy(copy: Settings) -> None:
    if copy.database_url and copy.database_url.startswith("postgresql"):
        name = copy.database_url.rsplit("/", 1)[1]
        with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_copy_taken_before_shredding_yields_nothing_of_the_patient(
    settings: Settings, clock: ManualClock, world: dict[str, str], tmp_path: Path
) -> None:
    copy = copy_database(settings, tmp_path)
    keystore = settings.resolved_keystore_path
    with sqlite3.connect(keystore) as ks:
        wrapped = ks.execute(
            "SELECT wrapped FROM data_keys WHERE key_name = ?", (f"patient/{world['alice']}",)
        ).fetchone()[0]
    rt = Runtime(settings, clock=clock)
    try:
        report = rt.keys.shred_patient(
            system_actor(world["tenant"], "erasure request"), world["alice"]
        )
        assert report.key_destroyed
        assert report.resources_removed == 2
        assert report.wal_truncated
        # audited as such, naming the patient, on the tenant's chain, which still verifies
        with rt.reader.connect() as conn:
            last = conn.execute(
                sa.select(audit_entries).where(audit_entries.c.tenant_id == world["tenant"])
                .order_by(audit_entries.c.seq.desc()).limit(1)
            ).one()  # fmt: skip
        assert last.action == "delete"
        assert world["alice"] in last.patient_ids
        assert "crypto-shred" in last.detail
        assert rt.audit_verification(world["tenant"]).ok
        # the live database answers 404 now; a second shred has nothing to do
        with pytest.raises(NotFound):
            rt.keys.shred_patient(system_actor(world["tenant"], "again"), world["alice"])
    finally:
        rt.close()
    for part in (keystore, keystore.with_name(keystore.name + "-wal")):
        if part.exists():
            assert wrapped not in part.read_bytes(), part

    copied = Runtime(copy, clock=clock)
    try:
        with TestClient(create_app(copied), raise_server_exceptions=False) as client:
            h = {"Authorization": f"Bearer {world['token']}"}
            alice = f"/fhir/Patient/{world['alice']}"
            for url in (alice, f"/fhir/Observation/{world['alice-obs']}", f"{alice}/_history"):
                response = client.get(url, headers=h)
                assert response.status_code == 410, (url, response.text)
                assert "Quintero" not in response.text
            for url in (f"/fhir/Patient/{world['bob']}", f"/fhir/Observation/{world['bob-obs']}"):
                assert client.get(url, headers=h).status_code == 200, url
            found = client.get("/fhir/Observation", params={"subject": f"Patient/{world['bob']}"},
                               headers=h)  # fmt: skip
            assert found.status_code == 200
            assert found.json()["total"] == 1
        # the raw rows of the copy do not decrypt
        with copied.reader.connect() as conn:
            rows = conn.execute(
                sa.select(resource_versions).where(resource_versions.c.patient_id == world["alice"])
            ).all()
        assert len(rows) == 2
        for row in rows:
            with pytest.raises(KeyNotFound):
                open_version(copied.vault, world["tenant"], row)
    finally:
        copied.close()
        drop_copy(copy)


def test_only_a_system_actor_may_shred(
    settings: Settings, clock: ManualClock, world: dict[str, str]
) -> None:
    rt = Runtime(settings, clock=clock)
    try:
        doctor = rt.identity.authenticate(world["token"])
        with pytest.raises(Exception, match="system actor") as refused:
            rt.keys.shred_patient(doctor, world["alice"])
        assert getattr(refused.value, "status", None) == 403
        with pytest.raises(NotFound):
            rt.keys.shred_patient(system_actor(world["tenant"], "typo"), "no-such-patient")
        gate = rt.gate(doctor)
        assert gate.read("Patient", world["alice"]).body is not None  # nothing changed
    finally:
        rt.close()
