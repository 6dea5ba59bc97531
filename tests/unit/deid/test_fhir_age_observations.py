"""Ages over 89 recorded as an Observation's value (164.514(b)(2)(i)(C)): golden cases for the
`coded_values` rule of the Safe Harbor profile (LOINC age codes, in the value and in components),
the value that cannot be read as an age removed and counted, the limited data set keeping ages,
and a property over every time unit."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carevault.deid.fhir.profile import ProfileError, load_profile, parse_profile
from carevault.deid.fhir.strategies import REGISTRY, REMOVED
from carevault.deid.fhir.strategies.cap_age import UCUM, years
from tests.unit.deid.fhir_helpers import context, deidentify

LOINC = "http://loinc.org"
AGE_CODES = ("30525-0", "21612-7", "29553-5", "63900-5", "35659-2")
CAPPED = {"value": 90, "comparator": ">=", "unit": "a", "system": UCUM, "code": "a"}


def _code(code: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": code}]}


def _age(value: dict[str, Any], code: str = "30525-0") -> dict[str, Any]:
    return {"resourceType": "Observation", "id": "o1", "status": "final",
            "code": _code(code), **value}  # fmt: skip


def _years(value: float, unit: str = "a") -> dict[str, Any]:
    return {"valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def test_the_profile_names_the_age_codes_and_the_strategy() -> None:
    (rule,) = load_profile("safe-harbor").coded_values
    assert (rule.system, rule.codes) == (LOINC, frozenset(AGE_CODES))
    assert (rule.strategy.name, rule.category) == ("cap-age", "age")
    assert load_profile("limited-data-set").coded_values == ()


@pytest.mark.parametrize("code", AGE_CODES)
def test_an_age_of_95_years_is_capped(code: str) -> None:
    out, engine = deidentify(_age(_years(95), code))
    assert out["valueQuantity"] == CAPPED
    assert out["code"] == _code(code)
    assert engine.tally.transformed["age"] == 1


def test_an_age_of_89_years_is_kept() -> None:
    out, engine = deidentify(_age(_years(89)))
    assert out["valueQuantity"] == _years(89)["valueQuantity"]
    assert engine.tally.kept["age"] == 1
    assert not engine.tally.transformed["age"]


def test_1100_months_is_over_90_years_and_capped_in_years() -> None:
    out, _ = deidentify(_age(_years(1100, "mo")))
    assert out["valueQuantity"] == CAPPED
    kept, _ = deidentify(_age(_years(1000, "mo")))  # 83 years
    assert kept["valueQuantity"] == _years(1000, "mo")["valueQuantity"]


def test_an_age_element_is_read_in_its_unit_too() -> None:
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "onsetAge": {"value": 1100, "unit": "mo", "system": UCUM, "code": "mo"},
        "abatementAge": {"value": 1000, "unit": "mo", "system": UCUM, "code": "mo"},
    }
    out, _ = deidentify(condition)
    assert out["onsetAge"] == CAPPED
    assert out["abatementAge"] == condition["abatementAge"]  # 83 years


def test_an_age_in_a_component_is_capped() -> None:
    panel = {"resourceType": "Observation", "id": "o2", "status": "final",
             "code": _code("55283-6"),  # not an age: its components are looked at one by one
             "component": [{"code": _code("35659-2"), **_years(97)},
                           {"code": _code("21612-7"), "valueInteger": 45},
                           {"code": _code("8302-2"), **_years(170, "cm")}]}  # fmt: skip
    out, engine = deidentify(panel)
    assert out["component"] == [
        {"code": _code("35659-2"), "valueQuantity": CAPPED},
        {"code": _code("21612-7"), "valueInteger": 45},
        {"code": _code("8302-2"), **_years(170, "cm")},  # a height, not an age: no rule
    ]
    assert engine.tally.transformed["age"] == 1
    assert engine.tally.kept["age"] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"valueInteger": 91}, {"valueInteger": 90}),
        ({"valueInteger": 89}, {"valueInteger": 89}),
        ({"valueString": "95"}, {"valueString": "90 or older"}),
        ({"valueString": "102 years"}, {"valueString": "90 or older"}),
        ({"valueString": "89 y"}, {"valueString": "89 y"}),  # kept, not scrubbed as free text
        ({"valueQuantity": {"value": 33000, "unit": "days"}}, {"valueQuantity": CAPPED}),
        ({"valueQuantity": {"value": 95}}, {"valueQuantity": {"value": 90, "comparator": ">=",
                                                              **{"unit": "a", "system": UCUM,
                                                                 "code": "a"}}}),
        ({"valueQuantity": {"value": 4700, "unit": "wk", "system": UCUM, "code": "wk"}},
         {"valueQuantity": CAPPED}),
    ],
)  # fmt: skip
def test_golden_integer_string_and_unit_cases(
    value: dict[str, Any], expected: dict[str, Any]
) -> None:
    out, _ = deidentify(_age(value))
    assert {k: v for k, v in out.items() if k.startswith("value")} == expected


@pytest.mark.parametrize(
    "value",
    [
        {"valueString": "ninety-one"},
        {"valueString": "about 95 or so"},
        {"valueQuantity": {"value": 95, "unit": "kg", "system": UCUM, "code": "kg"}},
        {"valueQuantity": {"unit": "a"}},
        {"valueQuantity": {"value": "ninety", "unit": "a"}},
        {"valueQuantity": {"value": -3, "unit": "a"}},
        {"valueBoolean": True},
        {"valueCodeableConcept": {"text": "very old"}},
    ],
)
def test_a_value_that_is_not_an_age_is_removed_and_counted(value: dict[str, Any]) -> None:
    out, engine = deidentify(_age(value))
    assert not any(k.startswith("value") for k in out)
    assert engine.tally.removed["age"] == 1


def test_the_limited_data_set_keeps_age_observations() -> None:
    for value in (_years(95), _years(1100, "mo"), {"valueInteger": 101}):
        out, _ = deidentify(_age(value), "limited-data-set")
        assert {k: v for k, v in out.items() if k.startswith("value")} == value


def test_a_non_age_observation_is_untouched_by_the_age_rule() -> None:
    weight = _age(_years(95, "kg"), "29463-7")
    out, engine = deidentify(weight)
    assert out["valueQuantity"] == weight["valueQuantity"]
    assert not engine.tally.removed["age"]
    assert not engine.tally.transformed["age"]


# years per unit, exactly (UCUM: a = 365.25 d, mo = a / 12)
_UNIT_YEARS = {"a": Fraction(1), "mo": Fraction(1, 12), "wk": Fraction(7 * 4, 1461),
               "d": Fraction(4, 1461), "h": Fraction(4, 1461 * 24)}  # fmt: skip


@given(st.sampled_from(sorted(_UNIT_YEARS)), st.integers(min_value=0, max_value=200 * 366 * 24))
def test_any_age_of_90_years_or_more_in_any_unit_is_capped_and_a_younger_one_kept(
    unit: str, amount: int
) -> None:
    quantity = {"value": amount, "unit": unit, "system": UCUM, "code": unit}
    out = REGISTRY["cap-age"].apply(quantity, context())
    if amount * _UNIT_YEARS[unit] >= 90:
        assert out == CAPPED
    else:
        assert out == quantity
    assert years(amount, unit) == amount * _UNIT_YEARS[unit]


@given(st.floats(min_value=0, max_value=150, allow_nan=False))
def test_the_90_year_boundary_holds_for_fractional_years(age: float) -> None:
    out, _ = deidentify(_age(_years(age)))
    assert out["valueQuantity"] == (CAPPED if age >= 90 else _years(age)["valueQuantity"])


@given(st.text(max_size=20).filter(lambda s: not any(c.isdigit() for c in s)))
def test_text_without_a_number_is_never_passed_through(text: str) -> None:
    assert REGISTRY["cap-age"].apply(text, context()) is REMOVED


def test_a_bad_coded_value_rule_is_refused_naming_the_entry() -> None:
    bad = b"""
name = "t"
version = "0"
dates = "year"
rules = []
[[coded_values]]
elements = ["Observation"]
system = "http://loinc.org"
codes = "30525-0"
strategy = "cap-age"
category = "age"
"""
    with pytest.raises(ProfileError, match=r"coded_values\[0\].*codes"):
        parse_profile(bad, "t.toml")
    with pytest.raises(ProfileError, match="no strategy named"):
        parse_profile(bad.replace(b'"30525-0"', b'["30525-0"]').replace(b"cap-age", b"nope"),
                      "t.toml")  # fmt: skip
