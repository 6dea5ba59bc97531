"""Soft delete: a hidden patient (or resource) is gone from read, search, $everything and
export for everyone — a plain 404, like a record that never existed — yet kept; restoring it
shows it again, unchanged. Only the privacy officer may hide, and each change is audited."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.audit.models import audit_entries
from carevault.identity.models import system_actor
from carevault.runtime import Runtime
from tests.conftest import Clinic

OBS: dict[str, Any] = {"resourceType": "Observation", "status": "final", "code": {"text": "bp"}}


def observation(rt: Runtime, tenant_id: str, patient_id: str) -> str:
    gate = rt.gate(system_actor(tenant_id, "test fixture"))
    body = {**OBS, "subject": {"reference": f"Patient/{patient_id}"}}
    return gate.create("Observation", body).resource_id


def visible(client: TestClient, h: dict[str, str], pid: str, obs: str) -> dict[str, Any]:
    """What a practitioner sees of the patient through every path."""
    seen: dict[str, Any] = {}
    seen["read"] = client.get(f"/fhir/Patient/{pid}", headers=h).status_code
    seen["obs"] = client.get(f"/fhir/Observation/{obs}", headers=h).status_code
    seen["vread"] = client.get(f"/fhir/Patient/{pid}/_history/1", headers=h).status_code
    seen["history"] = client.get(f"/fhir/Patient/{pid}/_history", headers=h).status_code
    bundle = client.get("/fhir/Patient", headers=h).json()
    seen["search"] = pid in {e["resource"]["id"] for e in bundle.get("entry", [])}
    obs_bundle = client.get(f"/fhir/Observation?subject=Patient/{pid}", headers=h).json()
    seen["search_obs"] = len(obs_bundle.get("entry", []))
    seen["everything"] = client.get(f"/fhir/Patient/{pid}/$everything", headers=h).status_code
    return seen


def exported_ids(rt: Runtime, tenant_id: str) -> set[str]:
    gate = rt.gate(system_actor(tenant_id, "test export"))
    return {orjson.loads(b)["id"] for batch in gate.export() for b in batch.bodies}


def test_soft_delete_hides_everywhere_and_restore_shows_again(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    site = clinic.north
    pid, other = site.patient_id, site.other_patient_id
    obs = observation(runtime, site.tenant_id, pid)
    h, officer = site.headers("practitioner"), site.headers("privacy-officer")
    before = visible(client, h, pid, obs)
    assert before == {
        "read": 200,
        "obs": 200,
        "vread": 200,
        "history": 200,
        "search": True,
        "search_obs": 1,
        "everything": 200,
    }

    # only the privacy officer hides
    assert (
        client.post(
            "/privacy/soft-deletes", json={"patient_id": pid}, headers=site.headers("staff")
        ).status_code
        == 403
    )
    assert client.post(
        "/privacy/soft-deletes", json={"patient_id": pid}, headers=officer
    ).json() == {"hidden": 2}

    after = visible(client, h, pid, obs)
    assert after == {
        "read": 404,
        "obs": 404,
        "vread": 404,
        "history": 404,
        "search": False,
        "search_obs": 0,
        "everything": 404,
    }
    # the patient's own view and the staff's too; the other patient is untouched
    assert client.get(f"/fhir/Patient/{pid}", headers=site.headers("patient")).status_code == 404
    assert client.get(f"/fhir/Patient/{pid}", headers=site.headers("staff")).status_code == 404
    assert client.get(f"/fhir/Patient/{other}", headers=h).status_code == 200
    assert pid not in exported_ids(runtime, site.tenant_id)
    assert obs not in exported_ids(runtime, site.tenant_id)
    # nothing can be written onto a hidden record (it is not there) …
    put = {"resourceType": "Patient", "id": pid, "gender": "other"}
    assert client.put(
        f"/fhir/Patient/{pid}", json=put, headers=site.headers("staff")
    ).status_code in (404, 409)
    new_obs = {**OBS, "subject": {"reference": f"Patient/{pid}"}}
    assert client.post("/fhir/Observation", json=new_obs, headers=h).status_code == 422
    # … and the officer's list names what is hidden, ids only
    listed = client.get("/privacy/soft-deletes", headers=officer).json()["hidden"]
    assert {(x["resource_type"], x["resource_id"]) for x in listed} == {
        ("Patient", pid),
        ("Observation", obs),
    }

    assert client.post(
        "/privacy/soft-deletes/restore", json={"patient_id": pid}, headers=officer
    ).json() == {"restored": 2}
    assert visible(client, h, pid, obs) == before
    assert {pid, obs} <= exported_ids(runtime, site.tenant_id)
    body = client.get(f"/fhir/Patient/{pid}", headers=h).json()
    assert body["name"][0]["family"] == "Quintero"
    assert body["meta"]["versionId"] == "1"

    with runtime.reader.connect() as conn:
        details = [
            r.detail
            for r in conn.execute(
                sa.select(audit_entries.c.detail).where(audit_entries.c.tenant_id == site.tenant_id)
            )
        ]
    assert any(d and "soft delete: 2 resources hidden" in d for d in details)
    assert any(d and "soft delete undone: 2" in d for d in details)
    assert runtime.audit_verification(site.tenant_id).ok


def test_soft_delete_of_one_resource(runtime: Runtime, client: TestClient, clinic: Clinic) -> None:
    site = clinic.north
    obs = observation(runtime, site.tenant_id, site.patient_id)
    h, officer = site.headers("practitioner"), site.headers("privacy-officer")
    hide = {"resource_type": "Observation", "resource_id": obs}
    history = client.get("/fhir/Observation/_history", headers=h).json()
    assert [e["resource"]["id"] for e in history.get("entry", [])] == [obs]
    assert client.post("/privacy/soft-deletes", json=hide, headers=officer).status_code == 201
    assert client.get(f"/fhir/Observation/{obs}", headers=h).status_code == 404
    assert client.get(f"/fhir/Patient/{site.patient_id}", headers=h).status_code == 200
    history = client.get("/fhir/Observation/_history", headers=h).json()
    assert history["total"] == 0  # the type's history too
    assert not history.get("entry")
    # hiding twice: nothing live to hide (404), changes nothing
    assert client.post("/privacy/soft-deletes", json=hide, headers=officer).status_code == 404
    assert (
        client.post("/privacy/soft-deletes/restore", json=hide, headers=officer).status_code == 200
    )
    assert client.get(f"/fhir/Observation/{obs}", headers=h).status_code == 200


@pytest.mark.parametrize("body", [{}, {"patient_id": 7}, {"resource_type": "Observation"}])
def test_bad_soft_delete_input_is_a_400(client: TestClient, clinic: Clinic, body: Any) -> None:
    officer = clinic.north.headers("privacy-officer")
    assert client.post("/privacy/soft-deletes", json=body, headers=officer).status_code == 400


def test_a_soft_deleted_patient_can_still_be_deleted_for_good(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    site = clinic.north
    officer = site.headers("privacy-officer")
    pid = site.patient_id
    hidden = client.post("/privacy/soft-deletes", json={"patient_id": pid}, headers=officer)
    assert hidden.status_code == 201
    request = {
        "patient_id": pid,
        "written_request": "case-9",
        "verified_by": "id-document",
        "tenant_instruction": True,
    }
    done = client.post("/privacy/deletions", json=request, headers=officer)
    assert done.status_code == 201, done.text
    assert done.json()["destroyed"][0]["count"] == 1
    assert client.get("/privacy/soft-deletes", headers=officer).json() == {"hidden": []}
    assert client.get(f"/fhir/Patient/{pid}", headers=site.headers()).status_code == 404
