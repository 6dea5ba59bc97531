"""Conditional create (If-None-Exist), update (PUT Type?criteria) and delete (DELETE
Type?criteria) over HTTP, on SQLite and PostgreSQL: the search and the write are one
writer transaction, so concurrent conditional creates make one resource."""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from carevault.audit.models import audit_entries
from carevault.runtime import Runtime
from tests.conftest import Clinic

SYSTEM = "urn:oid:1.2.36.146.595.217.0.9"


def patient(mrn: str, family: str = "Ferreira", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": mrn}],
        "name": [{"family": family, "given": ["Ines"]}],
        "gender": "female",
        "birthDate": "1979-05-06",
        **extra,
    }


def by_mrn(mrn: str) -> str:
    return f"identifier={SYSTEM}|{mrn}"


def post(client: TestClient, clinic: Clinic, body: dict[str, Any], **extra: str) -> Response:
    response: Response = client.post(
        "/fhir/Patient", json=body, headers=clinic.north.headers("practitioner", **extra)
    )
    return response


def matching(client: TestClient, clinic: Clinic, mrn: str) -> list[dict[str, Any]]:
    response = client.get(f"/fhir/Patient?{by_mrn(mrn)}", headers=clinic.north.headers())
    assert response.status_code == 200, response.text
    return [e["resource"] for e in response.json()["entry"] if e["search"]["mode"] == "match"]


def versions(runtime: Runtime, tenant_id: str) -> int:
    with runtime.reader.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM resource_versions WHERE tenant_id = :t"),
                {"t": tenant_id},
            ).scalar_one()
        )


def test_conditional_create_creates_once_then_returns_the_match(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    first = post(client, clinic, patient("C-1"), **{"If-None-Exist": by_mrn("C-1")})
    assert first.status_code == 201, first.text
    assert first.headers["location"].endswith(f"/Patient/{first.json()['id']}/_history/1")
    before = versions(runtime, clinic.north.tenant_id)

    again = post(client, clinic, patient("C-1", "Other"), **{"If-None-Exist": by_mrn("C-1")})
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["name"][0]["family"] == "Ferreira"  # the existing one, untouched
    assert versions(runtime, clinic.north.tenant_id) == before
    assert len(matching(client, clinic, "C-1")) == 1


def test_conditional_create_with_several_matches_is_412(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    for _ in range(2):
        assert post(client, clinic, patient("C-2")).status_code == 201
    before = versions(runtime, clinic.north.tenant_id)
    response = post(client, clinic, patient("C-2"), **{"If-None-Exist": by_mrn("C-2")})
    assert response.status_code == 412, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "C-2" not in response.text
    assert SYSTEM not in response.text
    assert versions(runtime, clinic.north.tenant_id) == before


def test_concurrent_conditional_creates_make_one_resource(
    client: TestClient, clinic: Clinic
) -> None:
    start = threading.Barrier(4, timeout=30)
    statuses: list[int] = []
    lock = threading.Lock()

    def create() -> None:
        start.wait()
        response = post(client, clinic, patient("C-3"), **{"If-None-Exist": by_mrn("C-3")})
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 200, 200, 201]
    assert len(matching(client, clinic, "C-3")) == 1


def test_bad_if_none_exist_is_400_and_audited(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    for bad in ("", "_count=1", "nosuchparam=1"):
        response = post(client, clinic, patient("C-4"), **{"If-None-Exist": bad})
        assert response.status_code == 400, (bad, response.text)
    assert matching(client, clinic, "C-4") == []
    with runtime.reader.connect() as conn:
        refused = conn.execute(
            sa.select(sa.func.count()).where(
                audit_entries.c.tenant_id == clinic.north.tenant_id,
                audit_entries.c.action == "create",
                audit_entries.c.outcome == "invalid",
            )
        ).scalar_one()
    assert refused == 3


def test_conditional_update_creates_updates_or_refuses(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    headers = clinic.north.headers()
    created = client.put(f"/fhir/Patient?{by_mrn('U-1')}", json=patient("U-1"), headers=headers)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert created.json()["meta"]["versionId"] == "1"

    updated = client.put(
        f"/fhir/Patient?{by_mrn('U-1')}", json=patient("U-1", gender="other"), headers=headers
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["id"] == rid
    assert updated.json()["meta"]["versionId"] == "2"
    assert updated.json()["gender"] == "other"

    # The body's id, when given, must be the match's.
    wrong = client.put(
        f"/fhir/Patient?{by_mrn('U-1')}", json=patient("U-1", id="someone-else"), headers=headers
    )
    assert wrong.status_code == 400, wrong.text
    same = client.put(
        f"/fhir/Patient?{by_mrn('U-1')}", json=patient("U-1", id=rid), headers=headers
    )
    assert same.status_code == 200, same.text
    assert same.json()["meta"]["versionId"] == "3"

    # No match and an id in the body: created under that id.
    named = client.put(
        f"/fhir/Patient?{by_mrn('U-2')}", json=patient("U-2", id="chosen-id-1"), headers=headers
    )
    assert named.status_code == 201, named.text
    assert named.json()["id"] == "chosen-id-1"

    assert post(client, clinic, patient("U-2")).status_code == 201
    before = versions(runtime, clinic.north.tenant_id)
    several = client.put(f"/fhir/Patient?{by_mrn('U-2')}", json=patient("U-2"), headers=headers)
    assert several.status_code == 412, several.text
    assert versions(runtime, clinic.north.tenant_id) == before

    bare = client.put("/fhir/Patient", json=patient("U-3"), headers=headers)
    assert bare.status_code == 400, bare.text


def test_conditional_update_honours_if_match(client: TestClient, clinic: Clinic) -> None:
    headers = clinic.north.headers()
    url = f"/fhir/Patient?{by_mrn('U-4')}"
    assert client.put(url, json=patient("U-4"), headers=headers).status_code == 201
    stale = client.put(url, json=patient("U-4"), headers={**headers, "If-Match": 'W/"7"'})
    assert stale.status_code == 412
    fresh = client.put(url, json=patient("U-4"), headers={**headers, "If-Match": 'W/"1"'})
    assert fresh.status_code == 200, fresh.text


def test_conditional_delete_one_none_or_several(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    headers = clinic.north.headers()
    rid = post(client, clinic, patient("D-1")).json()["id"]
    gone = client.delete(f"/fhir/Patient?{by_mrn('D-1')}", headers=headers)
    assert gone.status_code == 204, gone.text
    assert client.get(f"/fhir/Patient/{rid}", headers=headers).status_code == 410

    nothing = client.delete(f"/fhir/Patient?{by_mrn('D-1')}", headers=headers)
    assert nothing.status_code == 204

    for _ in range(2):
        post(client, clinic, patient("D-2"))
    before = versions(runtime, clinic.north.tenant_id)
    several = client.delete(f"/fhir/Patient?{by_mrn('D-2')}", headers=headers)
    assert several.status_code == 412, several.text
    assert versions(runtime, clinic.north.tenant_id) == before
    assert len(matching(client, clinic, "D-2")) == 2

    assert client.delete("/fhir/Patient", headers=headers).status_code == 400


def test_conditional_writes_stay_inside_the_actors_reach(
    client: TestClient, clinic: Clinic
) -> None:
    # A patient-role user may not write at all.
    refused = client.put(
        f"/fhir/Patient?{by_mrn('R-1')}",
        json=patient("R-1"),
        headers=clinic.north.headers("patient"),
    )
    assert refused.status_code == 403
    # Another tenant's identical identifier is not a match: south creates its own.
    assert post(client, clinic, patient("R-2")).status_code == 201
    south = client.post(
        "/fhir/Patient",
        json=patient("R-2"),
        headers=clinic.south.headers("practitioner", **{"If-None-Exist": by_mrn("R-2")}),
    )
    assert south.status_code == 201, south.text


def test_capability_statement_claims_conditional_interactions(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    rest = statement["rest"][0]
    assert {"code": "transaction"} in rest["interaction"]
    assert {"code": "batch"} in rest["interaction"]
    for resource in rest["resource"]:
        assert resource["conditionalCreate"] is True
        assert resource["conditionalUpdate"] is True
        assert resource["conditionalDelete"] == "single"
