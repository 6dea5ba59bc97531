"""GET /fhir/{type}/_history: every version the actor may see, newest first, `_since`,
`_count`, sealed paging links stable under writes, compartment scope in SQL, audit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from carevault.clock import ManualClock
from carevault.privacy.minimum_necessary import FieldProfile, RoleProfiles
from carevault.runtime import Runtime
from tests.audit_rows import audit_of
from tests.conftest import Clinic

BASE = "http://testserver/fhir"


def observation(patient_id: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "subject": {"reference": f"Patient/{patient_id}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
    }  # fmt: skip


def write(client: TestClient, clinic: Clinic, clock: ManualClock, body: dict[str, Any]) -> str:
    clock.advance(timedelta(minutes=1))
    response = client.post(
        f"/fhir/{body['resourceType']}", json=body, headers=clinic.north.headers()
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def keys(bundle: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, resource id, version) of each entry, in order."""
    found = []
    for entry in bundle["entry"]:
        rid = entry["fullUrl"].rsplit("/", 1)[1]
        found.append((entry["request"]["method"], rid, entry["response"]["etag"]))
    return found


def all_pages(client: TestClient, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    pages = []
    while url:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        url = next((k["url"] for k in pages[-1]["link"] if k["relation"] == "next"), "")
    return pages


def test_every_version_newest_first(
    client: TestClient, clinic: Clinic, clock: ManualClock, runtime: Runtime
) -> None:
    h = clinic.north.headers()
    first = write(client, clinic, clock, observation(clinic.north.patient_id, "8867-4"))
    second = write(client, clinic, clock, observation(clinic.north.other_patient_id, "8310-5"))
    clock.advance(timedelta(minutes=1))
    updated = {**observation(clinic.north.patient_id, "8867-4"), "id": first, "status": "amended"}
    assert client.put(f"/fhir/Observation/{first}", json=updated, headers=h).status_code == 200
    clock.advance(timedelta(minutes=1))
    assert client.delete(f"/fhir/Observation/{second}", headers=h).status_code == 204

    response = client.get("/fhir/Observation/_history", headers=h)
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "history"
    assert bundle["total"] == 4
    assert keys(bundle) == [
        ("DELETE", second, 'W/"2"'),
        ("PUT", first, 'W/"2"'),
        ("POST", second, 'W/"1"'),
        ("POST", first, 'W/"1"'),
    ]
    assert "resource" not in bundle["entry"][0]  # a tombstone carries no body
    assert bundle["entry"][1]["resource"]["status"] == "amended"
    stamps = [e["response"]["lastModified"] for e in bundle["entry"]]
    assert stamps == sorted(stamps, reverse=True)
    # the other tenant's history of the same type is its own (empty)
    other = client.get("/fhir/Observation/_history", headers=clinic.south.headers()).json()
    assert other["total"] == 0
    assert other.get("entry", []) == []
    # one audit entry names every resource and patient whose data left
    (entry,) = audit_of(runtime, response)
    assert entry["action"] == "history"
    assert entry["outcome"] == "success"
    assert set(entry["resource_ids"]) == {first, second}
    assert set(entry["patient_ids"]) == {clinic.north.patient_id, clinic.north.other_patient_id}


def test_paging_is_stable_under_writes(
    client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    h = clinic.north.headers()
    made = [write(client, clinic, clock, observation(clinic.north.patient_id, "8867-4"))
            for _ in range(5)]  # fmt: skip
    first = client.get("/fhir/Observation/_history", params={"_count": 2}, headers=h).json()
    assert [k[1] for k in keys(first)] == [made[4], made[3]]
    next_url = next(k["url"] for k in first["link"] if k["relation"] == "next")
    assert "8867" not in next_url  # the link is sealed: no search values in the URL
    # a write between pages sorts before the cursor: no duplicate, no gap
    write(client, clinic, clock, observation(clinic.north.patient_id, "8310-5"))
    rest = all_pages(client, next_url, h)
    seen = [k[1] for page in rest for k in keys(page)]
    assert seen == [made[2], made[1], made[0]]
    assert len(rest) == 2


def test_since_and_count(client: TestClient, clinic: Clinic, clock: ManualClock) -> None:
    h = clinic.north.headers()
    write(client, clinic, clock, observation(clinic.north.patient_id, "8867-4"))
    clock.advance(timedelta(hours=1))
    cutoff = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    late = write(client, clinic, clock, observation(clinic.north.patient_id, "8310-5"))
    since = client.get("/fhir/Observation/_history", params={"_since": cutoff}, headers=h).json()
    assert [k[1] for k in keys(since)] == [late]
    assert since["total"] == 1
    counted = client.get("/fhir/Observation/_history", params={"_count": 0}, headers=h).json()
    assert counted["total"] == 2
    assert counted.get("entry", []) == []


def test_compartment_user_sees_only_their_compartment(
    client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    mine = write(client, clinic, clock, observation(clinic.north.patient_id, "8867-4"))
    write(client, clinic, clock, observation(clinic.north.other_patient_id, "8867-4"))
    as_patient = clinic.north.headers("patient")
    observations = client.get("/fhir/Observation/_history", headers=as_patient).json()
    assert [k[1] for k in keys(observations)] == [mine]
    assert observations["total"] == 1
    patients = client.get("/fhir/Patient/_history", headers=as_patient).json()
    assert [k[1] for k in keys(patients)] == [clinic.north.patient_id]


def test_refusals(client: TestClient, clinic: Clinic, clock: ManualClock) -> None:
    h = clinic.north.headers()
    for _ in range(3):
        write(client, clinic, clock, observation(clinic.north.patient_id, "8867-4"))
    # patients may not read cohorts; the practice admin reads no clinical data
    assert (
        client.get("/fhir/Group/_history", headers=clinic.north.headers("patient")).status_code
        == 403
    )
    admin = clinic.north.headers("practice-admin")
    assert client.get("/fhir/Observation/_history", headers=admin).status_code == 403
    assert client.get("/fhir/Nonsense/_history", headers=h).status_code == 404
    assert client.get("/fhir/Observation/_history").status_code == 401
    for params in ({"_since": "yesterday"}, {"_since": "2026-13-01"}, {"_count": "-1"},
                   {"_count": "two"}, {"_page": "not-a-token"}, {"_count": ["1", "2"]},
                   {"family": "Quintero"}):  # fmt: skip
        response = client.get("/fhir/Observation/_history", params=params, headers=h)
        assert response.status_code == 400, params
        assert response.json()["resourceType"] == "OperationOutcome"
    lenient = {**h, "Prefer": "handling=lenient"}
    ignored = client.get("/fhir/Observation/_history", params={"family": "x"}, headers=lenient)
    assert ignored.status_code == 200
    assert ignored.json()["total"] == 3
    # a paging link is bound to its user and to its type
    page = client.get("/fhir/Observation/_history", params={"_count": 1}, headers=h).json()
    token = next(k["url"] for k in page["link"] if k["relation"] == "next").split("_page=")[1]
    other_user = clinic.north.headers("staff")
    assert (
        client.get(f"/fhir/Observation/_history?_page={token}", headers=other_user).status_code
        == 400
    )
    assert client.get(f"/fhir/Patient/_history?_page={token}", headers=h).status_code == 400
    # and it is not a search link
    assert client.get(f"/fhir/Observation?_page={token}", headers=h).status_code == 400
    # the link lapses after an hour
    clock.advance(timedelta(hours=2))
    assert client.get(f"/fhir/Observation/_history?_page={token}", headers=h).status_code == 400


def test_capability_statement_lists_history_type(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    for resource in statement["rest"][0]["resource"]:
        assert {"code": "history-type"} in resource["interaction"]


def test_minimum_necessary_cuts_each_version(
    client: TestClient, clinic: Clinic, clock: ManualClock, runtime: Runtime
) -> None:
    write(client, clinic, clock, observation(clinic.north.patient_id, "8867-4"))
    billing = FieldProfile({"Observation": frozenset({"status"})})
    runtime.gate_services.minimum_necessary = RoleProfiles(by_role={"staff": billing})
    bundle = client.get("/fhir/Observation/_history", headers=clinic.north.headers("staff")).json()
    (entry,) = bundle["entry"]
    assert set(entry["resource"]) == {"resourceType", "id", "meta", "status"}
