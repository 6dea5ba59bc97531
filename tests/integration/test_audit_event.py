"""GET /fhir/AuditEvent: read-only, privacy officer only, searchable, valid R4."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B.auditevent import AuditEvent
from fhir.resources.R4B.bundle import Bundle

from carevault.runtime import Runtime
from tests.audit_rows import audit_of
from tests.conftest import Clinic

PO = "privacy-officer"


def test_search_and_read(client: TestClient, clinic: Clinic, runtime: Runtime) -> None:
    north = clinic.north
    for _ in range(3):
        client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers())
    r = client.get(f"/fhir/AuditEvent?patient=Patient/{north.patient_id}&action=R&_count=2",
                   headers=north.headers(PO))  # fmt: skip
    assert r.status_code == 200, r.text
    bundle = r.json()
    Bundle.model_validate(bundle)
    assert len(bundle["entry"]) == 2
    for entry in bundle["entry"]:
        AuditEvent.model_validate(entry["resource"])
        refs = [e["what"]["reference"] for e in entry["resource"]["entity"] if "what" in e]
        assert f"Patient/{north.patient_id}" in refs
    nxt = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    page2 = client.get(nxt, headers=north.headers(PO)).json()
    assert page2["entry"]
    event_id = bundle["entry"][0]["resource"]["id"]
    one = client.get(f"/fhir/AuditEvent/{event_id}", headers=north.headers(PO))
    assert one.status_code == 200
    assert one.json()["id"] == event_id
    assert audit_of(runtime, one)[0]["resource_type"] == "AuditEvent"
    assert client.get("/fhir/AuditEvent/999999", headers=north.headers(PO)).status_code == 404
    # Another tenant's officer does not see this tenant's events.
    other = client.get(f"/fhir/AuditEvent/{event_id}", headers=clinic.south.headers(PO))
    assert other.status_code in (200, 404)
    if other.status_code == 200:
        assert other.json()["source"]["observer"]["identifier"]["value"] == clinic.south.tenant_id


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_writes_are_405(client: TestClient, clinic: Clinic, method: str) -> None:
    for path in ("/fhir/AuditEvent", "/fhir/AuditEvent/1"):
        r = client.request(method, path, headers=clinic.north.headers(PO), json={})
        assert r.status_code == 405
        assert r.json()["resourceType"] == "OperationOutcome"


def test_only_the_privacy_officer(client: TestClient, clinic: Clinic) -> None:
    for role in ("practitioner", "staff", "practice-admin"):
        r = client.get("/fhir/AuditEvent", headers=clinic.north.headers(role))
        assert r.status_code == 403
        assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/AuditEvent").status_code == 401


def test_bad_search_is_400(client: TestClient, clinic: Clinic) -> None:
    for query in ("action=Q", "date=soon", "_count=0", "_count=abc", "foo=1", "_cursor=-1"):
        r = client.get(f"/fhir/AuditEvent?{query}", headers=clinic.north.headers(PO))
        assert r.status_code == 400, query
        assert r.json()["resourceType"] == "OperationOutcome"


def test_patient_sees_own_events_only(client: TestClient, clinic: Clinic) -> None:
    north = clinic.north
    client.get(f"/fhir/Patient/{north.patient_id}", headers=north.headers())
    mine = client.get(
        f"/fhir/AuditEvent?patient={north.patient_id}", headers=north.headers("patient")
    )
    assert mine.status_code == 200
    assert mine.json()["entry"]
    assert north.other_patient_id not in mine.text
    theirs = client.get(f"/fhir/AuditEvent?patient={north.other_patient_id}",
                        headers=north.headers("patient"))  # fmt: skip
    assert theirs.status_code == 404
