"""Safe Harbor on FHIR, per identifier type of 164.514(b)(2)(i): golden cases on a patient
carrying every kind, on devices, notes and attachments, and the limited data set."""

from __future__ import annotations

import base64
import copy
import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carevault.deid.fhir.strategies.birth_date import AGE_GROUP_URL
from tests.unit.deid.fhir_helpers import PATIENT, context, deidentify


@pytest.fixture
def safe() -> dict[str, Any]:
    out, _ = deidentify(PATIENT)
    return out


def test_names_of_the_patient_and_relatives_are_removed(safe: dict[str, Any]) -> None:
    assert "name" not in safe
    assert "contact" not in safe  # relatives, employers: the whole contact goes
    assert not any("mothersMaidenName" in e["url"] for e in safe.get("extension", []))
    assert "display" not in safe["managingOrganization"]


def test_geography_below_the_state_goes_and_the_zip_keeps_three_digits(
    safe: dict[str, Any],
) -> None:
    assert safe["address"] == [{"state": "MA", "postalCode": "011", "country": "US"}]


def test_dates_keep_the_year_only(safe: dict[str, Any]) -> None:
    assert safe["birthDate"] == "1984"
    assert safe["deceasedDateTime"] == "2025"
    assert "meta" not in safe  # lastUpdated and versionId with it


def test_telephone_fax_email_and_urls_are_removed(safe: dict[str, Any]) -> None:
    assert "telecom" not in safe


def test_ssn_mrn_plan_and_licence_numbers_are_removed_and_counted_by_type() -> None:
    out, engine = deidentify(PATIENT)
    assert "identifier" not in out
    removed = engine.tally.removed
    assert {k: removed[k] for k in ("identifier:MR", "identifier:SS", "identifier:DL",
                                    "identifier:MB")} == dict.fromkeys(
        ("identifier:MR", "identifier:SS", "identifier:DL", "identifier:MB"), 1
    )  # fmt: skip
    assert removed["telecom:phone"] == 1
    assert removed["telecom:email"] == 1


def test_photographs_are_removed(safe: dict[str, Any]) -> None:
    assert "photo" not in safe


def test_ids_and_references_take_the_project_pseudonyms(safe: dict[str, Any]) -> None:
    assert safe["id"] == "p-patient-pat-1"
    assert safe["managingOrganization"] == {"reference": "Organization/p-organization-org-1"}


def test_narrative_is_scrubbed_to_plain_text() -> None:
    seen: list[str] = []
    out, _ = deidentify(PATIENT, ctx=context(scrubbed=seen))
    assert out["text"] == {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml">[SCRUBBED]</div>',
    }
    assert "Alicia Quintero x" in seen


def test_only_listed_extensions_stay(safe: dict[str, Any]) -> None:
    assert [e["url"] for e in safe["extension"]] == [
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex"
    ]


def test_nothing_identifying_survives_in_the_serialized_patient(safe: dict[str, Any]) -> None:
    text = json.dumps(safe)
    for value in ("Quintero", "Alicia", "MRN-ALICE", "999-12-3456", "555-810", "Lantern",
                  "Springfield", "Hampden", "01101", "1984-03-17", "alicia.q", "Acme", "Rosa",
                  "\"pat-1\"", "/org-1\""):  # fmt: skip
        assert value not in text, value


def test_device_identifiers_and_serials_are_removed() -> None:
    device = {
        "resourceType": "Device", "id": "d1",
        "udiCarrier": [{"deviceIdentifier": "96702913868313", "carrierHRF": "(01)967"}],
        "distinctIdentifier": "96702913868313", "serialNumber": "9866037",
        "lotNumber": "528662860311789", "manufactureDate": "1958-07-12T23:58:16-04:00",
        "deviceName": [{"name": "Blood glucose meter", "type": "user-friendly-name"}],
        "patient": {"reference": "Patient/pat-1"},
    }  # fmt: skip
    out, engine = deidentify(device)
    assert out == {
        "resourceType": "Device", "id": "p-device-d1", "manufactureDate": "1958",
        "deviceName": [{"name": "Blood glucose meter", "type": "user-friendly-name"}],
        "patient": {"reference": "Patient/p-patient-pat-1"},
    }  # fmt: skip
    assert engine.tally.removed["device"] == 3


def test_notes_payloads_and_text_attachments_are_scrubbed_and_images_dropped() -> None:
    note = base64.b64encode(b"Seen by Dr. Lee on 2020-01-02").decode()
    doc = {
        "resourceType": "DocumentReference", "id": "doc1", "status": "current",
        "subject": {"reference": "Patient/pat-1", "display": "Alicia Quintero"},
        "content": [
            {"attachment": {"contentType": "text/plain; charset=utf-8", "data": note,
                            "url": "https://files.example.org/doc1", "title": "Alicia's note"}},
            {"attachment": {"contentType": "image/jpeg", "data": "/9j/4AAQ"}},
        ],
        "note": [{"text": "Call her at home", "authorString": "Nurse Ratched",
                  "time": "2020-01-02T10:00:00Z"}],
    }  # fmt: skip
    seen: list[str] = []
    out, _ = deidentify(doc, ctx=context(scrubbed=seen))
    text_part, image_part = (c["attachment"] for c in out["content"])
    assert base64.b64decode(text_part["data"]) == b"[SCRUBBED]"
    assert "url" not in text_part
    assert "title" not in text_part
    assert image_part == {"contentType": "image/jpeg"}
    assert out["note"] == [{"text": "[SCRUBBED]", "time": "2020"}]
    assert out["subject"] == {"reference": "Patient/p-patient-pat-1"}
    assert {"Seen by Dr. Lee on 2020-01-02", "Call her at home"} <= set(seen)


def test_communication_payload_strings_are_scrubbed() -> None:
    message = {"resourceType": "Communication", "id": "c1", "status": "completed",
               "payload": [{"contentString": "Hi Alicia, call 555-810-7203"}]}  # fmt: skip
    out, _ = deidentify(message)
    assert out["payload"] == [{"contentString": "[SCRUBBED]"}]


def test_an_age_over_89_is_capped_and_a_younger_one_kept() -> None:
    condition = {"resourceType": "Condition", "id": "c1",
                 "onsetAge": {"value": 93, "unit": "a", "code": "a"},
                 "abatementAge": {"value": 89, "unit": "a"}}  # fmt: skip
    out, _ = deidentify(condition)
    assert out["onsetAge"] == {"unit": "a", "code": "a", "value": 90, "comparator": ">="}
    assert out["abatementAge"] == {"value": 89, "unit": "a"}


def test_a_person_over_89_loses_the_birth_date_and_is_90_or_older() -> None:
    old = copy.deepcopy(PATIENT) | {"birthDate": "1930-01-01"}
    out, _ = deidentify(old)
    assert "birthDate" not in out
    assert {"url": AGE_GROUP_URL, "valueString": "90 or older"} in out["extension"]


def test_the_limited_data_set_keeps_dates_town_state_and_zip() -> None:
    out, _ = deidentify(PATIENT, "limited-data-set")
    assert out["birthDate"] == "1984-03-17"
    assert out["deceasedDateTime"] == "2025-06-30T10:11:12-04:00"
    assert out["address"] == [{"city": "Springfield", "state": "MA", "postalCode": "01101-2233",
                               "country": "US", "period": {"start": "2001-02-03"}}]  # fmt: skip
    for gone in ("name", "telecom", "identifier", "photo", "contact"):
        assert gone not in out  # the 16 direct identifiers still go


@pytest.mark.parametrize(
    ("kind", "raw", "scrubbed"),
    [
        ("text/plain; charset=iso-8859-1", "José Núñez".encode("latin-1"), True),
        ("text/plain", "José".encode("utf-16"), False),  # undecodable as declared: dropped
        ("text/plain", b"not base64 at all!", False),
    ],
)
def test_notes_in_odd_encodings_are_decoded_as_declared_or_dropped(
    kind: str, raw: bytes, scrubbed: bool
) -> None:
    data = base64.b64encode(raw).decode() if raw != b"not base64 at all!" else raw.decode()
    doc = {"resourceType": "DocumentReference", "id": "d",
           "content": [{"attachment": {"contentType": kind, "data": data}}]}  # fmt: skip
    seen: list[str] = []
    out, engine = deidentify(doc, ctx=context(scrubbed=seen))
    attachment = out["content"][0]["attachment"]
    assert ("data" in attachment) is scrubbed
    assert seen == (["José Núñez"] if scrubbed else [])
    if scrubbed:
        assert attachment["contentType"] == "text/plain; charset=utf-8"
    assert engine.tally.transformed["free-text"] == 1


@settings(max_examples=40, deadline=None)
@given(
    family=st.from_regex(r"[A-Z][a-z]{3,12}[0-9]{0,3}", fullmatch=True),
    given_name=st.from_regex(r"[A-Z][a-z]{3,10}", fullmatch=True),
    phone=st.from_regex(r"\(?[2-9]\d{2}\)?[ -]\d{3}-\d{4}", fullmatch=True),
    ssn=st.from_regex(r"\d{3}-\d{2}-\d{4}", fullmatch=True),
    email=st.emails(),
    street=st.from_regex(r"[1-9]\d{0,4} [A-Z][a-z]{3,10} (St|Ave|Rd|Row)", fullmatch=True),
    birth=st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 11, 30)),
    zip_code=st.from_regex(r"\d{5}", fullmatch=True),
)
def test_generated_identifiers_never_survive(
    family: str, given_name: str, phone: str, ssn: str, email: str, street: str,
    birth: date, zip_code: str,
) -> None:  # fmt: skip
    patient = copy.deepcopy(PATIENT) | {
        "name": [{"family": family, "given": [given_name]}],
        "telecom": [{"system": "phone", "value": phone}, {"system": "email", "value": email}],
        "identifier": [{"type": {"coding": [{"code": "SS"}]}, "value": ssn}],
        "address": [{"line": [street], "postalCode": zip_code, "state": "KS"}],
        "birthDate": birth.isoformat(),
    }
    out, _ = deidentify(patient)
    text = json.dumps(out)
    for value in (family, given_name, phone, ssn, email, street, birth.isoformat(), zip_code):
        assert value not in text
