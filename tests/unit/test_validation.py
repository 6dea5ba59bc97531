"""Validation names the element and never echoes the value (it may be PHI)."""

from __future__ import annotations

import pytest

from carevault.errors import Invalid, Unprocessable
from carevault.records.bindings import violations
from carevault.records.validation import validate


def test_a_valid_patient_passes_unchanged() -> None:
    body = {"resourceType": "Patient", "gender": "female", "birthDate": "1990-01-02"}
    assert validate("Patient", body) is body


def test_invalid_element_is_named_without_its_value() -> None:
    with pytest.raises(Unprocessable) as caught:
        validate("Patient", {"resourceType": "Patient", "birthDate": "Jane Roe 1980"})
    text = caught.value.message + repr(caught.value.issues)
    assert "Patient.birthDate" in text
    assert "Jane" not in text
    assert "Roe" not in text


def test_unknown_element_is_named() -> None:
    with pytest.raises(Unprocessable) as caught:
        validate("Patient", {"resourceType": "Patient", "nickname": "Secret Sam"})
    assert caught.value.issues[0][0] == "Patient.nickname"
    assert "Secret" not in repr(caught.value.issues)


@pytest.mark.parametrize(
    "body",
    [[], "text", {"resourceType": "Observation"}, {"resourceType": "Nope"}, {}],
)
def test_wrong_shape_or_type(body: object) -> None:
    with pytest.raises(Invalid):
        validate("Patient", body)


_REF = {"reference": "Patient/p1"}
_PATIENT = {"patient": _REF}


@pytest.mark.parametrize(
    ("rtype", "body"),
    [
        (
            "Immunization",
            {
                "status": "given",
                "vaccineCode": {"text": "flu"},
                "occurrenceDateTime": "2020-01-01",
                **_PATIENT,
            },
        ),
        ("AllergyIntolerance", {"category": ["food", "pollen"], **_PATIENT}),
        (
            "MedicationRequest",
            {
                "status": "active",
                "intent": "wish",
                "subject": _REF,
                "medicationCodeableConcept": {"text": "x"},
            },
        ),
    ],
)
def test_codes_outside_a_required_value_set_are_refused(
    rtype: str, body: dict[str, object]
) -> None:
    with pytest.raises(Unprocessable) as caught:
        validate(rtype, {"resourceType": rtype, **body})
    assert "not in the required value set" in repr(caught.value.issues)


def test_codes_inside_required_value_sets_pass() -> None:
    body = {"resourceType": "AllergyIntolerance", "category": ["food", "medication"],
            "patient": {"reference": "Patient/p1"}}  # fmt: skip
    assert validate("AllergyIntolerance", body) is body


@pytest.mark.parametrize("status", [[{"x": 1}], {"a": 1}, 3, {"coding": [{"code": ["x"]}]}])
def test_a_code_of_the_wrong_shape_is_a_violation_not_a_crash(status: object) -> None:
    assert list(violations("Immunization", {"status": status})) == ["Immunization.status"]
