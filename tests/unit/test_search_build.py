"""Search parameters are parsed strictly: unknown names, bad values and modifiers are 400s."""

from __future__ import annotations

import pytest

from carevault.crypto.hashing import KeyedHasher
from carevault.errors import Invalid
from carevault.records.search import build

HASHER = KeyedHasher(b"k" * 32)


def _build(rtype: str, params: list[tuple[str, str]], lenient: bool = False) -> object:
    return build("t", rtype, params, HASHER, default_count=20, max_count=100, lenient=lenient)


@pytest.mark.parametrize(
    ("rtype", "params"),
    [
        ("Patient", [("nickname", "x")]),
        ("Patient", [("name:contains", "xy")]),  # trigrams: three characters at least
        ("Patient", [("identifier:contains", "MRN")]),  # hashed whole: no substring search
        ("Patient", [("telecom:contains", "555")]),
        ("Patient", [("gender:missing", "maybe")]),
        ("Patient", [("name:not", "x")]),  # :not is for tokens
        ("Patient", [("_sort", "name")]),  # hashed: no order
        ("Patient", [("_sort", "birthdate")]),
        ("Patient", [("_include", "Patient:general-practitioner:Patient")]),
        ("Patient", [("_include:iterate", "Patient:general-practitioner")]),
        ("Patient", [("_include", "Observation:patient")]),  # must start with the searched type
        ("Patient", [("_revinclude", "Observation:performer:Practitioner")]),
        ("Patient", [("_summary", "text")]),
        ("Patient", [("_total", "exact")]),
        ("Patient", [("gender.name", "x")]),  # chains need a reference parameter
        ("Patient", [("general-practitioner.nickname", "x")]),
        ("Patient", [("general-practitioner.name.family", "x")]),  # one level only
        ("Observation", [("value-quantity", "five")]),
        ("Observation", [("status", "fin\x00al")]),
        ("Observation", [("value-quantity", "5|mg")]),
        ("Observation", [("value-quantity", "xx5")]),
        ("Patient", [("birthdate", "lt1980-05-01")]),  # finer than a year
        ("Patient", [("birthdate", "sa1980")]),
        ("Patient", [("identifier", "urn:mrn|")]),
        ("Patient", [("_count", "-1")]),
        ("Patient", [("_count", "ten")]),
        ("Observation", [("date", "yesterday")]),
        ("Observation", [("patient", "http://elsewhere/Patient/1")]),
        ("Observation", [("patient", "Practitioner/1")]),
        ("Observation", [("code", "")]),
        ("Observation", [("status:exact", "final")]),
    ],
)
def test_refused(rtype: str, params: list[tuple[str, str]]) -> None:
    with pytest.raises(Invalid):
        _build(rtype, params)


def test_messages_name_the_parameter_not_the_value() -> None:
    with pytest.raises(Invalid) as caught:
        _build("Patient", [("birthdate", "lt1980-05-01")])
    assert "birthdate" in caught.value.message
    assert "1980-05-01" not in caught.value.message


def test_lenient_ignores_unknown_names_only() -> None:
    criteria = _build("Patient", [("nickname", "x"), ("gender", "female")], lenient=True)
    assert criteria.ignored == ("nickname",)  # type: ignore[attr-defined]
    assert len(criteria.conditions) == 1  # type: ignore[attr-defined]
    with pytest.raises(Invalid):
        _build("Patient", [("birthdate", "nonsense")], lenient=True)


def test_count_is_capped() -> None:
    assert _build("Patient", [("_count", "5000")]).count == 100  # type: ignore[attr-defined]
