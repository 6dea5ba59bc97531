"""Rights promises of AllMeds (seed 002): practitioners manage their account themselves; a
file of the personal information held, released only after verification; closing the
account; a verified written request deletes permanently where the system delete only hides;
PHI requests go to the practice; patients review their record in the portal."""

from __future__ import annotations

from typing import Any

import pytest

from carevault.crypto.keystore import VENDOR_CHAIN
from tests.account_helpers import enrol_totp
from tests.promises.conftest import Deployment
from tests.promises.rights_steps import (
    VENDOR,
    as_person,
    audit,
    bearer,
    copy,
    create,
    day,
    days,
    file,
    observation,
    phi_requests_go_to_the_provider,
    points,
    queue,
    refused,
    sign_in,
    today_plus,
    work,
)

FILE = {"action": "access", "categories": ["account", "marketing-contacts"], "channel": "email"}


@pytest.mark.promise("AM-28")
def test_allmeds_a_practitioner_manages_their_account_in_settings(profiled: Any) -> None:
    dep: Deployment = profiled("allmeds")
    north = dep.clinic.north
    started = sign_in(dep.client, north, "practitioner")
    assert started.status_code == 200, started.text
    _, token = enrol_totp(dep.client, dep.runtime, started.json()["token"])
    me = dep.client.get("/auth/session", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["role"] == "practitioner"
    assert "totp" in me.json()["factors"]
    new = "dr.north@example.org"
    assert dep.client.put(
        "/auth/email", headers=bearer(token), json={"email": new}
    ).status_code == (204)
    phone = dep.client.put("/auth/phone", headers=bearer(token), json={"phone": "+1 555 0123"})
    assert phone.status_code == 204
    days(dep, 0.001)
    again = sign_in(dep.client, north, "practitioner", new)
    assert again.status_code == 200
    assert again.json()["stage"] == "mfa"  # the same account, with its second factor


@pytest.mark.promise("AM-29")
def test_allmeds_an_access_request_yields_a_file(profiled: Any) -> None:
    dep: Deployment = profiled("allmeds")
    made, route = file(dep, FILE, role="practitioner")
    assert (route["right"], route["decides"]) == ("personal-access", VENDOR)
    assert "California Consumer Privacy Act" not in route["explanation"]
    assert day(made["due_at"]) == today_plus(dep, 30)
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    assert done.json()["copies"] == ["json"]
    got = copy(dep, made["request_id"], "json", "practitioner")
    assert got.headers["content-type"] == "application/json"
    assert got.json()["account"]["email"] == "practitioner@north.example.org"


@pytest.mark.promise("AM-30")
def test_allmeds_no_file_before_identity_is_verified(profiled: Any) -> None:
    dep: Deployment = profiled("allmeds")
    held = points(dep, "practitioner")
    for given in ({}, {"email": held["email"]}, {**held, "account_created_on": "2019-08-12"}):
        answer = refused(dep, as_person(dep, FILE, given), role=None)
        assert answer.status_code == 403
        assert "nothing was disclosed" in answer.json()["detail"]
    assert queue(dep, "vendor-operator") == []
    made, _ = file(dep, as_person(dep, FILE, held), role=None)
    assert made["verification"] == "data-points:2"
    assert copy(dep, made["request_id"], "json", "practitioner").status_code == 404  # not yet
    assert work(dep, made, "fulfil", {}).status_code == 200
    assert copy(dep, made["request_id"], "json", "practitioner").status_code == 200
    # the file goes to the verified account holder only
    assert copy(dep, made["request_id"], "json", "staff").status_code == 404


@pytest.mark.promise("AM-31")
def test_allmeds_a_closure_request_closes_the_account(profiled: Any) -> None:
    dep: Deployment = profiled("allmeds")
    north = dep.clinic.north
    body = {"action": "delete", "categories": ["account"], "channel": "email"}
    made, route = file(dep, body, role="practitioner")
    assert route["right"] == "account-closure"
    assert work(dep, made, "decide", {"decision": "accept"}).status_code == 200
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    deletion = done.json()["fulfilment"]["deletion"]
    assert deletion["account"] == "inactivated"
    assert day(deletion["erased_after"]) == today_plus(dep, 365)  # the policy's one year
    doctor = north.headers("practitioner")
    assert dep.client.get(f"/fhir/Patient/{north.patient_id}", headers=doctor).status_code == 401
    assert sign_in(dep.client, north, "practitioner").status_code == 401


@pytest.mark.promise("AM-32")
def test_allmeds_a_verified_written_request_deletes_permanently(profiled: Any) -> None:
    dep: Deployment = profiled("allmeds")
    north = dep.clinic.north
    pid = north.patient_id
    glucose = create(dep.runtime, north, observation(pid))
    officer, doctor = north.headers("privacy-officer"), north.headers("practitioner")
    # the system delete only hides: restored, it is all there again
    assert dep.client.post(
        "/privacy/soft-deletes", json={"patient_id": pid}, headers=officer
    ).status_code == (201)
    assert dep.client.get(f"/fhir/{glucose}", headers=doctor).status_code == 404
    restored = dep.client.post(
        "/privacy/soft-deletes/restore", json={"patient_id": pid}, headers=officer
    )
    assert restored.status_code == 200
    assert dep.client.get(f"/fhir/{glucose}", headers=doctor).status_code == 200
    # permanent deletion needs the request in writing and how the identity was verified
    for body in (
        {"patient_id": pid, "tenant_instruction": True},
        {"patient_id": pid, "written_request": "letter 2026-11-20", "tenant_instruction": True},
    ):
        refusal = dep.client.post("/privacy/deletions", json=body, headers=officer)
        assert refusal.status_code == 400
        assert "written request" in refusal.json()["detail"]
    assert dep.client.get(f"/fhir/{glucose}", headers=doctor).status_code == 200
    done = dep.client.post(
        "/privacy/deletions",
        json={
            "patient_id": pid,
            "written_request": "letter of 2026-11-20",
            "verified_by": "photo id checked at the front desk",
            "tenant_instruction": True,
        },
        headers=officer,
    )
    assert done.status_code == 201, done.text
    cert = done.json()
    assert cert["kind"] == "patient"
    assert "crypto-shredding" in cert["method"]
    for path in (f"/fhir/{glucose}", f"/fhir/Patient/{pid}", f"/fhir/Patient/{pid}/_history"):
        assert dep.client.get(path, headers=doctor).status_code in (404, 410), path
    # and no restore brings it back
    dep.client.post("/privacy/soft-deletes/restore", json={"patient_id": pid}, headers=officer)
    assert dep.client.get(f"/fhir/{glucose}", headers=doctor).status_code in (404, 410)


@pytest.mark.promise("AM-33")
def test_allmeds_phi_requests_go_to_the_practitioner(profiled: Any) -> None:
    dep: Deployment = profiled("allmeds")
    cases = phi_requests_go_to_the_provider(dep)
    assert all(c["rulebook"] == "hipaa" for c in cases.values())


@pytest.mark.promise("AM-34")
def test_allmeds_a_patient_reviews_their_record_in_the_portal(profiled: Any) -> None:
    dep: Deployment = profiled("allmeds")
    north = dep.clinic.north
    mine = create(dep.runtime, north, observation(north.patient_id, "A1c 5.4"))
    theirs = create(dep.runtime, north, observation(north.other_patient_id))
    patient = north.headers("patient")
    record = dep.client.get(f"/fhir/Patient/{north.patient_id}", headers=patient)
    assert record.status_code == 200
    assert record.json()["name"][0]["family"] == "Quintero"
    everything = dep.client.get(f"/fhir/Patient/{north.patient_id}/$everything", headers=patient)
    assert everything.status_code == 200
    assert mine in {
        f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in everything.json()["entry"]
    }
    assert dep.client.get(f"/fhir/{mine}", headers=patient).status_code == 200
    assert dep.client.get(f"/fhir/{theirs}", headers=patient).status_code in (403, 404)
    other = dep.client.get(f"/fhir/Patient/{north.other_patient_id}", headers=patient)
    assert other.status_code in (403, 404)


SHINE = {"action": "shine-the-light", "categories": ["account", "marketing-contacts"]}


@pytest.mark.promise("AM-35")
def test_allmeds_shine_the_light_lists_marketing_disclosures_once_a_year(profiled: Any) -> None:
    dep: Deployment = profiled("allmeds")
    made, route = file(dep, SHINE, role="staff")
    assert (route["right"], route["decides"]) == ("ca-shine-the-light", VENDOR)
    assert day(made["due_at"]) == today_plus(dep, 30)
    # the 30-day answer: on time at day 29 and day 30, late at day 31
    days(dep, 29)
    assert [r["late"] for r in queue(dep, "vendor-operator")] == [False]
    days(dep, 1)
    assert [r["late"] for r in queue(dep, "vendor-operator")] == [False]
    days(dep, 1)
    assert [r["late"] for r in queue(dep, "vendor-operator")] == [True]
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    assert done.json()["fulfilment"]["disclosed_for_direct_marketing"] == 0
    listed = copy(dep, made["request_id"], "json", "staff").json()
    assert listed["disclosed_for_direct_marketing"] == []
    assert listed["law"] == "Cal. Civ. Code 1798.83"
    records = listed["from_the_records"]
    assert records["sells_personal_information"] is False
    assert records["policy"] == "AllMeds"
    assert "disclosed none of your personal information" in listed["answer"]
    # one request a year: refused with the reason at day 364, taken again from day 365
    days(dep, 364 - 31)
    again = refused(dep, SHINE, role="staff")
    assert again.status_code == 422
    detail = again.json()["detail"]
    assert "1 such request in any 12 months" in detail
    assert f"You may ask again from {today_plus(dep, 1)}" in detail
    assert queue(dep, "vendor-operator") == []  # nothing opened
    trail = [e.detail or "" for e in audit(dep.runtime, VENDOR_CHAIN) if e.outcome != "success"]
    assert any("refused: ca-shine-the-light" in d for d in trail)
    days(dep, 1)  # day 365: the first request has left the 12 months
    second, _ = file(dep, SHINE, role="staff")
    days(dep, 1)  # day 366: and the new one counts now
    assert refused(dep, SHINE, role="staff").status_code == 422
    assert [r["request_id"] for r in queue(dep, "vendor-operator")] == [second["request_id"]]
