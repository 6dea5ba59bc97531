"""Minimum necessary by role and purpose, through HTTP: a billing clerk (staff, HPAYMT) sees
demographics and coded encounters, never notes, results or messages, on every path that
can carry a resource out of the gate: read, vread, history, search, _include, $everything,
batch and transaction Bundles, and export."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from carevault.identity.permissions import Purpose
from carevault.runtime import Runtime
from tests.conftest import Clinic

NOTE = "patient disclosed a private matter"


def post(client: TestClient, clinic: Clinic, body: dict[str, Any]) -> str:
    response = client.post(
        f"/fhir/{body['resourceType']}", json=body, headers=clinic.north.headers()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def chart(client: TestClient, clinic: Clinic) -> dict[str, str]:
    subject = {"reference": f"Patient/{clinic.north.patient_id}"}
    encounter = post(client, clinic, {
        "resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": subject, "reasonCode": [{"text": NOTE}],
        "text": {"status": "generated", "div": f"<div xmlns=\"http://www.w3.org/1999/xhtml\">{NOTE}</div>"},
    })  # fmt: skip
    observation = post(client, clinic, {
        "resourceType": "Observation", "status": "final", "code": {"text": "mood"},
        "subject": subject, "encounter": {"reference": f"Encounter/{encounter}"},
        "note": [{"text": NOTE}],
    })  # fmt: skip
    condition = post(client, clinic, {
        "resourceType": "Condition", "subject": subject,
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "F32.9"}]},
        "note": [{"text": NOTE}],
    })  # fmt: skip
    return {"encounter": encounter, "observation": observation, "condition": condition}


@pytest.fixture
def clerk(runtime: Runtime, clinic: Clinic) -> dict[str, str]:
    tenant = runtime.identity.tenant_by_slug("north")
    user = runtime.identity.user_id_by_email(tenant, "staff@north.example.org")
    token = runtime.identity.create_token(tenant, user, purpose=Purpose.HPAYMT).token
    return {"Authorization": f"Bearer {token}"}


def redacted(resource: dict[str, Any]) -> bool:
    return any(s.get("code") == "REDACTED" for s in resource["meta"].get("security", []))


def test_billing_clerk_reads_demographics_and_coded_encounters(
    client: TestClient, clinic: Clinic, chart: dict[str, str], clerk: dict[str, str]
) -> None:
    patient = client.get(f"/fhir/Patient/{clinic.north.patient_id}", headers=clerk).json()
    assert {"name", "birthDate", "address", "identifier"} <= set(patient)
    assert redacted(patient)
    encounter = client.get(f"/fhir/Encounter/{chart['encounter']}", headers=clerk)
    assert encounter.status_code == 200
    body = encounter.json()
    assert body["class"]["code"] == "AMB"
    assert "reasonCode" not in body
    assert "text" not in body
    assert NOTE not in encounter.text
    condition = client.get(f"/fhir/Condition/{chart['condition']}", headers=clerk)
    assert condition.json()["code"]["coding"][0]["code"] == "F32.9"
    assert NOTE not in condition.text
    # the treating practitioner still sees everything
    full = client.get(f"/fhir/Encounter/{chart['encounter']}", headers=clinic.north.headers())
    assert NOTE in full.text
    assert not redacted(full.json())


def test_withheld_types_are_refused_at_type_level(
    client: TestClient, clinic: Clinic, chart: dict[str, str], clerk: dict[str, str]
) -> None:
    for url in (f"/fhir/Observation/{chart['observation']}", "/fhir/Observation",
                f"/fhir/Observation/{chart['observation']}/_history",
                f"/fhir/Observation/{chart['observation']}/_history/1",
                "/fhir/Observation/_history", "/fhir/DocumentReference"):  # fmt: skip
        response = client.get(url, headers=clerk)
        assert response.status_code == 403, url
        assert "minimum necessary" in response.text or "do not allow" in response.text
        assert NOTE not in response.text


def test_history_and_search_are_cut(
    client: TestClient, clinic: Clinic, chart: dict[str, str], clerk: dict[str, str]
) -> None:
    history = client.get(f"/fhir/Encounter/{chart['encounter']}/_history", headers=clerk)
    assert history.status_code == 200
    assert NOTE not in history.text
    found = client.get("/fhir/Encounter", params={"_include": "Encounter:subject"}, headers=clerk)
    assert found.status_code == 200
    assert NOTE not in found.text
    kinds = {e["resource"]["resourceType"] for e in found.json()["entry"]}
    assert kinds == {"Encounter", "Patient"}
    # a withheld type is left out of _revinclude, with a warning, not a refusal
    rev = client.get(
        "/fhir/Encounter", params={"_revinclude": "Observation:encounter"}, headers=clerk
    )
    assert rev.status_code == 200, rev.text
    assert NOTE not in rev.text
    assert "Observation" not in {e["resource"]["resourceType"] for e in rev.json()["entry"]
                                 if e["search"]["mode"] != "outcome"}  # fmt: skip


def test_everything_leaves_withheld_types_out(
    client: TestClient, clinic: Clinic, chart: dict[str, str], clerk: dict[str, str]
) -> None:
    url = f"/fhir/Patient/{clinic.north.patient_id}/$everything"
    response = client.get(url, headers=clerk)
    assert response.status_code == 200, response.text
    kinds = {e["resource"]["resourceType"] for e in response.json().get("entry", [])}
    assert "Observation" not in kinds
    assert {"Patient", "Encounter", "Condition"} <= kinds
    assert NOTE not in response.text


def test_bundles_are_cut(
    client: TestClient, clinic: Clinic, chart: dict[str, str], clerk: dict[str, str]
) -> None:
    body = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"request": {"method": "GET", "url": f"Encounter/{chart['encounter']}"}},
        {"request": {"method": "GET", "url": f"Observation/{chart['observation']}"}},
        {"request": {"method": "GET", "url": f"Condition?subject={clinic.north.patient_id}"}},
    ]}  # fmt: skip
    response = client.post("/fhir", json=body, headers=clerk)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"][:3] for e in response.json()["entry"]]
    assert statuses == ["200", "403", "200"]
    assert NOTE not in response.text
    # a transaction's write echo is cut too (staff may write Encounters)
    encounter = client.get(f"/fhir/Encounter/{chart['encounter']}", headers=clinic.north.headers())
    update = {**encounter.json(), "status": "cancelled"}
    tx = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"request": {"method": "PUT", "url": f"Encounter/{chart['encounter']}"},
         "resource": update}]}  # fmt: skip
    answer = client.post("/fhir", json=tx, headers={**clerk, "Prefer": "return=representation"})
    assert answer.status_code == 200, answer.text
    assert NOTE not in answer.text


def test_export_leaves_withheld_types_out_and_cuts_the_rest(
    runtime: Runtime, clinic: Clinic, chart: dict[str, str]
) -> None:
    tenant = runtime.identity.tenant_by_slug("north")
    user = runtime.identity.user_id_by_email(tenant, "staff@north.example.org")
    token = runtime.identity.create_token(tenant, user, purpose=Purpose.HPAYMT).token
    actor = runtime.identity.authenticate(token)
    batches = list(runtime.gate(actor).export())
    kinds = {b.resource_type for b in batches}
    assert "Observation" not in kinds
    assert "Encounter" in kinds
    for batch in batches:
        for body in batch.bodies:
            assert NOTE.encode() not in body
            assert "text" not in orjson.loads(body) or batch.resource_type not in (
                "Encounter", "Patient", "Condition")  # fmt: skip


def test_practice_admin_sees_the_directory_only(
    client: TestClient, clinic: Clinic, chart: dict[str, str]
) -> None:
    admin = clinic.north.headers("practice-admin")
    assert client.get(f"/fhir/Patient/{clinic.north.patient_id}", headers=admin).status_code == 403
    assert client.get("/fhir/Organization", headers=admin).status_code == 200
