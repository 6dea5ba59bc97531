"""Permanent deletion: on a verified written request and the tenant's instruction, after the
legal holds; the patient is crypto-shredded and a signed certificate (JSON and PDF) lists what
was destroyed, what was kept and why. A database copy taken BEFORE the deletion, put back and
opened with the same key store, yields nothing of the patient (410/404)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.identity.models import TenantKind, system_actor
from carevault.identity.permissions import Role
from carevault.retention import certificates
from carevault.runtime import Runtime, initialize
from carevault.settings import Settings
from tests.conftest import PATIENT_ALICE, PATIENT_BOB
from tests.integration.test_crypto_shredding import copy_database, drop_copy

REQUEST = {
    "written_request": "rights-case-0001",
    "verified_by": "id-document",
    "tenant_instruction": True,
}


@pytest.fixture
def world(settings: Settings, clock: ManualClock) -> dict[str, str]:
    initialize(settings)
    rt = Runtime(settings, clock=clock)
    tenant = rt.identity.create_tenant("north", "North", TenantKind.PRACTICE)
    gate = rt.gate(system_actor(tenant.tenant_id, "test fixture"))
    ids = {"tenant": tenant.tenant_id}
    for name, body in (("alice", PATIENT_ALICE), ("bob", PATIENT_BOB)):
        pid = gate.create("Patient", dict(body)).resource_id
        ids[name] = pid
        ids[f"{name}-obs"] = gate.create(
            "Observation",
            {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "weight"},
                "subject": {"reference": f"Patient/{pid}"},
            },
        ).resource_id
    for role in (Role.PRACTITIONER, Role.PRIVACY_OFFICER, Role.STAFF):
        user = rt.identity.create_user(
            tenant, f"{role.value}@north.example.org", role, password="a long passphrase"
        )
        ids[role.value] = rt.identity.create_token(tenant, user).token
    rt.close()
    return ids


def h(world: dict[str, str], role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {world[role]}"}


def test_certificate_and_a_restored_pre_deletion_copy_yields_nothing(
    settings: Settings, clock: ManualClock, world: dict[str, str], tmp_path: Path
) -> None:
    before = copy_database(settings, tmp_path)  # the backup, taken before the deletion
    rt = Runtime(settings, clock=clock)
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            made = client.post(
                "/privacy/deletions",
                json={**REQUEST, "patient_id": world["alice"]},
                headers=h(world, "privacy-officer"),
            )
            assert made.status_code == 201, made.text
            cert: dict[str, Any] = made.json()
            assert cert["kind"] == "patient"
            assert cert["algorithm"] == "Ed25519"
            assert cert["destroyed"][0]["patient_id"] == world["alice"]
            assert cert["destroyed"][0]["count"] == 2
            assert "crypto-shredding" in cert["method"]
            assert any("audit trail" in k["what"] and "six years" in k["why"] for k in cert["kept"])
            assert cert["basis"]["written_request"] == "rights-case-0001"
            assert "Quintero" not in made.text
            # stored, signed, verifiable; the PDF renders the same certificate
            again = client.get(
                f"/privacy/certificates/{cert['certificate_id']}",
                headers=h(world, "privacy-officer"),
            )
            assert again.json() == cert
            loaded = certificates.load(rt.gate_services, world["tenant"], cert["certificate_id"])
            assert certificates.verify(rt.gate_services, loaded)
            forged = certificates.from_document(
                {**cert, "issued_at": "2020-01-01"}, cert["signature"]
            )
            assert not certificates.verify(rt.gate_services, forged)
            pdf = client.get(
                f"/privacy/certificates/{cert['certificate_id']}/pdf",
                headers=h(world, "privacy-officer"),
            )
            assert pdf.status_code == 200
            assert pdf.content.startswith(b"%PDF")
            assert (
                client.get(
                    f"/fhir/Patient/{world['alice']}", headers=h(world, "practitioner")
                ).status_code
                == 404
            )
    finally:
        rt.close()

    # Put the pre-deletion copy back in place of the live database, then reopen with the
    # same key store: the patient's rows are there again, but their key is not.
    restored = _put_back(settings, before)
    rt = Runtime(restored, clock=clock)
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            doc = h(world, "practitioner")
            for url in (
                f"/fhir/Patient/{world['alice']}",
                f"/fhir/Observation/{world['alice-obs']}",
                f"/fhir/Patient/{world['alice']}/_history",
            ):
                got = client.get(url, headers=doc)
                assert got.status_code in (404, 410), (url, got.text)
                assert "Quintero" not in got.text
            everything = client.get(f"/fhir/Patient/{world['alice']}/$everything", headers=doc)
            assert everything.status_code in (404, 410)
            assert "Quintero" not in everything.text
            assert client.get(f"/fhir/Patient/{world['bob']}", headers=doc).status_code == 200
    finally:
        rt.close()
        drop_copy(before)


def _put_back(settings: Settings, copy: Settings) -> Settings:
    if copy.database_url and copy.database_url.startswith("sqlite"):
        live = settings.home / "carevault.db"
        for suffix in ("-wal", "-shm"):
            Path(str(live) + suffix).unlink(missing_ok=True)
        shutil.copyfile(copy.database_url.removeprefix("sqlite:///"), live)
        return settings
    return copy  # PostgreSQL: the copy is its own database; open it as the live one


def test_refusals_change_nothing_and_are_audited(
    settings: Settings, clock: ManualClock, world: dict[str, str]
) -> None:
    rt = Runtime(settings, clock=clock)
    try:
        with TestClient(create_app(rt), raise_server_exceptions=False) as client:
            officer, alice = h(world, "privacy-officer"), world["alice"]
            cases = [
                ({**REQUEST, "patient_id": alice, "tenant_instruction": False}, 403, "instruction"),
                ({**REQUEST, "patient_id": alice, "verified_by": " "}, 400, "verified"),
                ({"patient_id": alice}, 400, "written request"),
            ]
            for body, status, words in cases:
                got = client.post("/privacy/deletions", json=body, headers=officer)
                assert got.status_code == status, got.text
                assert words in got.json()["detail"]
            staff = client.post(
                "/privacy/deletions",
                json={**REQUEST, "patient_id": alice},
                headers=h(world, "staff"),
            )
            assert staff.status_code == 403

            hold = client.post(
                "/privacy/holds",
                json={"patient_id": alice, "reason": "litigation hold, matter 14"},
                headers=officer,
            )
            assert hold.status_code == 201, hold.text
            held = client.post(
                "/privacy/deletions", json={**REQUEST, "patient_id": alice}, headers=officer
            )
            assert held.status_code == 409
            assert "legal hold" in held.json()["detail"]
            assert "lift" in held.json()["detail"]
            assert "matter 14" not in held.text  # the sealed note stays with the officer
            assert (
                client.get(f"/fhir/Patient/{alice}", headers=h(world, "practitioner")).status_code
                == 200
            )
            holds = client.get("/privacy/holds", headers=officer).json()["holds"]
            assert [x["hold_id"] for x in holds] == [hold.json()["hold_id"]]
            lifted = client.post(f"/privacy/holds/{hold.json()['hold_id']}/lift", headers=officer)
            assert lifted.status_code == 200
            done = client.post(
                "/privacy/deletions", json={**REQUEST, "patient_id": alice}, headers=officer
            )
            assert done.status_code == 201
        with rt.reader.connect() as conn:
            rows = conn.execute(
                sa.select(audit_entries.c.outcome, audit_entries.c.detail).where(
                    audit_entries.c.tenant_id == world["tenant"]
                )
            ).all()
        refused = [r.detail for r in rows if r.detail and "permanent deletion refused" in r.detail]
        assert len(refused) == 4  # three bad requests and the hold
        assert any("UnderLegalHold" in d for d in refused)
        assert any(r.detail == "order a permanent deletion: refused: Forbidden" for r in rows)
        assert rt.audit_verification(world["tenant"]).ok
    finally:
        rt.close()
