"""Patient/$everything (GET and POST): the compartment the actor may read plus the directory
resources it references, `_type`, `_since`, `_count` with sealed next links, a patient user
only for themself, types without permission left out, one audit entry naming everything."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from carevault.clock import ManualClock
from carevault.privacy.minimum_necessary import FieldProfile, RoleProfiles
from carevault.runtime import Runtime
from tests.audit_rows import audit_of
from tests.conftest import Clinic


def post(
    client: TestClient, clinic: Clinic, body: dict[str, Any], role: str = "practitioner"
) -> str:
    response = client.post(
        f"/fhir/{body['resourceType']}", json=body, headers=clinic.north.headers(role)
    )
    assert response.status_code == 201, response.text
    return f"{body['resourceType']}/{response.json()['id']}"


@pytest.fixture
def chart(client: TestClient, clinic: Clinic, clock: ManualClock) -> dict[str, str]:
    """North's first patient with an encounter, an observation and a condition that cite a
    practitioner and an organization; the other patient has an observation of their own."""
    site = clinic.north
    doctor = post(client, clinic, {"resourceType": "Practitioner", "name": [{"family": "Hale"}]},
                  "practice-admin")  # fmt: skip
    lab = post(client, clinic, {"resourceType": "Organization", "name": "Harbor Lab"},
               "practice-admin")  # fmt: skip
    unused = post(client, clinic, {"resourceType": "Location", "name": "Annex"}, "practice-admin")
    subject = {"reference": f"Patient/{site.patient_id}"}
    clock.advance(timedelta(hours=1))
    encounter = post(client, clinic, {
        "resourceType": "Encounter", "status": "finished", "subject": subject,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "participant": [{"individual": {"reference": doctor}}],
        "serviceProvider": {"reference": lab},
    })  # fmt: skip
    clock.advance(timedelta(hours=1))
    observation = post(client, clinic, {
        "resourceType": "Observation", "status": "final", "subject": subject,
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "performer": [{"reference": doctor}], "encounter": {"reference": encounter},
    })  # fmt: skip
    condition = post(client, clinic, {
        "resourceType": "Condition", "subject": subject,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006"}]},
    })  # fmt: skip
    gone = post(client, clinic, {
        "resourceType": "Condition", "subject": subject,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]},
    })  # fmt: skip
    assert client.delete(f"/fhir/{gone}", headers=site.headers()).status_code == 204
    theirs = post(client, clinic, {
        "resourceType": "Observation", "status": "final",
        "subject": {"reference": f"Patient/{site.other_patient_id}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "performer": [{"reference": doctor}],
    })  # fmt: skip
    return {
        "patient": f"Patient/{site.patient_id}", "doctor": doctor, "lab": lab, "unused": unused,
        "encounter": encounter, "observation": observation, "condition": condition,
        "gone": gone, "theirs": theirs,
    }  # fmt: skip


def entries(bundle: dict[str, Any], mode: str) -> set[str]:
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == mode
    }


def everything_url(clinic: Clinic, patient_id: str | None = None) -> str:
    return f"/fhir/Patient/{patient_id or clinic.north.patient_id}/$everything"


def test_compartment_and_referenced_directory(
    client: TestClient, clinic: Clinic, chart: dict[str, str], runtime: Runtime
) -> None:
    response = client.get(everything_url(clinic), headers=clinic.north.headers())
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["type"] == "searchset"
    mine = {chart[k] for k in ("patient", "encounter", "observation", "condition")}
    assert entries(bundle, "match") == mine
    assert entries(bundle, "include") == {chart["doctor"], chart["lab"]}
    assert bundle["total"] == 4
    assert not any(k["relation"] == "next" for k in bundle["link"])
    (entry,) = audit_of(runtime, response)
    assert entry["action"] == "everything"
    assert entry["outcome"] == "success"
    assert entry["patient_ids"] == [clinic.north.patient_id]
    assert set(entry["resource_ids"]) == mine | {chart["doctor"], chart["lab"]}


def test_paged_with_sealed_links(client: TestClient, clinic: Clinic, chart: dict[str, str]) -> None:
    h = clinic.north.headers()
    url: str | None = everything_url(clinic) + "?_count=2"
    matched: list[str] = []
    pages = 0
    while url:
        response = client.get(url, headers=h)
        assert response.status_code == 200, response.text
        bundle = response.json()
        page = sorted(entries(bundle, "match"))
        assert len(page) <= 2
        matched += page
        pages += 1
        url = next((k["url"] for k in bundle["link"] if k["relation"] == "next"), None)
        assert url is None or "Observation" not in url  # the link carries no parameters
    assert pages == 2
    assert sorted(matched) == sorted(
        chart[k] for k in ("patient", "encounter", "observation", "condition")
    )
    # the link is bound to the patient: replaying it for another patient is refused
    first = client.get(everything_url(clinic) + "?_count=1", headers=h).json()
    token = next(k["url"] for k in first["link"] if k["relation"] == "next").split("_page=")[1]
    other = everything_url(clinic, clinic.north.other_patient_id)
    assert client.get(f"{other}?_page={token}", headers=h).status_code == 400


def test_type_since_and_post(
    client: TestClient, clinic: Clinic, chart: dict[str, str], clock: ManualClock
) -> None:
    h = clinic.north.headers()
    typed = client.get(
        everything_url(clinic), params={"_type": "Observation,Practitioner"}, headers=h
    ).json()
    assert entries(typed, "match") == {chart["observation"]}
    assert entries(typed, "include") == {chart["doctor"]}
    since = (clock.now() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = client.get(everything_url(clinic), params={"_since": since}, headers=h).json()
    assert entries(recent, "match") == {chart["observation"], chart["condition"]}
    parameters = {
        "resourceType": "Parameters",
        "parameter": [{"name": "_type", "valueString": "Condition"},
                      {"name": "_count", "valueInteger": 5}],
    }  # fmt: skip
    posted = client.post(everything_url(clinic), json=parameters, headers=h)
    assert posted.status_code == 200, posted.text
    assert entries(posted.json(), "match") == {chart["condition"]}
    assert client.post(everything_url(clinic), headers=h).status_code == 200  # no body: all


def test_patient_user_only_for_themself(
    client: TestClient, clinic: Clinic, chart: dict[str, str]
) -> None:
    as_patient = clinic.north.headers("patient")
    own = client.get(everything_url(clinic), headers=as_patient)
    assert own.status_code == 200, own.text
    assert chart["observation"] in entries(own.json(), "match")
    for someone in (clinic.north.other_patient_id, clinic.south.patient_id, "no-such-patient"):
        response = client.get(everything_url(clinic, someone), headers=as_patient)
        assert response.status_code == 404
        assert "Observation" not in response.text
    # another tenant's practitioner does not reach north's patient either
    assert client.get(everything_url(clinic), headers=clinic.south.headers()).status_code == 404


def test_types_without_permission_are_left_out(
    client: TestClient, clinic: Clinic, chart: dict[str, str], runtime: Runtime
) -> None:
    tenant = runtime.identity.tenant_by_slug("north")
    user = runtime.identity.user_id_by_email(tenant, "practitioner@north.example.org")
    narrow = runtime.identity.create_token(
        tenant, user, scopes=("user/Patient.read", "user/Observation.read")
    ).token
    response = client.get(everything_url(clinic), headers={"Authorization": f"Bearer {narrow}"})
    assert response.status_code == 200, response.text
    assert entries(response.json(), "match") == {chart["patient"], chart["observation"]}
    assert entries(response.json(), "include") == set()  # no Practitioner read either
    # without Patient read there is no $everything at all
    admin = clinic.north.headers("practice-admin")
    assert client.get(everything_url(clinic), headers=admin).status_code == 403


def test_bad_parameters(client: TestClient, clinic: Clinic, chart: dict[str, str]) -> None:
    h = clinic.north.headers()
    for params in ({"_type": "Nonsense"}, {"_type": ","}, {"_count": "many"},
                   {"_since": "last week"}, {"_page": "forged"}, {"start": "2026"},
                   {"_type": ["Observation", "Condition"]}):  # fmt: skip
        response = client.get(everything_url(clinic), params=params, headers=h)
        assert response.status_code == 400, params
    for body in ({"resourceType": "Patient"}, {"resourceType": "Parameters", "parameter": [
            {"name": "patient", "valueString": "x"}]}, [1, 2]):  # fmt: skip
        response = client.post(everything_url(clinic), json=body, headers=h)
        assert response.status_code == 400, body


def test_capability_statement_lists_the_operations(client: TestClient) -> None:
    statement = client.get("/fhir/metadata").json()
    by_type = {r["type"]: r for r in statement["rest"][0]["resource"]}
    assert {o["name"] for o in by_type["Patient"]["operation"]} == {
        "everything", "validate", "export",
    }  # fmt: skip
    assert {o["name"] for o in by_type["Group"]["operation"]} == {"validate", "export"}
    assert {o["name"] for o in by_type["Observation"]["operation"]} == {"validate"}


def test_minimum_necessary_cuts_what_leaves(
    client: TestClient, clinic: Clinic, chart: dict[str, str], runtime: Runtime
) -> None:
    billing = FieldProfile({"Observation": frozenset({"status", "code"})})
    runtime.gate_services.minimum_necessary = RoleProfiles(by_role={"staff": billing})
    bundle = client.get(everything_url(clinic), headers=clinic.north.headers("staff")).json()
    (cut,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation"
    ]
    assert set(cut) == {"resourceType", "id", "meta", "status", "code"}
    assert cut["meta"]["security"][0]["code"] == "REDACTED"
    encounter = next(e["resource"] for e in bundle["entry"]
                     if e["resource"]["resourceType"] == "Encounter")  # fmt: skip
    assert "subject" in encounter  # types without a profile are kept whole
