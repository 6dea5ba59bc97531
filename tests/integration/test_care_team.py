"""The care-team rule: a practitioner reaches only patients they have an encounter, a care-team
membership or a referral with; a new Encounter grants at once and a removed one revokes at
once; outside, a plain 404 — or, to a user who may break the glass, a 403 that says how."""

from __future__ import annotations

from fastapi.testclient import TestClient

from carevault.identity.models import system_actor
from carevault.runtime import Runtime
from tests.access_helpers import (
    care_team_mode,
    create,
    encounter,
    linked_practitioner,
    name_break_glass,
)
from tests.audit_rows import audit_of
from tests.conftest import Clinic


def test_tenant_wide_reaches_every_patient(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    for pid in (north.patient_id, north.other_patient_id):
        assert client.get(f"/fhir/Patient/{pid}", headers=north.headers()).status_code == 200
    # never another tenant's patient
    south = client.get(f"/fhir/Patient/{clinic.south.patient_id}", headers=north.headers())
    assert south.status_code == 404


def test_care_team_reach_follows_encounters_at_once(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    pract = linked_practitioner(runtime, client, north)
    care_team_mode(runtime, north)
    alice, bob = north.patient_id, north.other_patient_id
    obs = create(runtime, north, {"resourceType": "Observation", "status": "final",
                                  "code": {"text": "pulse"},
                                  "subject": {"reference": f"Patient/{alice}"}})  # fmt: skip

    outside = client.get(f"/fhir/Patient/{alice}", headers=north.headers())
    assert outside.status_code == 404  # exactly like a missing one
    missing = client.get("/fhir/Patient/no-such-patient", headers=north.headers())
    assert outside.json()["issue"][0]["code"] == missing.json()["issue"][0]["code"]
    (entry,) = audit_of(runtime, outside)
    assert (entry["outcome"], entry["status"]) == ("not-found", 404)  # the refusal is audited
    found = client.get("/fhir/Observation", params={"subject": f"Patient/{alice}"},
                       headers=north.headers()).json()  # fmt: skip
    assert found.get("total", 0) == 0
    assert not found.get("entry")

    # The front desk (tenant-wide staff) schedules the encounter naming the practitioner.
    made = client.post("/fhir/Encounter", json=encounter(alice, pract),
                       headers=north.headers("staff"))  # fmt: skip
    assert made.status_code == 201, made.text
    assert client.get(f"/fhir/Patient/{alice}", headers=north.headers()).status_code == 200
    assert client.get(f"/fhir/Observation/{obs}", headers=north.headers()).status_code == 200
    assert client.get(f"/fhir/Patient/{bob}", headers=north.headers()).status_code == 404

    # The loophole is closed: nobody writes themselves into a patient's care.
    grab = client.post("/fhir/Encounter", json=encounter(bob, pract), headers=north.headers())
    assert grab.status_code in (403, 404, 422)
    assert client.get(f"/fhir/Patient/{bob}", headers=north.headers()).status_code == 404

    # Removing the encounter revokes at once.
    gate = runtime.gate(system_actor(north.tenant_id, "test fixture"))
    gate.delete("Encounter", made.json()["id"])
    assert client.get(f"/fhir/Patient/{alice}", headers=north.headers()).status_code == 404


def test_care_team_and_referral_count_but_cancelled_does_not(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    pract = linked_practitioner(runtime, client, north)
    care_team_mode(runtime, north)
    alice, bob = north.patient_id, north.other_patient_id
    create(runtime, north, encounter(bob, pract, status="cancelled"))
    assert client.get(f"/fhir/Patient/{bob}", headers=north.headers()).status_code == 404
    create(
        runtime,
        north,
        {
            "resourceType": "CareTeam",
            "status": "active",
            "subject": {"reference": f"Patient/{alice}"},
            "participant": [{"member": {"reference": f"Practitioner/{pract}"}}],
        },
    )
    assert client.get(f"/fhir/Patient/{alice}", headers=north.headers()).status_code == 200
    create(runtime, north, {"resourceType": "ServiceRequest", "status": "active",
                            "intent": "order", "code": {"text": "cardiology referral"},
                            "subject": {"reference": f"Patient/{bob}"},
                            "performer": [{"reference": f"Practitioner/{pract}"}]})  # fmt: skip
    assert client.get(f"/fhir/Patient/{bob}", headers=north.headers()).status_code == 200
    # a search returns only the reached patients' records, and never another tenant's
    listed = client.get("/fhir/Patient", headers=north.headers()).json()
    ids = {e["resource"]["id"] for e in listed.get("entry", [])}
    assert ids == {alice, bob}


def test_break_glass_user_is_told_how_outside_the_care_team(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    linked_practitioner(runtime, client, north)
    care_team_mode(runtime, north)
    name_break_glass(client, runtime, north, True)
    refused = client.get(f"/fhir/Patient/{north.other_patient_id}", headers=north.headers())
    assert refused.status_code == 403
    assert "emergency reason" in refused.json()["issue"][0]["diagnostics"]
    (entry,) = audit_of(runtime, refused)
    assert (entry["outcome"], entry["status"]) == ("denied", 403)
    # a record that does not exist is still a 404; another tenant's too
    assert client.get("/fhir/Patient/nobody", headers=north.headers()).status_code == 404
    other = client.get(f"/fhir/Patient/{clinic.south.patient_id}", headers=north.headers())
    assert other.status_code == 404
    everything = client.get(f"/fhir/Patient/{north.patient_id}/$everything",
                            headers=north.headers())  # fmt: skip
    assert everything.status_code == 403
    # un-named again: the plain 404
    name_break_glass(client, runtime, north, False)
    again = client.get(f"/fhir/Patient/{north.other_patient_id}", headers=north.headers())
    assert again.status_code == 404


def test_workforce_links_refuse_bad_input(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    from tests.access_helpers import user_id

    uid = user_id(runtime, north, "practitioner")
    admin = north.headers("practice-admin")
    cases = [
        (f"/access/users/{uid}/practitioner", {"practitioner": "no-such-one"}, admin, 422),
        (f"/access/users/{uid}/practitioner", {"practitioner": 7}, admin, 400),
        (f"/access/users/{uid}/practitioner", {}, admin, 400),
        ("/access/users/nobody/practitioner", {"practitioner": None}, admin, 404),
        (f"/access/users/{uid}/break-glass", {"allowed": "yes"}, admin, 400),
        (f"/access/users/{uid}/break-glass", {"allowed": True}, north.headers("staff"), 403),
        (f"/access/users/{uid}/break-glass", {"allowed": True}, north.headers("patient"), 403),
    ]
    for path, body, headers, status in cases:
        response = client.put(path, json=body, headers=headers)
        assert response.status_code == status, (path, body, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert audit_of(runtime, response), "every refusal is audited"
    patient_user = user_id(runtime, north, "patient")
    response = client.put(f"/access/users/{patient_user}/break-glass", json={"allowed": True},
                          headers=admin)  # fmt: skip
    assert response.status_code == 400
