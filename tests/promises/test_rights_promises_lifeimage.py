"""Rights promises of lifeIMAGE (seed 003): self-service updates of the account; a Request
for Correction (60 + 30 days) and a copy (30 + 30) at a cost-based fee; denials explained in
writing; inactivation only after the identity is verified, after which the health
information is no longer displayed to the account."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pypdf import PdfReader

from tests.promises.conftest import Deployment
from tests.promises.rights_steps import (
    as_person,
    bearer,
    case,
    copy,
    create,
    day,
    days,
    file,
    in_time,
    notice,
    observation,
    points,
    queue,
    refused,
    sign_in,
    today_plus,
    work,
)

ACCESS = {"action": "access", "categories": ["phi"], "forms": ["bundle", "pdf"]}
DENY = {
    "decision": "deny",
    "basis": "accurate-and-complete",
    "reason": "The reading was checked against the original images and stands.",
}


def _correction(dep: Deployment, value: str = "high") -> tuple[str, dict[str, Any]]:
    north = dep.clinic.north
    glucose = create(dep.runtime, north, observation(north.patient_id, value))
    body = {
        "action": "correct",
        "categories": ["phi"],
        "resources": [glucose],
        "statement": "The result was within range; the lab re-ran it.",
    }
    return glucose, body


@pytest.mark.promise("LI-42")
def test_lifeimage_the_account_is_updated_by_its_holder(profiled: Any) -> None:
    dep: Deployment = profiled("lifeimage")
    north = dep.clinic.north
    started = sign_in(dep.client, north, "patient")
    assert started.status_code == 200, started.text
    token = started.json()["token"]
    me = dep.client.get("/auth/session", headers=bearer(token))
    assert me.status_code == 200
    assert me.json()["role"] == "patient"
    new = "alicia.new@example.org"
    changed = dep.client.put("/auth/email", headers=bearer(token), json={"email": new})
    assert changed.status_code == 204, changed.text
    phone = dep.client.put("/auth/phone", headers=bearer(token), json={"phone": "+1 555 0101"})
    assert phone.status_code == 204, phone.text
    days(dep, 0.001)
    assert sign_in(dep.client, north, "patient", new).status_code == 200
    assert sign_in(dep.client, north, "patient").status_code == 401
    # another user cannot update it
    other = sign_in(dep.client, dep.clinic.south, "patient").json()["token"]
    assert (
        dep.client.get("/auth/session", headers=bearer(other)).json()["user_id"]
        != (me.json()["user_id"])
    )


@pytest.mark.promise("LI-43")
def test_lifeimage_a_request_for_correction_is_answered_in_60_plus_30_days(
    profiled: Any,
) -> None:
    dep: Deployment = profiled("lifeimage")
    glucose, body = _correction(dep)
    made, route = file(dep, body)
    assert (route["rulebook"], route["right"]) == ("hipaa", "hipaa-amendment")
    assert day(made["due_at"]) == today_plus(dep, 60)
    days(dep, 59)
    extended = work(dep, made, "extend", {"reason": "The originating lab must confirm the re-run."})
    assert extended.status_code == 200, extended.text
    assert day(extended.json()["due_at"]) == today_plus(dep, 31)  # 60 + 30 from receipt
    days(dep, 30)  # day 89 of 90
    assert work(dep, made, "decide", {"decision": "accept"}).status_code == 200
    rid = glucose.split("/")[1]
    amended = {**observation(dep.clinic.north.patient_id, "within range"), "id": rid}
    done = work(dep, made, "fulfil", {"amended": [amended]})
    assert done.status_code == 200, done.text
    assert in_time(done.json())
    doctor = dep.clinic.north.headers("practitioner")
    now = dep.client.get(f"/fhir/{glucose}", headers=doctor).json()
    assert now["valueString"] == "within range"
    # a correction left unanswered past 60 days with no extension is shown late
    _, again = _correction(dep, "low")
    late, _ = file(dep, again)
    days(dep, 61)
    assert [(r["request_id"], r["late"]) for r in queue(dep, "privacy-officer")] == [
        (late["request_id"], True)
    ]


@pytest.mark.promise("LI-44")
def test_lifeimage_a_copy_of_the_account_in_30_plus_30_days(profiled: Any) -> None:
    dep: Deployment = profiled("lifeimage")
    north = dep.clinic.north
    study = create(
        dep.runtime,
        north,
        {
            "resourceType": "ImagingStudy",
            "status": "available",
            "subject": {"reference": f"Patient/{north.patient_id}"},
        },
    )
    made, route = file(dep, ACCESS)
    assert route["right"] == "hipaa-access"
    assert day(made["due_at"]) == today_plus(dep, 30)
    days(dep, 29)
    extended = work(dep, made, "extend", {"reason": "Your older images are in archive storage."})
    assert day(extended.json()["due_at"]) == today_plus(dep, 31)  # 30 + 30 from receipt
    days(dep, 30)  # day 59 of 60
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    assert done.json()["copies"] == ["bundle", "pdf"]
    assert in_time(done.json())
    bundle = copy(dep, made["request_id"], "bundle").json()
    refs = {e["fullUrl"] for e in bundle["entry"]}
    assert {f"Patient/{north.patient_id}", study} <= refs
    assert f"Patient/{north.other_patient_id}" not in refs
    pdf = copy(dep, made["request_id"], "pdf")
    assert pdf.headers["content-type"] == "application/pdf"


@pytest.mark.promise("LI-45")
def test_lifeimage_a_denied_correction_or_access_is_explained_in_writing(profiled: Any) -> None:
    dep: Deployment = profiled("lifeimage")
    _, body = _correction(dep)
    fix, _ = file(dep, body)
    access, _ = file(dep, {**ACCESS, "forms": ["pdf"]})
    no_reason = work(dep, fix, "decide", {"decision": "deny", "basis": "accurate-and-complete"})
    assert no_reason.status_code == 400  # a denial without a written reason is refused
    assert work(dep, fix, "decide", DENY).status_code == 200
    psychotherapy = {
        "decision": "deny",
        "basis": "psychotherapy-notes",
        "reason": "The notes you asked for are a therapist's separate psychotherapy notes.",
    }
    assert work(dep, access, "decide", psychotherapy).status_code == 200
    for made, reason, basis in (
        (fix, DENY["reason"], "accurate and complete"),
        (access, psychotherapy["reason"], "psychotherapy notes"),
    ):
        view = case(dep, made["request_id"]).json()
        assert view["status"] == "denied"
        letter = notice(view, "denied")
        assert reason in letter
        assert basis in letter
        assert "Secretary of Health and Human Services" in letter
    assert "statement disagreeing" in notice(case(dep, fix["request_id"]).json(), "denied")


@pytest.mark.promise("LI-46")
def test_lifeimage_inactivation_waits_for_verification(profiled: Any) -> None:
    dep: Deployment = profiled("lifeimage")
    north = dep.clinic.north
    close = {"action": "delete", "categories": ["account"], "channel": "email"}
    held = points(dep, "patient")
    unverified = refused(dep, as_person(dep, close, {"email": held["email"]}), role=None)
    assert unverified.status_code == 403
    assert "could not verify" in unverified.json()["detail"]
    assert queue(dep, "vendor-operator") == []
    reader = north.headers("patient")
    assert dep.client.get(f"/fhir/Patient/{north.patient_id}", headers=reader).status_code == 200
    made, route = file(dep, as_person(dep, close, held), role=None)
    assert route["right"] == "account-inactivation"
    assert made["verification"] == "data-points:2"
    # verified: the vendor takes the action; until then nothing changes
    assert dep.client.get(f"/fhir/Patient/{north.patient_id}", headers=reader).status_code == 200
    assert work(dep, made, "fulfil", {}).status_code == 409  # decided first
    assert work(dep, made, "decide", {"decision": "accept"}).status_code == 200
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    assert done.json()["fulfilment"]["deletion"]["account"] == "inactivated"
    assert dep.client.get(f"/fhir/Patient/{north.patient_id}", headers=reader).status_code == 401


@pytest.mark.promise("LI-47")
def test_lifeimage_an_inactivated_account_no_longer_displays_the_record(profiled: Any) -> None:
    dep: Deployment = profiled("lifeimage")
    north = dep.clinic.north
    glucose = create(dep.runtime, north, observation(north.patient_id))
    patient = north.headers("patient")
    assert dep.client.get(f"/fhir/{glucose}", headers=patient).status_code == 200
    done = dep.client.post("/patient/account/close", headers=patient)
    assert done.status_code == 200, done.text
    assert done.json()["inactivated"] is True
    for path in (f"/fhir/{glucose}", f"/fhir/Patient/{north.patient_id}", "/patient/access-log"):
        assert dep.client.get(path, headers=patient).status_code == 401, path
    assert sign_in(dep.client, north, "patient").status_code == 401
    # the record is kept (for the period the law requires), not displayed to the account
    doctor = north.headers("practitioner")
    assert dep.client.get(f"/fhir/{glucose}", headers=doctor).status_code == 200


@pytest.mark.promise("LI-50")
def test_lifeimage_a_copy_costs_at_most_a_cost_based_fee(profiled: Any) -> None:
    dep: Deployment = profiled("lifeimage")
    made, _ = file(dep, ACCESS)
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    fulfilment = done.json()["fulfilment"]
    assert fulfilment["fee"] == 0  # an electronic copy costs nothing to make
    assert "cost-based fee" in fulfilment["fee_note"]
    pdf = copy(dep, made["request_id"], "pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "cost-based fee" in text
    assert "cost-based fee" in notice(case(dep, made["request_id"]).json(), "fulfilled")
