"""The audit trail through the HTTP API, on SQLite and PostgreSQL: every interaction appends
one entry to the chain of the token's tenant, naming who, why, what, every patient whose data
left the gate, the outcome and where from; changes are audited in their own transaction; and
tampering with a stored entry is caught by verification."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.audit.models import audit_entries
from carevault.identity.permissions import Role
from carevault.runtime import Runtime
from tests.conftest import PATIENT_ALICE, PATIENT_BOB, Clinic, Site, make_site

UA = "audit-test-agent/1.0"
VENDOR_CHAIN = "_vendor"


@pytest.fixture
def solo(runtime: Runtime) -> Site:
    return make_site(runtime, "solo", (Role.PRACTITIONER, Role.PATIENT, Role.PRACTICE_ADMIN))


def entries_of(runtime: Runtime, request_id: str) -> list[dict[str, Any]]:
    """Every audit entry a request left, in any chain, with JSON columns decoded."""
    with runtime.reader.connect() as conn:
        rows = (
            conn.execute(sa.select(audit_entries).where(audit_entries.c.request_id == request_id))
            .mappings()
            .all()
        )
    found = []
    for row in rows:
        entry = dict(row)
        entry["resource_ids"] = orjson.loads(entry["resource_ids"])
        entry["patient_ids"] = orjson.loads(entry["patient_ids"])
        found.append(entry)
    return found


def only_entry(runtime: Runtime, response: Any) -> dict[str, Any]:
    """The one entry the response's request left (the response names it in X-Request-ID)."""
    request_id = response.headers["x-request-id"]
    found = entries_of(runtime, request_id)
    assert len(found) == 1, f"{len(found)} audit entries for one request"
    return found[0]


def user_id(runtime: Runtime, slug: str, role: str) -> str:
    tenant = runtime.identity.tenant_by_slug(slug)
    return runtime.identity.user_id_by_email(tenant, f"{role}@{slug}.example.org")


def chain_length(runtime: Runtime, tenant_id: str) -> int:
    with runtime.reader.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(audit_entries.c.tenant_id == tenant_id)
        ).scalar_one()
    return int(count)


def resource_version_count(runtime: Runtime, tenant_id: str) -> int:
    with runtime.reader.connect() as conn:
        count = conn.execute(
            sa.text("SELECT count(*) FROM resource_versions WHERE tenant_id = :t"),
            {"t": tenant_id},
        ).scalar_one()
    return int(count)


def successful_changes(runtime: Runtime, tenant_id: str) -> int:
    with runtime.reader.connect() as conn:
        count = conn.execute(
            sa.select(sa.func.count()).where(
                audit_entries.c.tenant_id == tenant_id,
                audit_entries.c.action.in_(["create", "update", "delete"]),
                audit_entries.c.outcome == "success",
            )
        ).scalar_one()
    return int(count)


def last_entry(runtime: Runtime, tenant_id: str) -> dict[str, Any]:
    with runtime.reader.connect() as conn:
        row = (
            conn.execute(
                sa.select(audit_entries)
                .where(audit_entries.c.tenant_id == tenant_id)
                .order_by(audit_entries.c.seq.desc())
                .limit(1)
            )
            .mappings()
            .one()
        )
    return dict(row)


# -- every interaction ------------------------------------------------------------------------


def test_each_interaction_appends_one_complete_entry(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    h = solo.headers("practitioner", **{"User-Agent": UA})
    practitioner = user_id(runtime, "solo", "practitioner")

    def check(
        response: Any, action: str, status: int, rid: str, audited: int | None = None
    ) -> dict[str, Any]:
        assert response.status_code == status, response.text
        entry = only_entry(runtime, response)
        assert entry["tenant_id"] == solo.tenant_id
        assert entry["action"] == action
        assert entry["actor_id"] == practitioner
        assert entry["actor_role"] == "practitioner"
        assert entry["purpose"] == "TREAT"
        assert entry["outcome"] == "success"
        assert entry["status"] == (audited or status)
        assert entry["resource_type"] == "Patient"
        assert entry["source_ip"] == "testclient"
        assert entry["user_agent"] == UA
        assert rid in entry["resource_ids"]
        assert entry["patient_ids"] == [rid]
        assert entry["recorded_at"].startswith("2026-11-23T09:00")  # the test's clock
        return entry

    created = client.post("/fhir/Patient", json=PATIENT_BOB, headers=h)
    rid = created.json()["id"]
    check(created, "create", 201, rid)
    check(client.get(f"/fhir/Patient/{rid}", headers=h), "read", 200, rid)
    check(client.get(f"/fhir/Patient/{rid}/_history/1", headers=h), "vread", 200, rid)
    found = client.get("/fhir/Patient", params={"_id": rid}, headers=h)
    entry = check(found, "search", 200, rid)
    assert entry["resource_ids"] == [rid]
    assert "_id" in (entry["detail"] or "")
    changed = {**PATIENT_BOB, "id": rid, "gender": "other"}
    check(client.put(f"/fhir/Patient/{rid}", json=changed, headers=h), "update", 200, rid)
    check(client.get(f"/fhir/Patient/{rid}/_history", headers=h), "history", 200, rid)
    check(client.delete(f"/fhir/Patient/{rid}", headers=h), "delete", 204, rid)


def test_a_post_search_is_audited_like_a_get(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    response = client.post(
        "/fhir/Patient/_search",
        content=f"_id={solo.patient_id}",
        headers=solo.headers(**{"Content-Type": "application/x-www-form-urlencoded"}),
    )
    assert response.status_code == 200, response.text
    entry = only_entry(runtime, response)
    assert (entry["action"], entry["outcome"]) == ("search", "success")
    assert entry["patient_ids"] == [solo.patient_id]


def test_the_entry_carries_the_tokens_role_and_purpose(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    response = client.get(f"/fhir/Patient/{solo.patient_id}", headers=solo.headers("patient"))
    assert response.status_code == 200
    entry = only_entry(runtime, response)
    assert entry["actor_id"] == user_id(runtime, "solo", "patient")
    assert (entry["actor_role"], entry["purpose"]) == ("patient", "PATRQT")
    assert entry["patient_ids"] == [solo.patient_id]


def test_a_search_names_every_patient_whose_data_left(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    h = solo.headers()
    created = set()
    for i in range(40):
        body = {"resourceType": "Patient", "gender": "female", "name": [{"family": f"Fam{i}"}]}
        response = client.post("/fhir/Patient", json=body, headers=h)
        assert response.status_code == 201
        created.add(response.json()["id"])
    found = client.get("/fhir/Patient", params={"_count": "50"}, headers=h)
    assert found.status_code == 200
    returned = {e["resource"]["id"] for e in found.json()["entry"]}
    assert returned == created | {solo.patient_id, solo.other_patient_id}
    entry = only_entry(runtime, found)
    assert entry["action"] == "search"
    assert set(entry["patient_ids"]) == returned
    assert len(entry["patient_ids"]) == 42
    assert set(entry["resource_ids"]) == returned

    # A smaller page names only the patients on it: those whose data left.
    page = client.get("/fhir/Patient", params={"_count": "3"}, headers=h)
    on_page = {e["resource"]["id"] for e in page.json()["entry"]}
    assert len(on_page) == 3
    assert set(only_entry(runtime, page)["patient_ids"]) == on_page


def test_a_search_of_observations_names_their_subjects(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    h = solo.headers()
    observations = set()
    for patient in (solo.patient_id, solo.other_patient_id):
        body = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": f"Patient/{patient}"},
        }
        response = client.post("/fhir/Observation", json=body, headers=h)
        assert response.status_code == 201, response.text
        assert only_entry(runtime, response)["patient_ids"] == [patient]
        observations.add(response.json()["id"])
    found = client.get("/fhir/Observation", params={"code": "8867-4"}, headers=h)
    entry = only_entry(runtime, found)
    assert set(entry["resource_ids"]) == observations
    assert set(entry["patient_ids"]) == {solo.patient_id, solo.other_patient_id}


# -- refusals ---------------------------------------------------------------------------------


def test_a_read_across_the_tenant_wall_is_audited_as_not_found(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    north, south = clinic.north, clinic.south
    south_before = chain_length(runtime, south.tenant_id)
    response = client.get(f"/fhir/Patient/{south.patient_id}", headers=north.headers())
    assert response.status_code == 404
    entry = only_entry(runtime, response)
    assert entry["tenant_id"] == north.tenant_id  # the requester's chain
    assert (entry["action"], entry["outcome"], entry["status"]) == ("read", "not-found", 404)
    assert entry["resource_ids"] == [south.patient_id]
    assert entry["patient_ids"] == []  # nothing left the gate

    search = client.get("/fhir/Patient", params={"_id": south.patient_id}, headers=north.headers())
    assert search.status_code == 200
    assert search.json().get("entry", []) == []
    entry = only_entry(runtime, search)
    assert (entry["tenant_id"], entry["patient_ids"]) == (north.tenant_id, [])
    assert chain_length(runtime, south.tenant_id) == south_before


def test_a_refusal_by_role_or_compartment_is_audited(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    admin = client.get(f"/fhir/Patient/{solo.patient_id}", headers=solo.headers("practice-admin"))
    assert admin.status_code in (403, 404)
    entry = only_entry(runtime, admin)
    assert (entry["tenant_id"], entry["actor_role"]) == (solo.tenant_id, "practice-admin")
    assert entry["outcome"] in ("denied", "not-found")
    assert entry["status"] == admin.status_code
    assert entry["patient_ids"] == []

    # A patient user reaching for another patient's record: it does not exist for them.
    other = client.get(f"/fhir/Patient/{solo.other_patient_id}", headers=solo.headers("patient"))
    assert other.status_code == 404
    entry = only_entry(runtime, other)
    assert (entry["outcome"], entry["resource_ids"]) == ("not-found", [solo.other_patient_id])
    assert entry["patient_ids"] == []


def test_an_invalid_resource_is_audited_and_writes_nothing(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    before = resource_version_count(runtime, solo.tenant_id)
    bad = {"resourceType": "Patient", "birthDate": "not-a-date"}
    response = client.post("/fhir/Patient", json=bad, headers=solo.headers())
    assert response.status_code in (400, 422)
    entry = only_entry(runtime, response)
    assert (entry["action"], entry["outcome"]) == ("create", "invalid")
    assert entry["status"] == response.status_code
    assert resource_version_count(runtime, solo.tenant_id) == before


def test_a_version_conflict_is_audited(client: TestClient, solo: Site, runtime: Runtime) -> None:
    body = {**PATIENT_BOB, "id": solo.other_patient_id}
    response = client.put(
        f"/fhir/Patient/{solo.other_patient_id}",
        json=body,
        headers=solo.headers(**{"If-Match": 'W/"7"'}),
    )
    assert response.status_code in (409, 412)
    entry = only_entry(runtime, response)
    assert (entry["action"], entry["outcome"]) == ("update", "invalid")
    assert entry["resource_ids"] == [solo.other_patient_id]


def test_a_refused_token_is_audited(client: TestClient, solo: Site, runtime: Runtime) -> None:
    """A token naming a real tenant is refused in that tenant's chain; anything else in the
    vendor's chain."""
    cases = [
        (f"Bearer cv1.{solo.tenant_id}.not-a-real-secret", solo.tenant_id),
        ("Bearer garbage", VENDOR_CHAIN),
        ("Bearer cv1.00000000-0000-0000-0000-000000000000.nope", VENDOR_CHAIN),
        (None, VENDOR_CHAIN),
    ]
    for authorization, chain in cases:
        headers = {"User-Agent": UA}
        if authorization is not None:
            headers["Authorization"] = authorization
        response = client.get(f"/fhir/Patient/{solo.patient_id}", headers=headers)
        assert response.status_code == 401
        entry = only_entry(runtime, response)
        assert entry["tenant_id"] == chain, authorization
        assert (entry["action"], entry["outcome"], entry["status"]) == ("login", "denied", 401)
        assert entry["user_agent"] == UA
        assert entry["patient_ids"] == []
    for chain in (solo.tenant_id, VENDOR_CHAIN):
        assert runtime.audit_verification(chain).ok


def test_a_revoked_token_is_refused_and_audited(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    tenant = runtime.identity.tenant_by_slug("solo")
    issued = runtime.identity.create_token(tenant, user_id(runtime, "solo", "practitioner"))
    runtime.identity.revoke_token(tenant, issued.token_id)
    response = client.get(
        f"/fhir/Patient/{solo.patient_id}", headers={"Authorization": f"Bearer {issued.token}"}
    )
    assert response.status_code == 401
    entry = only_entry(runtime, response)
    assert (entry["tenant_id"], entry["outcome"]) == (solo.tenant_id, "denied")
    assert "revoked" in (entry["detail"] or "")


# Requests refused before they reach the gate must still leave their refusal in the trail
# (issue 2, "Bad input": each "writes nothing but the audit entry of the refusal").


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        pytest.param(
            "POST",
            "/fhir/Patient",
            {"content": b"{not json", "headers": {"Content-Type": "application/fhir+json"}},
            id="malformed-json",
        ),
        pytest.param(
            "POST",
            "/fhir/Patient",
            {"content": b"{}", "headers": {"Content-Type": "text/plain"}},
            id="wrong-content-type",
        ),
        pytest.param(
            "PUT",
            "/fhir/Patient/{pid}",
            {"json": PATIENT_BOB, "headers": {"If-Match": "seven"}},
            id="malformed-if-match",
        ),
        pytest.param(
            "GET",
            "/fhir/Patient/{pid}/_history/first",
            {},
            id="non-numeric-version",
        ),
        pytest.param(
            "GET",
            "/fhir/Patient",
            {"params": {"_page": "forged-page-token"}},
            id="forged-page-token",
        ),
        pytest.param(
            "GET", "/fhir/Patient", {"params": {"nonsense": "1"}}, id="unknown-search-parameter"
        ),
        pytest.param("GET", "/fhir/Basic/1", {}, id="unserved-type"),
    ],
)
def test_a_malformed_request_is_audited(
    client: TestClient,
    solo: Site,
    runtime: Runtime,
    method: str,
    path: str,
    kwargs: dict[str, Any],
) -> None:
    options = dict(kwargs)  # the parameter is shared by both backends' runs: leave it intact
    headers = {**solo.headers(), **options.pop("headers", {})}
    url = path.format(pid=solo.other_patient_id)
    if method == "PUT":  # a body that is fine in itself: only the request's form is wrong
        options["json"] = {**options["json"], "id": solo.other_patient_id}
    response = client.request(method, url, headers=headers, **options)
    assert 400 <= response.status_code < 500, response.text
    entry = only_entry(runtime, response)
    assert entry["tenant_id"] == solo.tenant_id
    assert entry["outcome"] != "success"
    assert entry["status"] == response.status_code


# -- changes and their entries share a transaction --------------------------------------------


def test_every_stored_version_has_its_change_entry(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    h = solo.headers()
    versions_before = resource_version_count(runtime, solo.tenant_id)
    changes_before = successful_changes(runtime, solo.tenant_id)

    def write(i: int) -> None:
        body = {"resourceType": "Patient", "name": [{"family": f"Batch{i}"}]}
        created = client.post("/fhir/Patient", json=body, headers=h)
        assert created.status_code == 201
        rid = created.json()["id"]
        if i % 2:
            body = {**body, "id": rid, "gender": "unknown"}
            assert client.put(f"/fhir/Patient/{rid}", json=body, headers=h).status_code == 200
        if i % 3 == 0:
            assert client.delete(f"/fhir/Patient/{rid}", headers=h).status_code in (200, 204)
        # A refused write in between changes nothing and is not a successful change.
        bad = {"resourceType": "Patient", "birthDate": "no"}
        assert client.post("/fhir/Patient", json=bad, headers=h).status_code in (400, 422)

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(write, range(12)))

    new_versions = resource_version_count(runtime, solo.tenant_id) - versions_before
    new_changes = successful_changes(runtime, solo.tenant_id) - changes_before
    assert new_versions == 12 + 6 + 4  # creates, updates (odd i), deletions (i % 3 == 0)
    assert new_changes == new_versions
    assert runtime.audit_verification(solo.tenant_id).ok


@pytest.fixture
def failing_create_audit(solo: Site, runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Site:
    """From here on, the audit write of a successful create fails; other entries are written."""
    recorder = runtime.gate_services.audit
    real_append = recorder.append

    def append(conn: Any, tenant_id: str, records: Any) -> int:
        records = list(records)
        if any(r.outcome == "success" and r.action == "create" for r in records):
            raise RuntimeError("the audit write failed")
        return real_append(conn, tenant_id, records)

    monkeypatch.setattr(recorder, "append", append)
    return solo


@pytest.mark.usefixtures("failing_create_audit")
def test_a_change_whose_audit_entry_fails_is_not_kept(
    client: TestClient, solo: Site, runtime: Runtime
) -> None:
    """Same transaction: if the entry cannot be written, the change is rolled back with it."""
    before = resource_version_count(runtime, solo.tenant_id)
    response = client.post("/fhir/Patient", json=PATIENT_ALICE, headers=solo.headers())
    assert response.status_code == 500
    assert resource_version_count(runtime, solo.tenant_id) == before
    # The failure is audited in a transaction of its own, after the rollback.
    entry = last_entry(runtime, solo.tenant_id)
    assert (entry["action"], entry["outcome"], entry["status"]) == ("create", "failed", 500)
    assert PATIENT_ALICE["name"][0]["family"] not in response.text
    assert runtime.audit_verification(solo.tenant_id).ok


@pytest.mark.usefixtures("failing_create_audit")
def test_a_server_error_names_its_request(client: TestClient, solo: Site, runtime: Runtime) -> None:
    """The 500's body says 'quote request id ...': the header must carry the same id, and it
    must lead to the failure's audit entry."""
    response = client.post("/fhir/Patient", json=PATIENT_ALICE, headers=solo.headers())
    assert response.status_code == 500
    entry = only_entry(runtime, response)
    assert entry["outcome"] == "failed"
    assert response.headers["x-request-id"] in response.text


# -- verification after tampering -------------------------------------------------------------


@pytest.fixture
def busy(client: TestClient, solo: Site, runtime: Runtime) -> Site:
    """The solo chain, with reads, a refusal and a search at its end."""
    h = solo.headers()
    for rid in (solo.patient_id, solo.other_patient_id, "missing"):
        client.get(f"/fhir/Patient/{rid}", headers=h)
    client.get("/fhir/Patient", params={"gender": "female"}, headers=h)
    return solo


def _tamper(runtime: Runtime, sql: str, **params: Any) -> None:
    with runtime.writer.begin() as conn:
        assert conn.execute(sa.text(sql), params).rowcount >= 1


def test_a_sound_chain_verifies_with_its_count(busy: Site, runtime: Runtime) -> None:
    for tenant_id in (busy.tenant_id, VENDOR_CHAIN):
        result = runtime.audit_verification(tenant_id)
        assert result.ok, result.problem
        assert result.verified == chain_length(runtime, tenant_id)
        assert result.verified > 0


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_entries SET outcome = 'forged' WHERE tenant_id = :t AND seq = :k",
        "UPDATE audit_entries SET patient_ids = '[\"forged\"]' WHERE tenant_id = :t AND seq = :k",
        "UPDATE audit_entries SET actor_id = 'forged' WHERE tenant_id = :t AND seq = :k",
        "UPDATE audit_entries SET recorded_at = '2000-01-01' WHERE tenant_id = :t AND seq = :k",
        "DELETE FROM audit_entries WHERE tenant_id = :t AND seq = :k",
        "DELETE FROM audit_entries WHERE tenant_id = :t AND seq >= :k",
    ],
    ids=["outcome", "patient_ids", "actor", "time", "deletion", "truncation"],
)
def test_tampering_is_named_by_verification(busy: Site, runtime: Runtime, sql: str) -> None:
    k = chain_length(runtime, busy.tenant_id) - 2
    _tamper(runtime, sql, t=busy.tenant_id, k=k)
    result = runtime.audit_verification(busy.tenant_id)
    assert not result.ok
    assert result.first_bad_seq == k
    assert result.verified == k - 1
    assert runtime.audit_verification(VENDOR_CHAIN).ok  # other chains are untouched


def test_reordering_is_named_by_verification(busy: Site, runtime: Runtime) -> None:
    k = chain_length(runtime, busy.tenant_id) - 3
    # Swap positions k and k+1 through a free seq (the primary key forbids a direct swap).
    for src, dst in ((k, -1), (k + 1, k), (-1, k + 1)):
        _tamper(
            runtime,
            "UPDATE audit_entries SET seq = :dst WHERE tenant_id = :t AND seq = :src",
            t=busy.tenant_id,
            src=src,
            dst=dst,
        )
    result = runtime.audit_verification(busy.tenant_id)
    assert (result.ok, result.first_bad_seq) == (False, k)
