"""FHIR search over HTTP: each parameter kind, OR and AND, _count, paging with sealed tokens,
POST _search, lenient handling, and a CapabilityStatement that matches what search accepts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from carevault.clock import ManualClock, isoformat
from carevault.fhir_types import DIRECTORY_TYPES
from carevault.identity.models import system_actor
from carevault.runtime import Runtime
from tests.conftest import START, Clinic

SERVED = {
    "Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "Encounter",
    "Condition", "Observation", "AllergyIntolerance", "Immunization", "Procedure",
    "MedicationRequest", "Medication", "ServiceRequest", "DiagnosticReport", "DocumentReference",
    "ImagingStudy", "Appointment", "Communication", "Consent", "Device", "QuestionnaireResponse",
    "Invoice", "CareTeam", "Group", "RelatedPerson",
}  # fmt: skip
"""The 25 types the product needs, and Group for group-level bulk export."""
MRN_SYSTEM = "urn:oid:1.2.36.146.595.217.0.1"
LOINC = "http://loinc.org"


@pytest.fixture(autouse=True)
def _cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The clinic fixture hashes 14 passwords; a light Argon2 keeps each test's setup short."""
    light = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr("carevault.identity.service.hash_password", light.hash)


def search(
    client: TestClient, clinic: Clinic, rtype: str, params: Any, **headers: str
) -> dict[str, Any]:
    response = client.get(f"/fhir/{rtype}", params=params, headers=clinic.north.headers(**headers))
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "searchset"
    return bundle


def ids(bundle: dict[str, Any]) -> set[str]:
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


def found(client: TestClient, clinic: Clinic, rtype: str, params: Any) -> set[str]:
    bundle = search(client, clinic, rtype, params)
    assert bundle["total"] == len(ids(bundle)), "the test expects one page"
    return ids(bundle)


def refused(client: TestClient, clinic: Clinic, rtype: str, params: Any) -> dict[str, Any]:
    response = client.get(f"/fhir/{rtype}", params=params, headers=clinic.north.headers())
    assert response.status_code == 400, response.text
    body: dict[str, Any] = response.json()
    assert body["resourceType"] == "OperationOutcome"
    return body


def create(client: TestClient, clinic: Clinic, body: dict[str, Any]) -> str:
    response = client.post(
        f"/fhir/{body['resourceType']}", json=body, headers=clinic.north.headers()
    )
    assert response.status_code == 201, response.text
    rid: str = response.json()["id"]
    return rid


def observation(patient_id: str, code: str, when: str, status: str = "final") -> dict[str, Any]:
    return {
        "resourceType": "Observation", "status": status,
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": f"Patient/{patient_id}"}, "effectiveDateTime": when,
    }  # fmt: skip


def encounter(patient_id: str, start: str, end: str) -> dict[str, Any]:
    return {
        "resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient_id}"}, "period": {"start": start, "end": end},
    }  # fmt: skip


def patients(runtime: Runtime, clinic: Clinic, family: str, count: int) -> set[str]:
    """Many patients at once, through the gate as a named system actor (faster than HTTP)."""
    gate = runtime.gate(system_actor(clinic.north.tenant_id, "search test data"))
    return {
        gate.create(
            "Patient", {"resourceType": "Patient", "name": [{"family": family}]}
        ).resource_id
        for _ in range(count)
    }


# -- parameters, one kind at a time ------------------------------------------------


def test_id(client: TestClient, clinic: Clinic) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    assert found(client, clinic, "Patient", {"_id": alice}) == {alice}
    assert found(client, clinic, "Patient", {"_id": f"{alice},{bob}"}) == {alice, bob}
    assert found(client, clinic, "Patient", {"_id": "no-such-id"}) == set()


def test_last_updated_follows_the_clock(
    client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id  # written at START
    clock.advance(timedelta(hours=1))
    third = create(client, clinic, {"resourceType": "Patient", "name": [{"family": "Third"}]})
    clock.advance(timedelta(hours=1))
    fourth = create(client, clinic, {"resourceType": "Patient", "name": [{"family": "Fourth"}]})

    half_past = isoformat(START + timedelta(minutes=30)).replace(".000000", "")
    ninety = isoformat(START + timedelta(minutes=90)).replace(".000000", "")
    assert found(client, clinic, "Patient", {"_lastUpdated": f"ge{half_past}"}) == {third, fourth}
    assert found(client, clinic, "Patient", {"_lastUpdated": f"lt{ninety}"}) == {
        alice, bob, third,
    }  # fmt: skip
    both = [("_lastUpdated", f"ge{half_past}"), ("_lastUpdated", f"lt{ninety}")]
    assert found(client, clinic, "Patient", both) == {third}
    assert found(client, clinic, "Patient", {"_lastUpdated": "2026-11-23"}) == {
        alice, bob, third, fourth,
    }  # fmt: skip
    assert found(client, clinic, "Patient", {"_lastUpdated": "lt2026-11-23"}) == set()


def test_patient_and_subject_references(client: TestClient, clinic: Clinic) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    mine = create(client, clinic, observation(alice, "8867-4", "2024-03-05"))
    theirs = create(client, clinic, observation(bob, "8867-4", "2024-03-05"))
    assert found(client, clinic, "Observation", {"patient": f"Patient/{alice}"}) == {mine}
    assert found(client, clinic, "Observation", {"patient": alice}) == {mine}
    assert found(client, clinic, "Observation", {"subject": f"Patient/{bob}"}) == {theirs}
    assert found(client, clinic, "Observation", {"subject": bob}) == {theirs}
    assert found(client, clinic, "Observation", {"subject:Patient": bob}) == {theirs}
    assert found(client, clinic, "Observation", {"patient": f"{alice},{bob}"}) == {mine, theirs}
    assert found(client, clinic, "Observation", {"patient": "Patient/nobody"}) == set()
    refused(client, clinic, "Observation", {"patient": f"Practitioner/{alice}"})


def test_identifier(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    assert found(client, clinic, "Patient", {"identifier": f"{MRN_SYSTEM}|MRN-ALICE-1"}) == {alice}
    assert found(client, clinic, "Patient", {"identifier": "MRN-ALICE-1"}) == {alice}
    assert found(client, clinic, "Patient", {"identifier": "urn:other|MRN-ALICE-1"}) == set()
    assert found(client, clinic, "Patient", {"identifier": "|MRN-ALICE-1"}) == set()
    # Identifiers match exactly: a prefix is not a match.
    assert found(client, clinic, "Patient", {"identifier": "MRN-ALICE"}) == set()


def test_names_prefix_case_and_accent_insensitive(client: TestClient, clinic: Clinic) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    zoe = create(client, clinic, {
        "resourceType": "Patient", "name": [{"family": "Ångström", "given": ["Zoë"]}],
    })  # fmt: skip
    assert found(client, clinic, "Patient", {"name": "quin"}) == {alice}
    assert found(client, clinic, "Patient", {"name": "QUINTERO"}) == {alice}
    assert found(client, clinic, "Patient", {"name": "Quíntero"}) == {alice}
    assert found(client, clinic, "Patient", {"name": "bode"}) == {bob}
    assert found(client, clinic, "Patient", {"family": "angst"}) == {zoe}
    assert found(client, clinic, "Patient", {"given": "ZOE"}) == {zoe}
    assert found(client, clinic, "Patient", {"given": "mar"}) == {alice}  # second given name
    assert found(client, clinic, "Patient", {"family": "alicia"}) == set()  # a given, not family
    assert found(client, clinic, "Patient", {"family": "quinteros"}) == set()


def test_names_exact_is_case_sensitive_and_whole(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    assert found(client, clinic, "Patient", {"family:exact": "Quintero"}) == {alice}
    assert found(client, clinic, "Patient", {"family:exact": "quintero"}) == set()
    assert found(client, clinic, "Patient", {"family:exact": "Quint"}) == set()
    assert found(client, clinic, "Patient", {"given:exact": "Maria"}) == {alice}
    # identifiers are stored only as keyed hashes: no substring search on them
    refused(client, clinic, "Patient", {"identifier:contains": "ALICE"})


def test_birthdate(client: TestClient, clinic: Clinic) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id  # 1984-03-17, 1950-11-02
    assert found(client, clinic, "Patient", {"birthdate": "1984-03-17"}) == {alice}
    assert found(client, clinic, "Patient", {"birthdate": "eq1984-03-17"}) == {alice}
    assert found(client, clinic, "Patient", {"birthdate": "1984-03-18"}) == set()
    assert found(client, clinic, "Patient", {"birthdate": "1984-03"}) == {alice}
    assert found(client, clinic, "Patient", {"birthdate": "1984"}) == {alice}
    assert found(client, clinic, "Patient", {"birthdate": "1985"}) == set()
    assert found(client, clinic, "Patient", {"birthdate": "ge1980"}) == {alice}
    assert found(client, clinic, "Patient", {"birthdate": "lt1980"}) == {bob}
    assert found(client, clinic, "Patient", {"birthdate": "ge1950"}) == {alice, bob}
    assert found(client, clinic, "Patient", {"birthdate": "gt1984"}) == set()
    year_range = [("birthdate", "ge1940"), ("birthdate", "lt1960")]
    assert found(client, clinic, "Patient", year_range) == {bob}
    outcome = refused(client, clinic, "Patient", {"birthdate": "lt1980-05-01"})
    assert "year" in outcome["issue"][0]["diagnostics"]
    refused(client, clinic, "Patient", {"birthdate": "not-a-date"})


def test_gender_and_comma_means_or(client: TestClient, clinic: Clinic) -> None:
    alice, bob = clinic.north.patient_id, clinic.north.other_patient_id
    assert found(client, clinic, "Patient", {"gender": "female"}) == {alice}
    assert found(client, clinic, "Patient", {"gender": "male"}) == {bob}
    assert found(client, clinic, "Patient", {"gender": "female,male"}) == {alice, bob}
    assert found(client, clinic, "Patient", {"gender": "other"}) == set()


def test_code_status_and_repeated_parameters_mean_and(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    pulse = create(client, clinic, observation(alice, "8867-4", "2024-03-05"))
    weight = create(client, clinic, observation(alice, "29463-7", "2024-03-05", "preliminary"))
    snomed = create(client, clinic, {
        **observation(alice, "x", "2024-03-05"),
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "8867-4"}]},
    })  # fmt: skip
    assert found(client, clinic, "Observation", {"code": f"{LOINC}|8867-4"}) == {pulse}
    assert found(client, clinic, "Observation", {"code": "8867-4"}) == {pulse, snomed}
    assert found(client, clinic, "Observation", {"code": f"{LOINC}|"}) == {pulse, weight}
    assert found(client, clinic, "Observation", {"code": "http://snomed.info/sct|29463-7"}) == set()
    assert found(client, clinic, "Observation", {"code": f"{LOINC}|8867-4,{LOINC}|29463-7"}) == {
        pulse, weight,
    }  # fmt: skip
    assert found(client, clinic, "Observation", {"status": "final"}) == {pulse, snomed}
    assert found(client, clinic, "Observation", {"status": "preliminary,final"}) == {
        pulse, weight, snomed,
    }  # fmt: skip
    both = [("code", "8867-4"), ("status", "final"), ("code", f"{LOINC}|8867-4")]
    assert found(client, clinic, "Observation", both) == {pulse}
    assert found(client, clinic, "Observation", [("code", "8867-4"), ("code", "29463-7")]) == set()
    assert found(client, clinic, "Observation", {"status": "amended"}) == set()


def test_observation_dates(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    january = create(client, clinic, observation(alice, "8867-4", "2024-01-15"))
    march = create(client, clinic, observation(alice, "8867-4", "2024-03-05T10:00:00Z"))
    june = create(client, clinic, observation(alice, "8867-4", "2024-06-30T23:00:00+00:00"))
    assert found(client, clinic, "Observation", {"date": "ge2024-03-01"}) == {march, june}
    assert found(client, clinic, "Observation", {"date": "lt2024-03-01"}) == {january}
    window = [("date", "ge2024-02"), ("date", "lt2024-06")]
    assert found(client, clinic, "Observation", window) == {march}
    assert found(client, clinic, "Observation", {"date": "2024-03-05"}) == {march}
    assert found(client, clinic, "Observation", {"date": "2024-06"}) == {june}
    assert found(client, clinic, "Observation", {"date": "gt2024-06-30T23:00:00Z"}) == set()
    assert found(client, clinic, "Observation", {"date": "le2024-01-15"}) == {january}
    assert found(client, clinic, "Observation", {"date": "2023"}) == set()


def test_encounter_periods(client: TestClient, clinic: Clinic) -> None:
    alice = clinic.north.patient_id
    short = create(client, clinic, encounter(alice, "2024-01-10T09:00:00Z", "2024-01-10T10:00:00Z"))
    stay = create(client, clinic, encounter(alice, "2024-05-01T08:00:00Z", "2024-05-03T12:00:00Z"))
    assert found(client, clinic, "Encounter", {"date": "ge2024-04-01"}) == {stay}
    assert found(client, clinic, "Encounter", {"date": "lt2024-02-01"}) == {short}
    assert found(client, clinic, "Encounter", {"date": "2024-05"}) == {stay}
    assert found(client, clinic, "Encounter", {"date": "2024-01-10"}) == {short}
    assert found(client, clinic, "Encounter", {"date": "2024"}) == {short, stay}
    assert found(client, clinic, "Encounter", {"status": "finished"}) == {short, stay}
    assert found(client, clinic, "Encounter", {"status": "in-progress"}) == set()


# -- counting and paging ---------------------------------------------------------------


def test_count_is_capped_and_zero_gives_the_total_only(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    cap = runtime.settings.search_max_count
    assert cap == 100
    patients(runtime, clinic, "Many", cap + 3)
    capped = search(client, clinic, "Patient", {"family": "many", "_count": "1000"})
    assert capped["total"] == cap + 3
    assert len(ids(capped)) == cap
    assert any(link["relation"] == "next" for link in capped["link"])

    default = search(client, clinic, "Patient", {"family": "many"})
    assert len(ids(default)) == runtime.settings.search_default_count

    only_total = search(client, clinic, "Patient", {"family": "many", "_count": "0"})
    assert only_total["total"] == cap + 3
    assert only_total.get("entry", []) == []
    assert [link["relation"] for link in only_total["link"]] == ["self"]

    refused(client, clinic, "Patient", {"_count": "-1"})
    refused(client, clinic, "Patient", {"_count": "ten"})


def test_paging_visits_every_match_once_through_opaque_links(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    wanted = patients(runtime, clinic, "Pagewright", 27)
    response = client.post(
        "/fhir/Patient/_search",
        data={"family": "pagewrigh", "_count": "4"},
        headers=clinic.north.headers(),
    )
    assert response.status_code == 200
    seen: list[str] = []
    pages = 0
    bundle = response.json()
    while True:
        pages += 1
        assert bundle["total"] == 27
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        next_links = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        if not next_links:
            break
        url = next_links[0]
        # The link carries a sealed token only: no parameter names, no values.
        assert set(parse_qs(urlsplit(url).query)) == {"_page"}
        assert "family" not in url
        assert "pagewrigh" not in url.lower()
        follow = client.get(url, headers=clinic.north.headers())
        assert follow.status_code == 200, follow.text
        bundle = follow.json()
    assert pages == 7
    assert len(seen) == len(set(seen)) == 27
    assert set(seen) == wanted


def _first_next_link(client: TestClient, clinic: Clinic, runtime: Runtime) -> str:
    patients(runtime, clinic, "Pagewright", 5)
    bundle = search(client, clinic, "Patient", {"family": "pagewright", "_count": "2"})
    url: str = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    return url


def test_a_page_link_works_only_for_the_user_it_was_made_for(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    url = _first_next_link(client, clinic, runtime)
    assert client.get(url, headers=clinic.north.headers()).status_code == 200
    for stranger in (clinic.north.headers("staff"), clinic.south.headers("practitioner")):
        response = client.get(url, headers=stranger)
        assert response.status_code == 400
        assert response.json()["resourceType"] == "OperationOutcome"
    tampered = url[:-4] + ("AAAA" if not url.endswith("AAAA") else "BBBB")
    assert client.get(tampered, headers=clinic.north.headers()).status_code == 400


def test_a_page_link_lapses(
    client: TestClient, clinic: Clinic, runtime: Runtime, clock: ManualClock
) -> None:
    url = _first_next_link(client, clinic, runtime)
    clock.advance(timedelta(hours=2))
    response = client.get(url, headers=clinic.north.headers())
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"


def test_a_page_link_is_refused_on_another_resource_type(
    client: TestClient, clinic: Clinic, runtime: Runtime
) -> None:
    url = _first_next_link(client, clinic, runtime)
    token = parse_qs(urlsplit(url).query)["_page"][0]
    response = client.get(
        "/fhir/Observation", params={"_page": token}, headers=clinic.north.headers()
    )
    assert response.status_code == 400


# -- POST _search and unknown parameters --------------------------------------------------


def test_post_search_matches_get_and_keeps_values_out_of_the_self_link(
    client: TestClient, clinic: Clinic
) -> None:
    form = {"family": "quin", "identifier": f"{MRN_SYSTEM}|MRN-ALICE-1", "gender": "female"}
    by_get = search(client, clinic, "Patient", form)
    posted = client.post("/fhir/Patient/_search", data=form, headers=clinic.north.headers())
    assert posted.status_code == 200
    by_post = posted.json()
    assert by_post["total"] == by_get["total"] == 1
    assert ids(by_post) == ids(by_get) == {clinic.north.patient_id}
    self_link = next(link["url"] for link in by_post["link"] if link["relation"] == "self")
    assert urlsplit(self_link).query == ""
    for value in ("quin", "MRN-ALICE-1", "female", "family", "identifier"):
        assert value not in self_link


def test_post_search_needs_a_form_body(client: TestClient, clinic: Clinic) -> None:
    response = client.post(
        "/fhir/Patient/_search", json={"family": "quin"}, headers=clinic.north.headers()
    )
    assert 400 <= response.status_code < 500
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "quin" not in response.text


def test_unknown_parameter_is_refused_unless_lenient(client: TestClient, clinic: Clinic) -> None:
    params = {"favourite-colour": "Quintero", "gender": "female"}
    outcome = refused(client, clinic, "Patient", params)
    assert "favourite-colour" in outcome["issue"][0]["diagnostics"]
    assert "Quintero" not in str(outcome)

    lenient = search(client, clinic, "Patient", params, Prefer="handling=lenient")
    assert ids(lenient) == {clinic.north.patient_id}
    outcomes = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    assert outcomes[0]["resource"]["resourceType"] == "OperationOutcome"
    text = str(outcomes[0]["resource"])
    assert "favourite-colour" in text
    assert "Quintero" not in text


# -- the CapabilityStatement tells the truth ------------------------------------------------

PLAUSIBLE = {
    "token": "abc", "string": "abc", "date": "2020", "reference": "abc", "quantity": "5.4",
}  # fmt: skip


def _capability(client: TestClient) -> dict[str, Any]:
    response = client.get("/fhir/metadata")
    assert response.status_code == 200
    statement: dict[str, Any] = response.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"].startswith("4.0")
    return statement


def test_metadata_lists_exactly_the_served_types(client: TestClient) -> None:
    resources = _capability(client)["rest"][0]["resource"]
    assert {r["type"] for r in resources} == SERVED
    assert len(resources) == len(SERVED)
    for resource in resources:
        codes = {i["code"] for i in resource["interaction"]}
        assert codes >= {"read", "vread", "update", "delete", "history-instance", "create"}
        assert "search-type" in codes


def test_every_listed_search_parameter_is_accepted(client: TestClient, clinic: Clinic) -> None:
    resources = _capability(client)["rest"][0]["resource"]
    role = {t: "practice-admin" for t in DIRECTORY_TYPES}
    for resource in resources:
        rtype = resource["type"]
        names = [p["name"] for p in resource["searchParam"]]
        assert {"_id", "_lastUpdated"} <= set(names), rtype
        for p in resource["searchParam"]:
            response = client.get(
                f"/fhir/{rtype}", params={p["name"]: PLAUSIBLE[p["type"]]},
                headers=clinic.north.headers(role.get(rtype, "practitioner")),
            )  # fmt: skip
            assert response.status_code == 200, (rtype, p["name"], response.text)


def test_an_unlisted_search_parameter_is_refused(client: TestClient, clinic: Clinic) -> None:
    resources = _capability(client)["rest"][0]["resource"]
    listed = {r["type"]: {p["name"] for p in r["searchParam"]} for r in resources}
    # Real FHIR parameters this server does not list, and a made-up one.
    for rtype, name in (("Patient", "address"), ("Patient", "deceased"),
                        ("Observation", "value-string"), ("Encounter", "length"),
                        ("Condition", "not-a-param")):  # fmt: skip
        assert name not in listed[rtype]
        refused(client, clinic, rtype, {name: "abc"})


def test_format_json_is_accepted_and_other_formats_are_not(
    client: TestClient, clinic: Clinic
) -> None:
    h = clinic.north.headers()
    assert client.get("/fhir/Patient", params={"_format": "json"}, headers=h).status_code == 200
    pid = clinic.north.patient_id
    fhir_json = {"_format": "application/fhir+json"}
    read = client.get(f"/fhir/Patient/{pid}", params=fhir_json, headers=h)
    assert read.status_code == 200
    refused = client.get("/fhir/Patient", params={"_format": "xml"}, headers=h)
    assert refused.status_code == 406
    assert refused.json()["resourceType"] == "OperationOutcome"
