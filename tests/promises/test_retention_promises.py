"""Retention promises, each under its seed's profile: the schedule falls due on the simulated
day and not before, a hold or a provider's duty keeps what it covers, an account closing
starts its clock, and an ended contract archives then removes the tenant's ePHI."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from carevault.errors import NotFound
from carevault.identity.models import system_actor
from carevault.identity.permissions import Role
from carevault.privacy.offboarding import read_archive
from carevault.retention import certificates
from tests.promises.lifecycle_steps import (
    Profiled,
    advance,
    biometric,
    carevault,
    create,
    dry_run,
    read_status,
    scheduled_run,
    user_id,
    visit,
)

THREE_YEARS = timedelta(days=1095)
MONTH = timedelta(days=30)


@pytest.mark.promise("HS-26")
def test_healthsoft_biometric_data_go_three_years_after_the_last_interaction(
    profiled: Profiled,
) -> None:
    dep = profiled("healthsoft")
    north = dep.clinic.north
    idle = create(dep, north, biometric(north.patient_id, phi=False))
    active = create(dep, north, biometric(north.other_patient_id, phi=False))

    # the other person keeps interacting every ~4 months; the first never comes back
    for _ in range(8):
        advance(dep, timedelta(days=120))
        create(dep, north, visit(north.other_patient_id))
    advance(dep, THREE_YEARS - timedelta(days=960) - MONTH)  # 3 years less a month
    assert dry_run(dep, north)["due"] == []
    assert scheduled_run(dep, north).deleted == []
    assert read_status(dep, north, "Observation", idle) == 200

    advance(dep, MONTH)  # exactly three years since the last interaction
    preview = dry_run(dep, north)
    assert [(d["category"], d["resource_id"]) for d in preview["due"]] == [("biometric", idle)]
    report = scheduled_run(dep, north)
    assert [d.resource_id for d in report.deleted] == [idle]
    assert read_status(dep, north, "Observation", idle) in (404, 410)
    assert read_status(dep, north, "Observation", active) == 200  # its owner is still active
    assert read_status(dep, north, "Patient", north.patient_id) == 200  # only the biometric

    officer = north.headers("privacy-officer")
    cert = dep.client.get(f"/privacy/certificates/{report.certificate_id}", headers=officer)
    assert cert.status_code == 200, cert.text
    assert idle in cert.text
    assert dep.runtime.audit_verification(north.tenant_id).ok


@pytest.mark.promise("HS-27")
def test_healthsoft_biometric_phi_waits_for_the_provider(profiled: Profiled) -> None:
    dep = profiled("healthsoft")
    north = dep.clinic.north
    bio_phi = create(dep, north, biometric(north.patient_id, phi=True))
    advance(dep, THREE_YEARS * 2)
    for _ in range(3):
        report = scheduled_run(dep, north)
        assert report.deleted == []
        kept = {k.resource_id: k.why for k in report.kept}
        assert kept[bio_phi] == "biometric PHI: kept until the provider asks"
        advance(dep, timedelta(days=365))
    assert read_status(dep, north, "Observation", bio_phi) == 200

    officer = north.headers("privacy-officer")
    body = {"patient_id": north.patient_id, "written_request": "case-17",
            "verified_by": "id-document"}  # fmt: skip
    refused = dep.client.post("/privacy/deletions", json=body, headers=officer)
    assert refused.status_code == 403  # no instruction from the provider yet
    assert "tenant's instruction" in refused.json()["detail"]
    assert read_status(dep, north, "Observation", bio_phi) == 200
    asked = dep.client.post(
        "/privacy/deletions", json=body | {"tenant_instruction": True}, headers=officer
    )
    assert asked.status_code == 201, asked.text
    assert read_status(dep, north, "Observation", bio_phi) in (404, 410)


@pytest.mark.promise("AM-17")
def test_allmeds_account_data_kept_a_year_after_the_account_closes(
    profiled: Profiled,
) -> None:
    dep = profiled("allmeds")
    north = dep.clinic.north
    patient_user = user_id(dep, north, "patient")
    closed = dep.client.post("/patient/account/close", headers=north.headers("patient"))
    assert closed.status_code == 200, closed.text
    kept_until = closed.json()["data_kept_until"]
    assert kept_until[:10] == (dep.clock.now() + timedelta(days=365)).date().isoformat()

    advance(dep, timedelta(days=364))
    assert scheduled_run(dep, north).deleted == []
    tenant = dep.runtime.identity.tenant_by_slug("north")
    with pytest.raises(Exception, match=r"(?i)exist|taken|already|in use"):
        dep.runtime.identity.create_user(tenant, "patient@north.example.org", Role.PATIENT)

    advance(dep, timedelta(days=2))
    assert [d["category"] for d in dry_run(dep, north)["due"]] == ["account"]
    report = scheduled_run(dep, north)
    assert [(d.category, d.resource_id) for d in report.deleted] == [("account", patient_user)]
    # the personal data of the account is gone: its address is free again
    dep.runtime.identity.create_user(tenant, "patient@north.example.org", Role.PATIENT)
    # the PHI is the practice's and is not touched by the account's schedule
    assert read_status(dep, north, "Patient", north.patient_id) == 200


@pytest.mark.promise("AM-18", "AM-19")
def test_allmeds_contract_end_archives_then_removes_the_tenants_ephi(
    profiled: Profiled, tmp_path: Path
) -> None:
    dep = profiled("allmeds")
    north, south = dep.clinic.north, dep.clinic.south
    obs = create(dep, north, {"resourceType": "Observation", "status": "final",
                              "code": {"text": "bp"},
                              "subject": {"reference": f"Patient/{north.patient_id}"}})  # fmt: skip
    archive_dir = tmp_path / "archive"
    archive_dir.mkdir()
    done = carevault(dep, "tenant", "offboard", "--tenant", "north",
                     "--archive", str(archive_dir), "--yes")  # fmt: skip
    assert done.exit_code == 0, done.output
    lines = dict(line.split("\t", 1) for line in done.output.splitlines() if "\t" in line)
    assert lines["patients shredded"] == "2"

    # AM-19: the archived copy holds every record, and opens only with the key handed over
    (archive,) = archive_dir.glob("north-*.cvarchive")
    key = bytes.fromhex(lines["archive key"].strip())
    body = b"".join(read_archive(archive, key))
    archived = {(r["resourceType"], r["id"]) for r in map(orjson.loads, body.splitlines())}
    assert {("Patient", north.patient_id), ("Patient", north.other_patient_id),
            ("Observation", obs)} <= archived  # fmt: skip
    assert b"Quintero" not in archive.read_bytes()

    # AM-18: then the ePHI is removed: nothing readable, even to the system, accounts off
    gate = dep.runtime.gate(system_actor(north.tenant_id, "after offboarding"))
    for rtype, rid in (("Patient", north.patient_id), ("Observation", obs)):
        with pytest.raises(NotFound):
            gate.read(rtype, rid)
    assert read_status(dep, north, "Patient", north.patient_id) == 401
    assert read_status(dep, south, "Patient", south.patient_id) == 200  # another tenant stays
    certificate_id = lines["certificate"].strip()
    cert = certificates.load(dep.runtime.gate_services, north.tenant_id, certificate_id)
    assert certificates.verify(dep.runtime.gate_services, cert)
    assert cert.kind == "tenant"


@pytest.mark.promise("LI-48")
def test_lifeimage_phi_of_a_closed_account_is_kept_until_the_provider_deletes_it(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    north = dep.clinic.north
    obs = create(dep, north, {"resourceType": "Observation", "status": "final",
                              "code": {"text": "CT head"},
                              "subject": {"reference": f"Patient/{north.patient_id}"}})  # fmt: skip
    closed = dep.client.post("/patient/account/close", headers=north.headers("patient"))
    assert closed.status_code == 200, closed.text
    assert read_status(dep, north, "Patient", north.patient_id, role="patient") == 401
    # the retention job never deletes the closed account's PHI by itself, year after year
    for _ in range(7):
        advance(dep, timedelta(days=365))
        report = scheduled_run(dep, north)
        assert all(d.patient_id != north.patient_id for d in report.deleted)
        assert read_status(dep, north, "Observation", obs) == 200
    # the legal period over, the provider instructs the deletion: certified, and gone
    officer = north.headers("privacy-officer")
    body = {"patient_id": north.patient_id, "written_request": "legal period ended",
            "verified_by": "provider-instruction", "tenant_instruction": True}  # fmt: skip
    done = dep.client.post("/privacy/deletions", json=body, headers=officer)
    assert done.status_code == 201, done.text
    assert done.json()["kind"] == "patient"
    assert read_status(dep, north, "Observation", obs) in (404, 410)
