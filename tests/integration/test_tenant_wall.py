"""The tenant wall and the compartment wall, over HTTP: another tenant's resource, or one the actor
may not see, answers exactly like one that does not exist; roles without PHI access are refused."""

from __future__ import annotations

from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.runtime import Runtime
from tests.conftest import PATIENT_ALICE, Clinic, Site

UNKNOWN_ID = "5f0c1d6e-0000-4000-8000-000000000000"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clinic fixture hashes 14 passwords; a light Argon2 keeps each test's setup short."""
    light = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr("carevault.identity.service.hash_password", light.hash)


def shape(response: Response, rid: str) -> tuple[int, Any]:
    """Status and body with the requested id masked, so two refusals can be compared whole."""
    text = response.text.replace(rid, "{id}")
    return response.status_code, text


def observation(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
    }  # fmt: skip


def create(client: TestClient, site: Site, body: dict[str, Any]) -> str:
    response = client.post(f"/fhir/{body['resourceType']}", json=body, headers=site.headers())
    assert response.status_code == 201, response.text
    rid: str = response.json()["id"]
    return rid


def ids(response: Response) -> set[str]:
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["total"] == len(bundle.get("entry", []))
    return {e["resource"]["id"] for e in bundle.get("entry", [])}


def assert_untouched(client: TestClient, site: Site, rid: str) -> None:
    """The owning tenant still sees its patient at version 1, as written by the fixture."""
    read = client.get(f"/fhir/Patient/{rid}", headers=site.headers())
    assert read.status_code == 200
    assert read.json()["meta"]["versionId"] == "1"
    assert read.json()["name"] == PATIENT_ALICE["name"]


# -- another tenant's resources --------------------------------------------------------------


def test_reading_another_tenants_patient_looks_like_a_missing_one(
    client: TestClient, clinic: Clinic, subtests: pytest.Subtests
) -> None:
    south = clinic.south.patient_id
    for name, path in (("read", ""), ("vread", "/_history/1"), ("history", "/_history")):
        with subtests.test(msg=name):
            theirs = client.get(f"/fhir/Patient/{south}{path}", headers=clinic.north.headers())
            missing = client.get(
                f"/fhir/Patient/{UNKNOWN_ID}{path}", headers=clinic.north.headers()
            )
            assert theirs.status_code == 404
            assert theirs.json()["resourceType"] == "OperationOutcome"
            assert theirs.json()["issue"][0]["code"] == missing.json()["issue"][0]["code"]
            assert shape(theirs, south) == shape(missing, UNKNOWN_ID)


def audit_rows(runtime: Runtime, response: Response) -> list[Any]:
    """The audit entries written for this request, found by the request id it answered with."""
    request_id = response.headers["x-request-id"]
    with runtime.reader.connect() as conn:
        query = select(audit_entries).where(audit_entries.c.request_id == request_id)
        return list(conn.execute(query))


def test_the_refused_read_is_audited_in_the_readers_tenant_only(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    response = client.get(
        f"/fhir/Patient/{clinic.south.patient_id}", headers=clinic.north.headers()
    )
    rows = audit_rows(runtime, response)
    assert len(rows) == 1
    assert rows[0].tenant_id == clinic.north.tenant_id
    assert rows[0].outcome == "not-found"
    assert rows[0].patient_ids == "[]"


def test_searching_never_crosses_the_wall(client: TestClient, clinic: Clinic) -> None:
    north, south = clinic.north, clinic.south
    south_obs = create(client, south, observation(south.patient_id))
    north_obs = create(client, north, observation(north.patient_id))
    h = north.headers()
    assert ids(client.get("/fhir/Patient", headers=h)) == {north.patient_id, north.other_patient_id}
    assert ids(client.get("/fhir/Patient", params={"_id": south.patient_id}, headers=h)) == set()
    # Both tenants hold a patient with the same MRN and name: north finds only its own.
    same_mrn = {"identifier": "MRN-ALICE-1"}
    assert ids(client.post("/fhir/Patient/_search", data=same_mrn, headers=h)) == {north.patient_id}
    assert ids(client.get("/fhir/Patient", params={"family": "quintero"}, headers=h)) == {
        north.patient_id
    }
    assert ids(client.get("/fhir/Observation", headers=h)) == {north_obs}
    by_patient = {"patient": f"Patient/{south.patient_id}"}
    assert ids(client.get("/fhir/Observation", params=by_patient, headers=h)) == set()
    assert ids(client.get("/fhir/Observation", params={"_id": south_obs}, headers=h)) == set()
    # ... and south sees its own observation, so the empty answers above are the wall at work.
    assert ids(client.get("/fhir/Observation", headers=south.headers())) == {south_obs}


def test_updating_another_tenants_patient_looks_like_a_missing_one(
    client: TestClient, clinic: Clinic
) -> None:
    south = clinic.south.patient_id

    def put(rid: str, **headers: str) -> Response:
        body = {"resourceType": "Patient", "id": rid, "name": [{"family": "Overwritten"}]}
        response: Response = client.put(
            f"/fhir/Patient/{rid}", json=body, headers=clinic.north.headers(**headers)
        )
        return response

    guarded = put(south, **{"If-Match": 'W/"1"'})
    assert guarded.status_code == 412
    assert shape(guarded, south) == shape(put(UNKNOWN_ID, **{"If-Match": 'W/"1"'}), UNKNOWN_ID)
    # Without If-Match the id is simply free in north (ids are per tenant), as an unknown one is.
    plain = put(south)
    assert plain.status_code == put(UNKNOWN_ID).status_code
    assert_untouched(client, clinic.south, south)


def test_deleting_another_tenants_patient_looks_like_a_missing_one(
    client: TestClient, clinic: Clinic
) -> None:
    south = clinic.south.patient_id
    theirs = client.delete(f"/fhir/Patient/{south}", headers=clinic.north.headers())
    missing = client.delete(f"/fhir/Patient/{UNKNOWN_ID}", headers=clinic.north.headers())
    assert shape(theirs, south) == shape(missing, UNKNOWN_ID)
    assert_untouched(client, clinic.south, south)


def test_referencing_another_tenants_patient_is_refused_like_a_missing_one(
    client: TestClient, clinic: Clinic
) -> None:
    south = clinic.south.patient_id
    h = clinic.north.headers()
    theirs = client.post("/fhir/Observation", json=observation(south), headers=h)
    missing = client.post("/fhir/Observation", json=observation(UNKNOWN_ID), headers=h)
    assert theirs.status_code == 422
    assert theirs.json()["resourceType"] == "OperationOutcome"
    assert shape(theirs, south) == shape(missing, UNKNOWN_ID)
    assert ids(client.get("/fhir/Observation", headers=h)) == set()
    assert ids(client.get("/fhir/Observation", headers=clinic.south.headers())) == set()


# -- the patient's own compartment ---------------------------------------------------------


def test_a_patient_user_reaches_only_their_own_compartment(
    client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    me, other = north.patient_id, north.other_patient_id
    mine = create(client, north, observation(me))
    theirs = create(client, north, observation(other))
    h = north.headers("patient")

    own = client.get(f"/fhir/Patient/{me}", headers=h)
    assert own.status_code == 200
    assert own.json()["id"] == me

    for path, rid in ((f"/fhir/Patient/{other}", other),
                      (f"/fhir/Patient/{other}/_history/1", other),
                      (f"/fhir/Patient/{other}/_history", other),
                      (f"/fhir/Patient/{clinic.south.patient_id}", clinic.south.patient_id),
                      (f"/fhir/Observation/{theirs}", theirs),
                      (f"/fhir/Observation/{theirs}/_history", theirs)):  # fmt: skip
        refused = client.get(path, headers=h)
        missing = client.get(path.replace(rid, UNKNOWN_ID), headers=h)
        assert refused.status_code == 404, path
        assert shape(refused, rid) == shape(missing, UNKNOWN_ID), path

    assert ids(client.get("/fhir/Patient", headers=h)) == {me}
    assert ids(client.get("/fhir/Patient", params={"family": "okafor"}, headers=h)) == set()
    assert ids(client.get("/fhir/Observation", headers=h)) == {mine}
    assert ids(client.get("/fhir/Observation", params={"patient": other}, headers=h)) == set()
    assert ids(client.get("/fhir/Observation", params={"_id": theirs}, headers=h)) == set()
    assert ids(client.get("/fhir/Observation", params={"code": "8867-4"}, headers=h)) == {mine}


def test_a_patient_user_cannot_write(client: TestClient, clinic: Clinic) -> None:
    h = clinic.north.headers("patient")
    created = client.post("/fhir/Observation", json=observation(clinic.north.patient_id), headers=h)
    assert created.status_code == 403
    assert created.json()["resourceType"] == "OperationOutcome"
    assert ids(client.get("/fhir/Observation", headers=h)) == set()


# -- roles without access to patient data -----------------------------------------------------


def test_roles_without_phi_access_are_refused_by_type(
    client: TestClient, clinic: Clinic, runtime: Runtime, subtests: pytest.Subtests
) -> None:
    for role in ("practice-admin", "vendor-operator", "privacy-officer"):
        with subtests.test(msg=role):
            _refused_by_type(client, clinic, role)
            refusal = client.get("/fhir/Patient", headers=clinic.north.headers(role))
            entries = audit_rows(runtime, refusal)
            assert [(e.outcome, e.status, e.actor_role) for e in entries] == [("denied", 403, role)]


def _refused_by_type(client: TestClient, clinic: Clinic, role: str) -> None:
    h = clinic.north.headers(role)
    rid = clinic.north.patient_id
    attempts = [
        ("GET", f"/fhir/Patient/{rid}"), ("GET", f"/fhir/Patient/{UNKNOWN_ID}"),
        ("GET", "/fhir/Patient"), ("GET", f"/fhir/Patient/{rid}/_history"),
        ("GET", "/fhir/Observation"), ("DELETE", f"/fhir/Patient/{rid}"),
    ]  # fmt: skip
    for method, path in attempts:
        response = client.request(method, path, headers=h)
        assert response.status_code == 403, (method, path)
        body = response.json()
        assert body["resourceType"] == "OperationOutcome"
        assert body["issue"][0]["code"] == "forbidden"
        assert "Quintero" not in response.text
    posted = client.post("/fhir/Patient/_search", data={"family": "quin"}, headers=h)
    assert posted.status_code == 403
    assert_untouched(client, clinic.north, rid)


def test_the_practice_admin_runs_the_directory(client: TestClient, clinic: Clinic) -> None:
    h = clinic.north.headers("practice-admin")
    body = {"resourceType": "Practitioner", "name": [{"family": "Hale"}]}
    created = client.post("/fhir/Practitioner", json=body, headers=h)
    assert created.status_code == 201
    assert ids(client.get("/fhir/Practitioner", headers=h)) == {created.json()["id"]}
    vendor = client.get("/fhir/Practitioner", headers=clinic.north.headers("vendor-operator"))
    assert vendor.status_code == 403


def test_a_read_only_scope_cannot_write(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    tenant = runtime.identity.tenant_by_slug("north")
    user_id = runtime.identity.user_id_by_email(tenant, "practitioner@north.example.org")
    token = runtime.identity.create_token(tenant, user_id, scopes=("user/Patient.read",)).token
    h = {"Authorization": f"Bearer {token}"}
    rid = clinic.north.patient_id

    assert client.get(f"/fhir/Patient/{rid}", headers=h).status_code == 200
    assert ids(client.get("/fhir/Patient", headers=h)) == {rid, clinic.north.other_patient_id}
    refusals = [
        client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=h),
        client.put(f"/fhir/Patient/{rid}", json={**PATIENT_ALICE, "id": rid}, headers=h),
        client.delete(f"/fhir/Patient/{rid}", headers=h),
        client.get("/fhir/Observation", headers=h),
    ]
    for response in refusals:
        assert response.status_code == 403, response.request.method
        assert response.json()["issue"][0]["code"] == "forbidden"
    assert ids(client.get("/fhir/Patient", headers=h)) == {rid, clinic.north.other_patient_id}
    assert_untouched(client, clinic.north, rid)


# -- reference forms that name a patient other than as "Patient/id" ----------------------------

OTHER_FORMS = {
    "versioned": "Patient/{id}/_history/1",
    "absolute": "http://testserver/fhir/Patient/{id}",
}


@pytest.mark.parametrize("form", OTHER_FORMS.values(), ids=OTHER_FORMS.keys())
def test_another_form_of_reference_to_another_tenants_patient_is_refused(
    client: TestClient, clinic: Clinic, form: str
) -> None:
    body = {**observation("x"), "subject": {"reference": form.format(id=clinic.south.patient_id)}}
    response = client.post("/fhir/Observation", json=body, headers=clinic.north.headers())
    assert response.status_code == 422
    assert ids(client.get("/fhir/Observation", headers=clinic.north.headers())) == set()


@pytest.mark.parametrize("form", OTHER_FORMS.values(), ids=OTHER_FORMS.keys())
def test_another_form_of_reference_is_refused_or_lands_in_the_compartment(
    client: TestClient, clinic: Clinic, form: str
) -> None:
    me = clinic.north.patient_id
    body = {**observation("x"), "subject": {"reference": form.format(id=me)}}
    response = client.post("/fhir/Observation", json=body, headers=clinic.north.headers())
    assert response.status_code in (201, 422)
    if response.status_code == 201:
        rid = response.json()["id"]
        by_patient = client.get("/fhir/Observation", params={"patient": me},
                                headers=clinic.north.headers())  # fmt: skip
        assert ids(by_patient) == {rid}
        own = client.get(f"/fhir/Observation/{rid}", headers=clinic.north.headers("patient"))
        assert own.status_code == 200
