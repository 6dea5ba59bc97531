"""Batch and transaction Bundles (POST /fhir) on SQLite and PostgreSQL: urn:uuid and
conditional references, atomicity (a bad entry changes nothing, and the audit chain still
verifies), the size limits, per-entry outcomes in a batch, and the gate on every entry."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from httpx import Response

from carevault.audit.models import audit_entries
from carevault.runtime import Runtime
from tests.conftest import Clinic

SYSTEM = "urn:oid:1.2.36.146.595.217.0.7"
PATIENT_URN = "urn:uuid:0b1e7a8e-6a4e-4a57-9b0a-6a1b2d3c4e5f"
ENCOUNTER_URN = "urn:uuid:5f3c2b1a-0d9e-4c8b-a7f6-e5d4c3b2a190"


def patient(mrn: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "identifier": [{"system": SYSTEM, "value": mrn}],
        "name": [{"family": "Nakamura", "given": ["Aiko"]}],
        "gender": "female",
        "birthDate": "1988-02-29",
        **extra,
    }


def encounter(subject: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": subject},
        **extra,
    }


def observation(subject: str, **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 64, "unit": "/min"},
        **extra,
    }


def entry(method: str, url: str, resource: Any = None, **extra: Any) -> dict[str, Any]:
    request = {"method": method, "url": url, **extra.pop("request", {})}
    item: dict[str, Any] = {"request": request, **extra}
    if resource is not None:
        item["resource"] = resource
    return item


def bundle(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def send(
    client: TestClient, clinic: Clinic, body: Any, role: str = "practitioner", **extra: str
) -> Response:
    response: Response = client.post(
        "/fhir", json=body, headers=clinic.north.headers(role, **extra)
    )
    return response


def counts(runtime: Runtime, tenant_id: str) -> tuple[int, int]:
    """(resource versions, current resources) of one tenant."""
    with runtime.reader.connect() as conn:
        return tuple(  # type: ignore[return-value]
            int(
                conn.execute(
                    sa.text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"),
                    {"t": tenant_id},
                ).scalar_one()
            )
            for table in ("resource_versions", "resources")
        )


def last_audit(runtime: Runtime, tenant_id: str) -> sa.RowMapping:
    with runtime.reader.connect() as conn:
        return (
            conn.execute(
                sa.select(audit_entries)
                .where(audit_entries.c.tenant_id == tenant_id)
                .order_by(audit_entries.c.seq.desc())
                .limit(1)
            )
            .mappings()
            .one()
        )


def diagnostics(response: Response) -> str:
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(issue["diagnostics"] for issue in body["issue"])


# -- transaction -----------------------------------------------------------------


def test_transaction_resolves_urn_uuid_references(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    # The Encounter comes first in the Bundle: the writes are ordered by reference.
    body = bundle(
        "transaction",
        entry("POST", "Encounter", encounter(PATIENT_URN), fullUrl=ENCOUNTER_URN),
        entry("POST", "Patient", patient("T-1"), fullUrl=PATIENT_URN),
    )
    response = send(client, clinic, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "transaction-response"
    enc_entry, pat_entry = answer["entry"]
    assert enc_entry["response"]["status"].startswith("201")
    assert pat_entry["response"]["status"].startswith("201")
    patient_id = pat_entry["resource"]["id"]
    assert pat_entry["response"]["location"] == f"Patient/{patient_id}/_history/1"
    assert pat_entry["response"]["etag"] == 'W/"1"'
    assert enc_entry["resource"]["subject"]["reference"] == f"Patient/{patient_id}"

    stored = client.get(
        f"/fhir/Encounter/{enc_entry['resource']['id']}", headers=clinic.north.headers()
    )
    assert stored.status_code == 200, stored.text
    assert stored.json()["subject"]["reference"] == f"Patient/{patient_id}"
    # The Encounter is in the new patient's compartment.
    found = client.get(
        f"/fhir/Encounter?subject=Patient/{patient_id}", headers=clinic.north.headers()
    )
    assert found.json()["total"] == 1
    assert runtime.audit_verification(clinic.north.tenant_id).ok


def test_transaction_with_one_bad_entry_changes_nothing(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    tenant = clinic.north.tenant_id
    before = counts(runtime, tenant)
    # Entry 2 refers to a patient that does not exist: found only inside the writer job,
    # after entries 0 and 1 were written, so this checks the rollback.
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient("T-2"), fullUrl=PATIENT_URN),
        entry("POST", "Encounter", encounter(PATIENT_URN)),
        entry("POST", "Observation", observation("Patient/no-such-patient")),
    )
    response = send(client, clinic, body)
    assert response.status_code == 422, response.text
    assert "Bundle.entry[2]" in diagnostics(response)
    assert counts(runtime, tenant) == before
    assert runtime.audit_verification(tenant).ok
    refusal = last_audit(runtime, tenant)
    assert refusal["outcome"] == "invalid"
    assert refusal["status"] == 422
    assert "transaction" in refusal["detail"]
    assert "Bundle.entry[2]" in refusal["detail"]

    # Refused before the writer job: a resource that fails validation.
    invalid = bundle(
        "transaction",
        entry("POST", "Patient", patient("T-2")),
        entry("POST", "Patient", patient("T-2", gender="not-a-gender")),
    )
    response = send(client, clinic, invalid)
    assert response.status_code == 422, response.text
    assert "Bundle.entry[1]" in diagnostics(response)
    assert counts(runtime, tenant) == before
    assert runtime.audit_verification(tenant).ok


def test_transaction_update_and_delete_roll_back_together(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    headers = clinic.north.headers()
    created = client.post("/fhir/Patient", json=patient("T-3"), headers=headers).json()
    tenant = clinic.north.tenant_id
    before = counts(runtime, tenant)
    body = bundle(
        "transaction",
        entry("PUT", f"Patient/{created['id']}", {**patient("T-3"), "id": created["id"],
                                                   "gender": "other"}),
        entry("DELETE", f"Patient/{clinic.north.other_patient_id}"),
        entry("PUT", f"Patient/{created['id']}x", patient("T-3")),  # id mismatch: 400
    )  # fmt: skip
    response = send(client, clinic, body)
    assert response.status_code == 400, response.text
    assert "Bundle.entry[2]" in diagnostics(response)
    assert counts(runtime, tenant) == before
    again = client.get(f"/fhir/Patient/{created['id']}", headers=headers).json()
    assert again["gender"] == "female"
    assert again["meta"]["versionId"] == "1"
    other = client.get(f"/fhir/Patient/{clinic.north.other_patient_id}", headers=headers)
    assert other.status_code == 200


def test_circular_urn_uuid_references_are_422(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    first, second = "urn:uuid:11111111-1111-4111-8111-111111111111", ENCOUNTER_URN
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient("T-4"), fullUrl=PATIENT_URN),
        entry("POST", "Encounter", encounter(PATIENT_URN, partOf={"reference": second}),
              fullUrl=first),
        entry("POST", "Encounter", encounter(PATIENT_URN, partOf={"reference": first}),
              fullUrl=second),
    )  # fmt: skip
    before = counts(runtime, clinic.north.tenant_id)
    response = send(client, clinic, body)
    assert response.status_code == 422, response.text
    text = diagnostics(response)
    assert "cycle" in text
    assert "Bundle.entry[1]" in text
    assert "Bundle.entry[2]" in text
    assert "Bundle.entry[0] →" not in text
    assert PATIENT_URN not in text
    assert counts(runtime, clinic.north.tenant_id) == before


def test_unresolvable_urn_uuid_and_duplicate_full_url(client: TestClient, clinic: Clinic) -> None:
    dangling = bundle("transaction", entry("POST", "Encounter", encounter(PATIENT_URN)))
    response = send(client, clinic, dangling)
    assert response.status_code == 422, response.text
    assert "Bundle.entry[0]" in diagnostics(response)

    twice = bundle(
        "transaction",
        entry("POST", "Patient", patient("T-5"), fullUrl=PATIENT_URN),
        entry("POST", "Patient", patient("T-6"), fullUrl=PATIENT_URN),
    )
    assert send(client, clinic, twice).status_code == 400


def test_conditional_references_resolve_to_one_match(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    headers = clinic.north.headers()
    rid = client.post("/fhir/Patient", json=patient("T-7"), headers=headers).json()["id"]
    one = bundle(
        "transaction",
        entry("POST", "Observation", observation(f"Patient?identifier={SYSTEM}|T-7")),
    )
    response = send(client, clinic, one)
    assert response.status_code == 200, response.text
    assert response.json()["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{rid}"

    none = bundle(
        "transaction",
        entry("POST", "Observation", observation(f"Patient?identifier={SYSTEM}|T-nobody")),
    )
    assert send(client, clinic, none).status_code == 422

    client.post("/fhir/Patient", json=patient("T-7"), headers=headers)
    before = counts(runtime, clinic.north.tenant_id)
    several = bundle(
        "transaction",
        entry("POST", "Patient", patient("T-8")),
        entry("POST", "Observation", observation(f"Patient?identifier={SYSTEM}|T-7")),
    )
    response = send(client, clinic, several)
    assert response.status_code == 412, response.text
    assert "Bundle.entry[1]" in diagnostics(response)
    assert "T-7" not in response.text
    assert counts(runtime, clinic.north.tenant_id) == before


def test_transaction_conditional_entries(client: TestClient, clinic: Clinic) -> None:
    headers = clinic.north.headers()
    existing = client.post("/fhir/Patient", json=patient("T-9"), headers=headers).json()
    doomed = client.post("/fhir/Patient", json=patient("T-10"), headers=headers).json()
    body = bundle(
        "transaction",
        # ifNoneExist matches: the urn:uuid points at the existing patient.
        entry("POST", "Patient", patient("T-9"), fullUrl=PATIENT_URN,
              request={"ifNoneExist": f"identifier={SYSTEM}|T-9"}),
        entry("POST", "Encounter", encounter(PATIENT_URN)),
        entry("PUT", f"Patient?identifier={SYSTEM}|T-11", patient("T-11")),
        entry("DELETE", f"Patient?identifier={SYSTEM}|T-10"),
        entry("GET", f"Patient/{existing['id']}"),
        entry("GET", f"Patient?identifier={SYSTEM}|T-11"),
    )  # fmt: skip
    response = send(client, clinic, body)
    assert response.status_code == 200, response.text
    post, enc, put, delete, get, search = response.json()["entry"]
    # The search sees the transaction's own writes.
    assert [e["resource"]["id"] for e in search["resource"]["entry"]] == [put["resource"]["id"]]
    assert post["response"]["status"].startswith("200")
    assert post["resource"]["id"] == existing["id"]
    assert enc["resource"]["subject"]["reference"] == f"Patient/{existing['id']}"
    assert put["response"]["status"].startswith("201")
    assert delete["response"]["status"].startswith("204")
    assert get["resource"]["id"] == existing["id"]
    assert client.get(f"/fhir/Patient/{doomed['id']}", headers=headers).status_code == 410


def test_prefer_return_minimal_leaves_out_resources(client: TestClient, clinic: Clinic) -> None:
    body = bundle("transaction", entry("POST", "Patient", patient("T-12")))
    response = send(client, clinic, body, Prefer="return=minimal")
    assert response.status_code == 200, response.text
    (only,) = response.json()["entry"]
    assert "resource" not in only
    assert only["response"]["location"].startswith("Patient/")


def test_bundle_limits(client: TestClient, clinic: Clinic, runtime: Runtime) -> None:
    runtime.settings.bundle_max_entries = 3
    entries = [entry("POST", "Patient", patient(f"L-{i}")) for i in range(4)]
    for kind in ("transaction", "batch"):
        response = send(client, clinic, bundle(kind, *entries))
        assert response.status_code == 413, response.text
    assert send(client, clinic, bundle("transaction", *entries[:3])).status_code == 200

    runtime.settings.max_body_bytes = 2000
    big = bundle("batch", entry("POST", "Patient", patient("L-9", text={
        "status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">" + "x" * 3000
        + "</div>"})))  # fmt: skip
    assert send(client, clinic, big).status_code == 413


def test_only_batch_or_transaction(client: TestClient, clinic: Clinic) -> None:
    for body in (
        {"resourceType": "Bundle", "type": "collection", "entry": []},
        {"resourceType": "Patient"},
        [1, 2],
    ):
        response = send(client, clinic, body)
        assert response.status_code == 400, response.text
    empty = send(client, clinic, bundle("transaction"))
    assert empty.status_code == 200
    assert empty.json() == {"resourceType": "Bundle", "type": "transaction-response", "entry": []}


# -- batch -----------------------------------------------------------------------


def test_batch_answers_each_entry_on_its_own(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    headers = clinic.north.headers()
    rid = clinic.north.patient_id
    body = bundle(
        "batch",
        entry("POST", "Patient", patient("B-1")),
        entry("POST", "Patient", patient("B-2", gender="not-a-gender")),
        entry("GET", f"Patient/{rid}"),
        entry("GET", "Patient/no-such-patient"),
        entry("POST", "Observation", observation("Patient/no-such-patient")),
        entry("GET", f"Patient?identifier={SYSTEM}|B-1"),
        entry("PATCH", f"Patient/{rid}"),
        entry("POST", "Encounter", encounter(PATIENT_URN)),
    )
    response = send(client, clinic, body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["type"] == "batch-response"
    statuses = [e["response"]["status"].split()[0] for e in answer["entry"]]
    assert statuses == ["201", "422", "200", "404", "422", "200", "400", "422"]
    for index in (1, 3, 4, 6, 7):
        outcome = answer["entry"][index]["response"]["outcome"]
        assert outcome["resourceType"] == "OperationOutcome"
        assert f"Bundle.entry[{index}]" in outcome["issue"][0]["diagnostics"]
    created = answer["entry"][0]["resource"]["id"]
    assert client.get(f"/fhir/Patient/{created}", headers=headers).status_code == 200
    assert answer["entry"][2]["resource"]["id"] == rid
    # The search ran after the writes: it finds the new patient.
    searchset = answer["entry"][5]["resource"]
    assert searchset["type"] == "searchset"
    assert [e["resource"]["id"] for e in searchset["entry"]] == [created]
    assert runtime.audit_verification(clinic.north.tenant_id).ok
    with runtime.reader.connect() as conn:
        refused = conn.execute(
            sa.select(sa.func.count()).where(
                audit_entries.c.tenant_id == clinic.north.tenant_id,
                audit_entries.c.detail.like("batch; Bundle.entry[%"),
                audit_entries.c.outcome != "success",
            )
        ).scalar_one()
    assert refused == 4  # entries 1, 4, 6 and 7; the gate audits the 404 read itself


def test_patient_user_cannot_write_through_a_bundle(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    tenant = clinic.north.tenant_id
    before = counts(runtime, tenant)
    own = f"Patient/{clinic.north.patient_id}"
    writes = [
        entry("POST", "Observation", observation(own)),
        entry("PUT", own, {**patient("P-1"), "id": clinic.north.patient_id}),
    ]
    response = send(client, clinic, bundle("transaction", *writes), role="patient")
    assert response.status_code == 403, response.text
    assert "Bundle.entry[0]" in diagnostics(response)
    answer = send(client, clinic, bundle("batch", *writes, entry("GET", own)), role="patient")
    assert answer.status_code == 200, answer.text
    statuses = [e["response"]["status"].split()[0] for e in answer.json()["entry"]]
    assert statuses == ["403", "403", "200"]
    assert counts(runtime, tenant) == before
    assert last_audit(runtime, tenant)["action"] == "read"  # the GET, after both refusals


@pytest.mark.parametrize("method", ["transaction", "batch"])
def test_entries_stay_inside_the_tenant(client: TestClient, clinic: Clinic, method: str) -> None:
    # South's patient is simply not found from north, through any entry.
    south_patient = f"Patient/{clinic.south.patient_id}"
    body = bundle(method, entry("POST", "Observation", observation(south_patient)))
    response = send(client, clinic, body)
    if method == "transaction":
        assert response.status_code == 422, response.text
    else:
        assert response.json()["entry"][0]["response"]["status"].startswith("422")


def test_transaction_orders_put_creates_and_allows_cycles_among_existing(
    client: TestClient, clinic: Clinic
) -> None:
    headers = clinic.north.headers()
    own = f"Patient/{clinic.north.patient_id}"
    first = client.post("/fhir/Encounter", json=encounter(own), headers=headers).json()
    second = client.post("/fhir/Encounter", json=encounter(own), headers=headers).json()
    body = bundle(
        "transaction",
        # FHIR's order puts POST before PUT; this POST needs the PUT's new patient first.
        entry("POST", "Encounter", encounter("Patient/chosen-by-client")),
        entry("PUT", "Patient/chosen-by-client", patient("T-13", id="chosen-by-client")),
        # Existing resources may refer to each other in a cycle: nothing new to wait for.
        entry("PUT", f"Encounter/{first['id']}",
              encounter(own, id=first["id"], partOf={"reference": f"Encounter/{second['id']}"})),
        entry("PUT", f"Encounter/{second['id']}",
              encounter(own, id=second["id"], partOf={"reference": f"Encounter/{first['id']}"})),
        entry("PUT", f"Encounter/{second['id']}", encounter(own, id=second["id"])),
    )  # fmt: skip
    duplicate = send(client, clinic, body)
    assert duplicate.status_code == 400, duplicate.text
    assert "Bundle.entry[4]" in diagnostics(duplicate)

    body["entry"].pop()
    response = send(client, clinic, body)
    assert response.status_code == 200, response.text
    statuses = [e["response"]["status"].split()[0] for e in response.json()["entry"]]
    assert statuses == ["201", "201", "200", "200"]


def test_each_change_of_a_transaction_is_audited(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    body = bundle(
        "transaction",
        entry("POST", "Patient", patient("T-14"), fullUrl=PATIENT_URN),
        entry("POST", "Encounter", encounter(PATIENT_URN)),
    )
    response = send(client, clinic, body)
    assert response.status_code == 200, response.text
    patient_id = response.json()["entry"][0]["resource"]["id"]
    encounter_id = response.json()["entry"][1]["resource"]["id"]
    request_id = response.headers["x-request-id"]
    with runtime.reader.connect() as conn:
        rows = (
            conn.execute(
                sa.select(audit_entries)
                .where(audit_entries.c.request_id == request_id)
                .order_by(audit_entries.c.seq)
            )
            .mappings()
            .all()
        )
    assert [(r["action"], r["resource_type"], r["status"]) for r in rows] == [
        ("create", "Patient", 201),
        ("create", "Encounter", 201),
    ]
    assert all(r["outcome"] == "success" for r in rows)
    assert patient_id in rows[0]["resource_ids"]
    assert encounter_id in rows[1]["resource_ids"]
    assert patient_id in rows[1]["patient_ids"]  # the encounter is in the patient's compartment
    assert rows[1]["detail"] == "transaction; Bundle.entry[1]"
    assert runtime.audit_verification(clinic.north.tenant_id).ok


def test_transactions_and_single_writes_share_group_commits(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    # A transaction appends its entries to the chain inside its job; single writes merge
    # theirs after the batch's jobs. Both in one group commit must leave one valid chain.
    start = threading.Barrier(6, timeout=30)
    statuses: list[int] = []
    lock = threading.Lock()

    def transaction(n: int) -> None:
        body = bundle(
            "transaction",
            entry("POST", "Patient", patient(f"G-{n}"), fullUrl=PATIENT_URN),
            entry("POST", "Encounter", encounter(PATIENT_URN)),
        )
        start.wait()
        status = send(client, clinic, body).status_code
        with lock:
            statuses.append(status)

    def single(n: int) -> None:
        start.wait()
        status = client.post(
            "/fhir/Patient", json=patient(f"S-{n}"), headers=clinic.north.headers()
        ).status_code
        with lock:
            statuses.append(status)

    threads = [threading.Thread(target=transaction, args=(n,)) for n in range(3)]
    threads += [threading.Thread(target=single, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(statuses) == [200, 200, 200, 201, 201, 201]
    verification = runtime.audit_verification(clinic.north.tenant_id)
    assert verification.ok, verification.problem


BARE = {"resourceType": "Patient"}
ODD_ENTRIES: list[Any] = [
    None,
    "entry",
    {"request": {"method": ["GET"], "url": {}}},
    entry("GET", "Nope/1"),
    entry("GET", "Patient/1/_history/1"),
    entry("DELETE", "Patient?"),
    entry("DELETE", "Patient?_count=1"),
    entry("POST", "Patient/1", BARE),
    entry("POST", "Patient"),
    entry("PUT", "Patient?name=x", {**BARE, "id": "bad id!"}),
    entry("POST", "Patient", BARE, request={"ifNoneExist": 7}),
    entry("PUT", "Patient/1", {**BARE, "id": "1"}, request={"ifMatch": "seven"}),
    entry("POST", "Observation", observation("Nope?x=1")),
    entry("POST", "Observation", observation("Patient?birthdate=x")),
    entry("POST", "http://elsewhere.example/fhir/Patient", BARE),
]


def test_odd_entries_are_refused_cleanly(client: TestClient, clinic: Clinic) -> None:
    """Each malformed entry gets a 4xx of its own in a batch, and fails a transaction."""
    answer = send(client, clinic, bundle("batch", *ODD_ENTRIES))
    assert answer.status_code == 200, answer.text
    statuses = [int(e["response"]["status"].split()[0]) for e in answer.json()["entry"]]
    assert len(statuses) == len(ODD_ENTRIES)
    assert all(400 <= s < 500 for s in statuses), statuses
    assert statuses[3] == 404  # a type not served here
    for index, odd in enumerate(ODD_ENTRIES):
        response = send(client, clinic, bundle("transaction", odd))
        assert 400 <= response.status_code < 500, (index, response.text)
        assert "Bundle.entry[0]" in diagnostics(response)
