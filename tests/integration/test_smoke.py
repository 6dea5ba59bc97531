"""The shortest path through the stack: create, read, search, on both databases."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import PATIENT_ALICE, Clinic


def test_create_then_read_then_search(client: TestClient, clinic: Clinic) -> None:
    h = clinic.north.headers()
    created = client.post("/fhir/Patient", json=PATIENT_ALICE, headers=h)
    assert created.status_code == 201
    rid = created.json()["id"]
    assert client.get(f"/fhir/Patient/{rid}", headers=h).json()["name"][0]["family"] == "Quintero"
    found = client.get("/fhir/Patient", params={"family": "quin"}, headers=h).json()
    assert rid in {e["resource"]["id"] for e in found["entry"]}
