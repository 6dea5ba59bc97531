"""The import's first pass over one item: what it refuses (and says, without values), and
what it notes of a good resource (references, conditional references, identifiers)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from carevault.privacy.import_check import check

ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "enc-1",
    "status": "finished",
    "class": {"code": "AMB"},
    "identifier": [{"system": "urn:test", "value": "E-1"}],
    "subject": {"reference": "Patient/p-1", "display": "Wilhelmina Okonkwo-Brandt"},
    "participant": [{"individual": {
        "reference": "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974493"}}],
    "serviceProvider": {"reference": "Organization/o-1"},
    "partOf": {"reference": "http://elsewhere.example/fhir/Encounter/x"},
}  # fmt: skip


def raw(body: Any) -> bytes:
    return json.dumps(body).encode()


def test_a_good_resource_is_noted_with_what_it_references() -> None:
    checked = check(7, raw(ENCOUNTER))
    assert checked.error is None
    assert (checked.position, checked.rtype, checked.rid) == (7, "Encounter", "enc-1")
    assert checked.patient_id == "p-1"
    assert checked.refs == (("Organization", "o-1"), ("Patient", "p-1"))
    assert checked.conditionals == (
        "Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|9999974493",
    )
    assert checked.identifiers == (("urn:test", "E-1"),)
    assert checked.digest == check(1, raw(ENCOUNTER)).digest != check(1, b"{}").digest


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        (b'{"resourceType": "Encounter", "id": ', "not valid JSON"),
        (b"[1, 2]", "not a FHIR resource (a JSON object)"),
        (raw({"resourceType": "Spaceship", "id": "x"}), "not a type served here"),
        (raw({**ENCOUNTER, "id": None}), "needs an id"),
        (raw({**ENCOUNTER, "id": "has spaces"}), "needs an id"),
        (raw({**ENCOUNTER, "status": "Wilhelmina"}), "Encounter.status"),
        (raw({**ENCOUNTER, "period": {"start": "Wilhelmina"}}), "Encounter.period.start"),
        (raw({**ENCOUNTER, "subject": {"reference": "urn:uuid:1"}}), "local reference"),
        (raw({**ENCOUNTER, "serviceProvider": {"reference": "Spaceship?name=Wilhelmina"}}),
         "not served here"),
    ],
)  # fmt: skip
def test_a_refusal_names_the_element_never_the_value(item: bytes, reason: str) -> None:
    checked = check(3, item)
    assert checked.error is not None
    assert reason in checked.error
    assert "Wilhelmina" not in checked.error
