"""FHIR REST interactions over HTTP for each served type: create, read, vread, update (If-Match),
update-as-create, delete (a tombstone) and history, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from carevault.fhir_types import DIRECTORY_TYPES, PATIENT_COMPARTMENT, SERVED_TYPES
from tests.conftest import Clinic

TYPES = SERVED_TYPES
BASE = "http://testserver/fhir"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"


def sample(rtype: str, patient_id: str) -> dict[str, Any]:
    """A small valid resource of each type; clinical ones belong to the given patient."""
    subject = {"reference": f"Patient/{patient_id}"}
    samples: dict[str, dict[str, Any]] = {
        "Patient": {"resourceType": "Patient", "name": [{"family": "Lindqvist", "given": ["Ebba"]}],
                    "gender": "female", "birthDate": "1991-07-04"},
        "Practitioner": {"resourceType": "Practitioner", "active": True,
                         "name": [{"family": "Hale", "given": ["Rosa"]}]},
        "Organization": {"resourceType": "Organization", "active": True, "name": "Harbor Lab"},
        "Encounter": {"resourceType": "Encounter", "status": "finished", "subject": subject,
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                                "code": "AMB"},
                      "period": {"start": "2024-03-05T10:00:00Z", "end": "2024-03-05T10:30:00Z"}},
        "Condition": {"resourceType": "Condition", "subject": subject,
                      "code": {"coding": [{"system": "http://snomed.info/sct",
                                           "code": "44054006"}]}},
        "Observation": {"resourceType": "Observation", "status": "final", "subject": subject,
                        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                        "effectiveDateTime": "2024-03-05T10:00:00Z",
                        "valueQuantity": {"value": 72, "unit": "/min"}},
        "DocumentReference": {"resourceType": "DocumentReference", "status": "current",
                              "subject": subject,
                              "content": [{"attachment": {"contentType": "text/plain",
                                                          "data": "aGVsbG8="}}]},
        "PractitionerRole": {"resourceType": "PractitionerRole", "active": True,
                             "code": [{"text": "general practice"}]},
        "Location": {"resourceType": "Location", "status": "active", "name": "Harbor Clinic"},
        "Medication": {"resourceType": "Medication", "status": "active",
                       "code": {"coding": [{"system": RXNORM, "code": "860975"}]}},
        "Group": {"resourceType": "Group", "type": "person", "actual": True,
                  "member": [{"entity": subject}]},
        "AllergyIntolerance": {"resourceType": "AllergyIntolerance", "patient": subject,
                               "category": ["food"], "code": {"text": "peanut"}},
        "Immunization": {"resourceType": "Immunization", "status": "completed", "patient": subject,
                         "vaccineCode": {"coding": [{"system": CVX, "code": "140"}]},
                         "occurrenceDateTime": "2024-03-05T10:00:00Z"},
        "Procedure": {"resourceType": "Procedure", "status": "completed", "subject": subject,
                      "code": {"coding": [{"system": "http://snomed.info/sct",
                                           "code": "73761001"}]}},
        "MedicationRequest": {"resourceType": "MedicationRequest", "status": "active",
                              "intent": "order", "subject": subject,
                              "medicationCodeableConcept": {"coding": [{"system": RXNORM,
                                                                        "code": "860975"}]}},
        "ServiceRequest": {"resourceType": "ServiceRequest", "status": "active",
                           "intent": "order", "subject": subject,
                           "code": {"coding": [{"system": "http://loinc.org",
                                                "code": "2345-7"}]}},
        "DiagnosticReport": {"resourceType": "DiagnosticReport", "status": "final",
                             "subject": subject,
                             "code": {"coding": [{"system": "http://loinc.org",
                                                  "code": "24323-8"}]}},
        "ImagingStudy": {"resourceType": "ImagingStudy", "status": "available",
                         "subject": subject, "started": "2024-03-05T10:00:00Z"},
        "Appointment": {"resourceType": "Appointment", "status": "booked",
                        "start": "2024-04-01T09:00:00Z", "end": "2024-04-01T09:20:00Z",
                        "participant": [{"actor": subject, "status": "accepted"}]},
        "Communication": {"resourceType": "Communication", "status": "completed",
                          "subject": subject, "payload": [{"contentString": "see you"}]},
        "Consent": {"resourceType": "Consent", "status": "active", "patient": subject,
                    "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
                    "category": [{"coding": [{"system": "http://loinc.org",
                                              "code": "59284-0"}]}]},
        "Device": {"resourceType": "Device", "status": "active", "patient": subject,
                   "deviceName": [{"name": "glucose meter", "type": "user-friendly-name"}]},
        "QuestionnaireResponse": {"resourceType": "QuestionnaireResponse",
                                  "status": "completed", "subject": subject},
        "Invoice": {"resourceType": "Invoice", "status": "issued", "subject": subject,
                    "totalNet": {"value": 120.5, "currency": "USD"}},
        "CareTeam": {"resourceType": "CareTeam", "status": "active", "subject": subject},
        "RelatedPerson": {"resourceType": "RelatedPerson", "active": True, "patient": subject,
                          "relationship": [{"coding": [{"system": ROLE_CODE, "code": "DAU"}]}],
                          "name": [{"family": "Reyes", "given": ["Lucia"]}]},
    }  # fmt: skip
    return samples[rtype]


def role_for(rtype: str) -> str:
    """Practitioners write clinical data; the practice admin runs the directory types."""
    return "practice-admin" if rtype in DIRECTORY_TYPES else "practitioner"


def headers(clinic: Clinic, rtype: str, **extra: str) -> dict[str, str]:
    return clinic.north.headers(role_for(rtype), **extra)


def etag(response: Response) -> str:
    return response.headers["etag"]


def create(client: TestClient, clinic: Clinic, rtype: str) -> dict[str, Any]:
    response = client.post(
        f"/fhir/{rtype}",
        json=sample(rtype, clinic.north.patient_id),
        headers=headers(clinic, rtype),
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def history_versions(client: TestClient, clinic: Clinic, rtype: str, rid: str) -> list[int]:
    response = client.get(f"/fhir/{rtype}/{rid}/_history", headers=headers(clinic, rtype))
    assert response.status_code == 200, response.text
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle"
    assert bundle["type"] == "history"
    return [int(e["response"]["etag"].split('"')[1]) for e in bundle["entry"]]


def put(client: TestClient, clinic: Clinic, body: dict[str, Any], **extra: str) -> Response:
    url = f"/fhir/{body['resourceType']}/{body['id']}"
    response: Response = client.put(
        url, json=body, headers=headers(clinic, body["resourceType"], **extra)
    )
    return response


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k != "meta"}


def _create_then_read_and_vread(client: TestClient, clinic: Clinic, rtype: str) -> None:
    sent = sample(rtype, clinic.north.patient_id)
    response = client.post(f"/fhir/{rtype}", json=sent, headers=headers(clinic, rtype))
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/fhir+json")
    created = response.json()
    rid = created["id"]
    assert response.headers["location"] == f"{BASE}/{rtype}/{rid}/_history/1"
    assert etag(response) == 'W/"1"'
    assert created["meta"]["versionId"] == "1"
    assert created["meta"]["lastUpdated"] == "2026-11-23T09:00:00.000000Z"
    assert without_meta(created) == {**sent, "id": rid}

    read = client.get(f"/fhir/{rtype}/{rid}", headers=headers(clinic, rtype))
    assert read.status_code == 200
    assert read.json() == created
    assert etag(read) == 'W/"1"'
    vread = client.get(f"/fhir/{rtype}/{rid}/_history/1", headers=headers(clinic, rtype))
    assert vread.status_code == 200
    assert vread.json() == created
    missing_version = client.get(f"/fhir/{rtype}/{rid}/_history/2", headers=headers(clinic, rtype))
    assert missing_version.status_code == 404
    assert missing_version.json()["resourceType"] == "OperationOutcome"


def _update_with_if_match_then_stale_if_match_is_refused(
    client: TestClient, clinic: Clinic, rtype: str
) -> None:
    created = create(client, clinic, rtype)
    first = {**without_meta(created), "language": "fr"}
    updated = put(client, clinic, first, **{"If-Match": 'W/"1"'})
    assert updated.status_code == 200, updated.text
    assert etag(updated) == 'W/"2"'
    assert updated.json()["meta"]["versionId"] == "2"

    stale = put(client, clinic, {**first, "language": "de"}, **{"If-Match": 'W/"1"'})
    assert stale.status_code == 412
    assert stale.json()["resourceType"] == "OperationOutcome"

    # Nothing was written by the refused update.
    current = client.get(f"/fhir/{rtype}/{created['id']}", headers=headers(clinic, rtype))
    assert current.json()["meta"]["versionId"] == "2"
    assert current.json()["language"] == "fr"
    assert history_versions(client, clinic, rtype, created["id"]) == [2, 1]


def _update_as_create_with_a_client_chosen_id(
    client: TestClient, clinic: Clinic, rtype: str
) -> None:
    rid = f"client-{rtype.lower()}-1"
    body = {**sample(rtype, clinic.north.patient_id), "id": rid}
    response = put(client, clinic, body)
    assert response.status_code == 201, response.text
    assert etag(response) == 'W/"1"'
    assert response.headers["location"] == f"{BASE}/{rtype}/{rid}/_history/1"
    read = client.get(f"/fhir/{rtype}/{rid}", headers=headers(clinic, rtype))
    assert read.status_code == 200
    assert without_meta(read.json()) == body
    # A second PUT to the same id is an ordinary update.
    again = put(client, clinic, {**body, "language": "en"})
    assert again.status_code == 200
    assert etag(again) == 'W/"2"'


def _delete_leaves_a_tombstone_and_history_is_newest_first(
    client: TestClient, clinic: Clinic, rtype: str
) -> None:
    created = create(client, clinic, rtype)
    rid = created["id"]
    assert put(client, clinic, {**without_meta(created), "language": "en"}).status_code == 200

    deleted = client.delete(f"/fhir/{rtype}/{rid}", headers=headers(clinic, rtype))
    assert deleted.status_code == 204
    assert deleted.content == b""

    gone = client.get(f"/fhir/{rtype}/{rid}", headers=headers(clinic, rtype))
    assert gone.status_code == 410
    assert gone.json()["resourceType"] == "OperationOutcome"

    history = client.get(f"/fhir/{rtype}/{rid}/_history", headers=headers(clinic, rtype)).json()
    entries = history["entry"]
    assert [e["response"]["etag"] for e in entries] == ['W/"3"', 'W/"2"', 'W/"1"']
    assert history["total"] == 3
    tombstone = entries[0]
    assert tombstone["request"]["method"] == "DELETE"
    assert "resource" not in tombstone
    assert [e["request"]["method"] for e in entries[1:]] == ["PUT", "POST"]
    assert entries[1]["resource"]["language"] == "en"
    assert "language" not in entries[2]["resource"]

    # Earlier versions stay readable; the tombstone version reads as gone.
    assert (
        client.get(f"/fhir/{rtype}/{rid}/_history/2", headers=headers(clinic, rtype)).json()[
            "meta"
        ]["versionId"]
        == "2"
    )
    assert (
        client.get(f"/fhir/{rtype}/{rid}/_history/3", headers=headers(clinic, rtype)).status_code
        == 410
    )
    # A deleted resource no longer matches a search.
    found = client.get(f"/fhir/{rtype}", params={"_id": rid}, headers=headers(clinic, rtype))
    assert found.json()["total"] == 0


# One test per interaction, one subtest per type (one clinic set-up for all of them).


def test_create_then_read_and_vread(
    client: TestClient, clinic: Clinic, subtests: pytest.Subtests
) -> None:
    for rtype in TYPES:
        with subtests.test(msg=rtype):
            _create_then_read_and_vread(client, clinic, rtype)


def test_update_with_if_match_then_stale_if_match_is_refused(
    client: TestClient, clinic: Clinic, subtests: pytest.Subtests
) -> None:
    for rtype in TYPES:
        with subtests.test(msg=rtype):
            _update_with_if_match_then_stale_if_match_is_refused(client, clinic, rtype)


def test_update_as_create_with_a_client_chosen_id(
    client: TestClient, clinic: Clinic, subtests: pytest.Subtests
) -> None:
    for rtype in TYPES:
        with subtests.test(msg=rtype):
            _update_as_create_with_a_client_chosen_id(client, clinic, rtype)


def test_delete_leaves_a_tombstone_and_history_is_newest_first(
    client: TestClient, clinic: Clinic, subtests: pytest.Subtests
) -> None:
    for rtype in TYPES:
        with subtests.test(msg=rtype):
            _delete_leaves_a_tombstone_and_history_is_newest_first(client, clinic, rtype)


def test_update_after_delete_starts_a_new_version(client: TestClient, clinic: Clinic) -> None:
    created = create(client, clinic, "Organization")
    rid = created["id"]
    assert client.delete(
        f"/fhir/Organization/{rid}", headers=headers(clinic, "Organization")
    ).status_code
    revived = put(client, clinic, without_meta(created))
    assert revived.status_code in (200, 201)
    assert etag(revived) == 'W/"3"'
    assert (
        client.get(f"/fhir/Organization/{rid}", headers=headers(clinic, "Organization")).status_code
        == 200
    )
    assert history_versions(client, clinic, "Organization", rid) == [3, 2, 1]


def test_update_needs_the_url_id_in_the_body(client: TestClient, clinic: Clinic) -> None:
    created = create(client, clinic, "Practitioner")
    body = {**without_meta(created), "id": "some-other-id"}
    response = client.put(
        f"/fhir/Practitioner/{created['id']}", json=body, headers=headers(clinic, "Practitioner")
    )
    assert response.status_code == 400
    assert response.json()["resourceType"] == "OperationOutcome"
    assert history_versions(client, clinic, "Practitioner", created["id"]) == [1]


def test_vread_with_a_non_numeric_version_is_not_found(client: TestClient, clinic: Clinic) -> None:
    rid = clinic.north.patient_id
    response = client.get(f"/fhir/Patient/{rid}/_history/abc", headers=headers(clinic, "Patient"))
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"


def test_each_clinical_type_lands_in_its_patients_compartment(
    client: TestClient, clinic: Clinic, subtests: pytest.Subtests
) -> None:
    """The element naming the patient (subject, patient, participant.actor) files the resource
    in that patient's compartment: their own user reads it, another patient's user cannot."""
    site = clinic.north
    for rtype in (t for t in PATIENT_COMPARTMENT if t != "Patient"):
        with subtests.test(msg=rtype):
            ids = {}
            for patient in (site.patient_id, site.other_patient_id):
                response = client.post(
                    f"/fhir/{rtype}", json=sample(rtype, patient), headers=site.headers()
                )
                assert response.status_code == 201, response.text
                ids[patient] = response.json()["id"]
            mine = client.get(
                f"/fhir/{rtype}/{ids[site.patient_id]}", headers=site.headers("patient")
            )
            assert mine.status_code == 200
            theirs = client.get(
                f"/fhir/{rtype}/{ids[site.other_patient_id]}", headers=site.headers("patient")
            )
            assert theirs.status_code == 404
    # a cohort names other patients: never the patient's to read
    group = client.get("/fhir/Group", headers=site.headers("patient"))
    assert group.status_code == 403
