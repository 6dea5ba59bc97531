"""Patients and representatives: a patient reaches only their own compartment; a
representative acts for a patient only through a recorded, verified relationship; a parent's
reach ends the day the minor turns 18; an agent carries a document and an expiry; revoked or
expired means no reach at once; reads are audited on behalf of the patient."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from carevault.clock import ManualClock
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.access_helpers import create, fresh_token, user_id
from tests.audit_rows import audit_of
from tests.cli_process import run_cli
from tests.conftest import Clinic

MINOR = {"resourceType": "Patient", "name": [{"family": "Young"}], "birthDate": "2010-06-15"}
DIGEST = hashlib.sha256(b"signed power of attorney").hexdigest()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_patient_sees_only_their_own_compartment(client: TestClient, clinic: Clinic) -> None:
    north = clinic.north
    mine = client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers("patient"))
    assert mine.status_code == 200
    for pid in (north.other_patient_id, clinic.south.patient_id):
        other = client.get(f"/fhir/Patient/{pid}", headers=north.headers("patient"))
        assert other.status_code == 404
    listed = client.get("/fhir/Patient", headers=north.headers("patient")).json()
    assert {e["resource"]["id"] for e in listed.get("entry", [])} == {north.patient_id}


def test_parent_reach_is_verified_and_ends_at_eighteen(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    minor = create(runtime, north, dict(MINOR))
    rep = user_id(runtime, north, "representative")
    staff = north.headers("staff")
    assert client.get(f"/fhir/Patient/{minor}", headers=north.headers("representative")
                      ).status_code == 404  # fmt: skip

    recorded = client.post("/access/representations", headers=staff, json={
        "representative": rep, "patient": minor, "kind": "parent"})  # fmt: skip
    assert recorded.status_code == 201, recorded.text
    rid = recorded.json()["representation_id"]
    (entry,) = audit_of(runtime, recorded)
    assert entry["patient_ids"] == [minor]
    assert entry["outcome"] == "success"
    # recorded is not verified: still nothing
    assert client.get(f"/fhir/Patient/{minor}", headers=north.headers("representative")
                      ).status_code == 404  # fmt: skip
    bad = client.post(f"/access/representations/{rid}/verify", headers=staff,
                      json={"method": "a hunch"})  # fmt: skip
    assert bad.status_code == 400
    assert audit_of(runtime, bad)[0]["outcome"] == "invalid"
    verified = client.post(f"/access/representations/{rid}/verify", headers=staff,
                           json={"method": "birth-certificate"})  # fmt: skip
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert body["reach_ends_at"] == "2028-06-15T00:00:00.000000Z"
    assert body["verified_by"] == user_id(runtime, north, "staff")
    assert body["verification_method"] == "birth-certificate"
    again = client.post(f"/access/representations/{rid}/verify", headers=staff,
                        json={"method": "birth-certificate"})  # fmt: skip
    assert again.status_code == 409

    read = client.get(f"/fhir/Patient/{minor}", headers=north.headers("representative"))
    assert read.status_code == 200
    (entry,) = audit_of(runtime, read)
    assert (entry["on_behalf_of"], entry["purpose"]) == (minor, "FAMRQT")
    assert entry["actor_role"] == "representative"
    for pid in (north.patient_id, north.other_patient_id):  # nobody else's record
        other = client.get(f"/fhir/Patient/{pid}", headers=north.headers("representative"))
        assert other.status_code == 404

    # the day before the 18th birthday: still; the birthday itself: no more
    day_before = datetime(2028, 6, 14, 23, 59, tzinfo=UTC)
    clock.advance(day_before - clock.now())
    token = _bearer(fresh_token(runtime, north, "representative"))
    assert client.get(f"/fhir/Patient/{minor}", headers=token).status_code == 200
    clock.advance(timedelta(minutes=1))
    ended = client.get(f"/fhir/Patient/{minor}", headers=token)
    assert ended.status_code == 404
    assert audit_of(runtime, ended)[0]["outcome"] == "not-found"


def test_agents_need_a_document_and_an_expiry(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    rep = user_id(runtime, north, "representative")
    admin = north.headers("practice-admin")
    alice = north.patient_id
    expiry = (clock.now() + timedelta(days=30)).isoformat()
    refusals = [
        ({"representative": rep, "patient": alice, "kind": "authorized-agent"}, 400),
        ({"representative": rep, "patient": alice, "kind": "authorized-agent",
          "document_digest": DIGEST}, 400),  # no expiry
        ({"representative": rep, "patient": alice, "kind": "authorized-agent",
          "expires_at": expiry}, 400),  # no document
        ({"representative": rep, "patient": alice, "kind": "authorized-agent",
          "document_digest": "abc", "expires_at": expiry}, 400),
        ({"representative": rep, "patient": alice, "kind": "cousin"}, 400),
        ({"representative": rep, "patient": alice, "kind": "authorized-agent",
          "document_reference": "nope", "expires_at": expiry}, 422),
        ({"representative": rep, "patient": alice, "kind": "parent", "extra": 1}, 400),
        ({"representative": user_id(runtime, north, "staff"), "patient": alice,
          "kind": "parent"}, 422),  # not a representative user
        ({"representative": rep, "patient": clinic.south.patient_id, "kind": "parent"}, 404),
    ]  # fmt: skip
    for sent, status in refusals:
        response = client.post("/access/representations", headers=admin, json=sent)
        assert response.status_code == status, (sent, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert audit_of(runtime, response), sent
    # a parent relationship for an adult cannot be verified
    parent = client.post("/access/representations", headers=admin, json={
        "representative": rep, "patient": alice, "kind": "parent"}).json()  # fmt: skip
    adult = client.post(f"/access/representations/{parent['representation_id']}/verify",
                        headers=admin, json={"method": "in-person-id"})  # fmt: skip
    assert adult.status_code == 422
    client.post(f"/access/representations/{parent['representation_id']}/revoke", headers=admin)

    agent = client.post("/access/representations", headers=admin, json={
        "representative": rep, "patient": alice, "kind": "authorized-agent",
        "document_digest": DIGEST, "expires_at": expiry})  # fmt: skip
    assert agent.status_code == 201, agent.text
    rid = agent.json()["representation_id"]
    verified = client.post(f"/access/representations/{rid}/verify", headers=admin,
                           json={"method": "power-of-attorney"})  # fmt: skip
    assert verified.status_code == 200
    read = client.get(f"/fhir/Patient/{alice}", headers=north.headers("representative"))
    assert read.status_code == 200
    assert audit_of(runtime, read)[0]["purpose"] == "PWATRNY"
    assert audit_of(runtime, read)[0]["on_behalf_of"] == alice

    clock.advance(timedelta(days=30, seconds=1))  # expired: no reach at once
    token = _bearer(fresh_token(runtime, north, "representative"))
    assert client.get(f"/fhir/Patient/{alice}", headers=token).status_code == 404


def test_revoking_ends_reach_at_once_and_only_staff_manage(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    minor = create(runtime, north, dict(MINOR))
    rep = user_id(runtime, north, "representative")
    sent = {"representative": rep, "patient": minor, "kind": "guardian"}
    for role in ("practitioner", "patient", "representative", "privacy-officer"):
        refused = client.post("/access/representations", headers=north.headers(role), json=sent)
        assert refused.status_code == 403, role
        assert audit_of(runtime, refused)[0]["outcome"] == "denied"
    staff = north.headers("staff")
    rid = client.post("/access/representations", headers=staff, json=sent).json()[
        "representation_id"
    ]
    dup = client.post("/access/representations", headers=staff, json=sent)
    assert dup.status_code == 409
    client.post(f"/access/representations/{rid}/verify", headers=staff,
                json={"method": "court-order"})  # fmt: skip
    assert client.get(f"/fhir/Patient/{minor}", headers=north.headers("representative")
                      ).status_code == 200  # fmt: skip
    revoked = client.post(f"/access/representations/{rid}/revoke", headers=staff)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_by"] == user_id(runtime, north, "staff")
    assert client.get(f"/fhir/Patient/{minor}", headers=north.headers("representative")
                      ).status_code == 404  # fmt: skip
    assert client.post(f"/access/representations/{rid}/revoke", headers=staff).status_code == 409
    # another tenant's staff cannot see or touch it
    south = clinic.south.headers("staff")
    assert client.post(f"/access/representations/{rid}/revoke", headers=south).status_code == 404
    assert client.get("/access/representations", headers=south).json()["representations"] == []
    listed = client.get("/access/representations", headers=staff).json()["representations"]
    assert [r["representation_id"] for r in listed] == [rid]


def test_the_command_line_records_verifies_and_revokes(
    runtime: Runtime, client: TestClient, clinic: Clinic, settings: Settings
) -> None:
    north = clinic.north
    minor = create(runtime, north, dict(MINOR))
    made = run_cli(
        settings,
        "access",
        "represent",
        "--tenant",
        "north",
        "--representative",
        "representative@north.example.org",
        "--patient",
        minor,
        "--kind",
        "guardian",
        "--method",
        "court-order",
    )
    assert made.returncode == 0, made.stderr
    rid, state, ends = made.stdout.strip().split("\t")
    assert (state, ends) == ("verified", "ends 2028-06-15T00:00:00.000000Z")
    headers = north.headers("representative")
    assert client.get(f"/fhir/Patient/{minor}", headers=headers).status_code == 200
    gone = run_cli(settings, "access", "revoke-representation", "--tenant", "north",
                   "--representation", rid)  # fmt: skip
    assert gone.returncode == 0, gone.stderr
    assert client.get(f"/fhir/Patient/{minor}", headers=headers).status_code == 404
    adult = run_cli(
        settings,
        "access",
        "represent",
        "--tenant",
        "north",
        "--representative",
        "representative@north.example.org",
        "--patient",
        north.patient_id,
        "--kind",
        "parent",
        "--method",
        "in-person-id",
    )
    assert adult.returncode != 0
    assert "adult" in adult.stderr
    named = run_cli(settings, "access", "break-glass", "--tenant", "north",
                    "--user", "practitioner@north.example.org")  # fmt: skip
    assert named.returncode == 0, named.stderr
