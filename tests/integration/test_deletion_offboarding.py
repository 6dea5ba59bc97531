"""Tenant offboarding (AllMeds) and a patient deleting their own submission (ihr.health).

Offboarding: an archive of every resource of the tenant (soft-deleted ones included) is
produced, sealed under a key handed over once; then every patient is crypto-shredded, the
directory and the shared key go, the accounts stop, and a signed certificate says so. A legal
hold refuses it. The other tenant is untouched."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from carevault.errors import Conflict, NotFound
from carevault.identity.models import system_actor
from carevault.policy import load_profile
from carevault.privacy.offboarding import read_archive
from carevault.retention import certificates
from carevault.retention.offboard import offboard
from carevault.retention.service import Retention
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.conftest import Clinic


def allmeds(rt: Runtime) -> Retention:
    policy = load_profile("allmeds")
    return Retention(rt.gate_services, rt.keys, rt.gate, lambda: policy)


def test_offboarding_archives_then_removes_with_a_certificate(
    runtime: Runtime, client: TestClient, clinic: Clinic, tmp_path: Path
) -> None:
    tmp_path = tmp_path / "archive"
    tmp_path.mkdir()
    north, south = clinic.north, clinic.south
    system = system_actor(north.tenant_id, "test fixture")
    gate = runtime.gate(system)
    org = gate.create("Organization", {"resourceType": "Organization", "name": "North"})
    obs = gate.create(
        "Observation",
        {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "bp"},
            "subject": {"reference": f"Patient/{north.patient_id}"},
        },
    ).resource_id
    retention = allmeds(runtime)
    retention.soft.hide_resource(system, "Observation", obs)  # kept data: archived too
    retention.soft.hide_resource(system, "Organization", org.resource_id)

    hold = retention.holds.file(system, None, "regulator inquiry")
    with pytest.raises(Conflict, match="legal hold"):
        offboard(retention, north.tenant_id, "north", tmp_path)
    assert list(tmp_path.iterdir()) == []
    retention.holds.lift(system, hold.hold_id)

    report = offboard(retention, north.tenant_id, "north", tmp_path)
    assert report.patients_shredded == 2
    lines = b"".join(read_archive(report.archive, bytes.fromhex(report.archive_key))).splitlines()
    archived = {(r["resourceType"], r["id"]) for r in map(orjson.loads, lines)}
    assert archived == {
        ("Patient", north.patient_id),
        ("Patient", north.other_patient_id),
        ("Observation", obs),
        ("Organization", org.resource_id),
    }
    assert b"Quintero" not in report.archive.read_bytes()  # sealed at rest
    with pytest.raises(ValueError, match="authentication"):
        list(read_archive(report.archive, bytes(32)))

    for pid in (north.patient_id, north.other_patient_id):
        with pytest.raises(NotFound):
            gate.read("Patient", pid)
    with pytest.raises(NotFound):
        gate.read("Organization", org.resource_id)
    assert client.get("/fhir/Patient", headers=north.headers()).status_code == 401  # accounts off
    assert (
        client.get(f"/fhir/Patient/{south.patient_id}", headers=south.headers()).status_code == 200
    )

    cert = certificates.load(runtime.gate_services, north.tenant_id, report.certificate_id)
    assert certificates.verify(runtime.gate_services, cert)
    assert {i.patient_id for i in cert.destroyed if i.patient_id} == {
        north.patient_id,
        north.other_patient_id,
    }
    assert any(report.archive_sha256 in (k.why or "") for k in cert.kept)
    assert runtime.audit_verification(north.tenant_id).ok


def test_offboard_command(
    settings: Settings,
    runtime: Runtime,
    clinic: Clinic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from carevault import cli

    for name in ("home", "database_url"):
        value = getattr(settings, name)
        if value is not None:
            monkeypatch.setenv(f"CAREVAULT_{name.upper()}", str(value))
    args = ["tenant", "offboard", "--tenant", "south", "--archive", str(tmp_path), "--yes"]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    assert "patients shredded\t2" in result.output
    assert len(list(tmp_path.glob("south-*.cvarchive"))) == 1


def test_a_patient_deletes_what_they_submitted_and_nothing_else(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    site = clinic.north
    gate = runtime.gate(system_actor(site.tenant_id, "test fixture"))
    me = f"Patient/{site.patient_id}"
    mine = gate.create(
        "QuestionnaireResponse",
        {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "subject": {"reference": me},
            "author": {"reference": me},
        },
    ).resource_id
    theirs = gate.create(
        "DocumentReference",
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "subject": {"reference": me},
            "content": [{"attachment": {"contentType": "text/plain"}}],
        },
    ).resource_id
    other = gate.create(
        "QuestionnaireResponse",
        {
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "subject": {"reference": f"Patient/{site.other_patient_id}"},
        },
    ).resource_id
    patient = site.headers("patient")

    denied = client.delete(f"/patient/submissions/DocumentReference/{theirs}", headers=patient)
    assert denied.status_code == 403
    assert "submitted yourself" in denied.json()["detail"]
    assert (
        client.delete(
            f"/patient/submissions/QuestionnaireResponse/{other}", headers=patient
        ).status_code
        == 404
    )
    assert (
        client.delete(f"/patient/submissions/Observation/{mine}", headers=patient).status_code
        == 403
    )
    assert (
        client.delete(
            f"/patient/submissions/QuestionnaireResponse/{mine}",
            headers=site.headers("practitioner"),
        ).status_code
        == 403
    )

    done = client.delete(f"/patient/submissions/QuestionnaireResponse/{mine}", headers=patient)
    assert done.status_code == 200, done.text
    assert done.json()["kind"] == "submission"
    doc = site.headers("practitioner")
    assert client.get(f"/fhir/QuestionnaireResponse/{mine}", headers=doc).status_code == 404
    assert (
        client.get(f"/fhir/QuestionnaireResponse/{mine}/_history", headers=doc).status_code == 404
    )
    assert client.get(f"/fhir/DocumentReference/{theirs}", headers=doc).status_code == 200
    assert client.get(f"/fhir/Patient/{site.patient_id}", headers=doc).status_code == 200


def test_a_patient_closes_their_account(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    site = clinic.north
    patient = site.headers("patient")
    done = client.post("/patient/account/close", headers=patient)
    assert done.status_code == 200, done.text
    assert done.json() == {"inactivated": True, "data_kept_until": None}  # default: until asked
    assert client.get(f"/fhir/Patient/{site.patient_id}", headers=patient).status_code == 401
    # the record itself is the practice's, and stays
    doc = site.headers("practitioner")
    assert client.get(f"/fhir/Patient/{site.patient_id}", headers=doc).status_code == 200
    # its token stopped working at once
    other = client.post("/patient/account/close", headers=patient)
    assert other.status_code == 401


def test_an_account_switched_back_on_can_be_closed_again(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    site = clinic.north
    tenant = runtime.identity.tenant_by_slug("north")
    user = runtime.identity.user_id_by_email(tenant, "patient@north.example.org")
    assert client.post("/patient/account/close", headers=site.headers("patient")).status_code == 200
    again = client.patch(
        f"/admin/users/{user}", json={"active": True}, headers=site.headers("practice-admin")
    )
    assert again.status_code == 204, again.text
    token = runtime.identity.create_token(tenant, user).token
    closed = client.post("/patient/account/close", headers={"Authorization": f"Bearer {token}"})
    assert closed.status_code == 200, closed.text


def test_a_workforce_account_is_not_closed_from_the_patient_route(
    client: TestClient, clinic: Clinic
) -> None:
    site = clinic.north
    for role in ("practitioner", "privacy-officer"):
        done = client.post("/patient/account/close", headers=site.headers(role))
        assert done.status_code == 403, done.text
        assert "administrator" in done.json()["detail"]
        assert client.get("/fhir/metadata", headers=site.headers(role)).status_code == 200
        assert client.get("/privacy/alerts", headers=site.headers(role)).status_code != 401


def test_an_administrator_cannot_inactivate_their_own_account(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    site = clinic.north
    tenant = runtime.identity.tenant_by_slug("north")
    officer = runtime.identity.user_id_by_email(tenant, "privacy-officer@north.example.org")
    done = client.post(
        f"/privacy/accounts/{officer}/inactivate", headers=site.headers("privacy-officer")
    )
    assert done.status_code == 409, done.text
    assert client.get("/privacy/alerts", headers=site.headers("privacy-officer")).status_code == 200


def test_the_officer_inactivates_an_account(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    site = clinic.north
    tenant = runtime.identity.tenant_by_slug("north")
    staff = runtime.identity.user_id_by_email(tenant, "staff@north.example.org")
    url = f"/privacy/accounts/{staff}/inactivate"
    assert client.post(url, headers=site.headers("patient")).status_code == 403
    assert client.get("/fhir/Patient", headers=site.headers("staff")).status_code == 200
    done = client.post(url, headers=site.headers("privacy-officer"))
    assert done.status_code == 200, done.text
    assert done.json() == {"inactivated": staff, "data_kept_until": None}
    assert client.get("/fhir/Patient", headers=site.headers("staff")).status_code == 401
    assert client.post(url, headers=site.headers("privacy-officer")).status_code == 404  # done
