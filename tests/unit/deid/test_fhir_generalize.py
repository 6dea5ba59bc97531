"""The generalizing rules: the 17 restricted ZIP3 areas, any other ZIP to its first three
digits (hypothesis), the 89/90 age rule at its boundary, and dates to the year."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carevault.deid.fhir.profile import load_profile
from carevault.deid.fhir.strategies import REGISTRY, REMOVED
from carevault.deid.fhir.strategies.birth_date import age_on
from tests.unit.deid.fhir_helpers import EXPORT_DATE, PATIENT, context, deidentify

RESTRICTED = ("036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830",
              "831", "878", "879", "884", "890", "893")  # fmt: skip


def test_the_profile_lists_exactly_the_17_restricted_zip3_codes() -> None:
    assert tuple(load_profile("safe-harbor").params["restricted_zip3"]) == RESTRICTED


@pytest.mark.parametrize("zip3", RESTRICTED)
def test_a_restricted_area_becomes_000(zip3: str) -> None:
    ctx = context()
    assert REGISTRY["zip3"].apply(f"{zip3}42", ctx) == "000"
    assert REGISTRY["zip3"].apply(f"{zip3}42-1234", ctx) == "000"
    patient = PATIENT | {"address": [{"postalCode": f"{zip3}01", "state": "NH"}]}
    assert deidentify(patient)[0]["address"] == [{"postalCode": "000", "state": "NH"}]


@given(st.from_regex(r"\d{5}(-\d{4})?", fullmatch=True))
def test_any_other_zip_keeps_its_first_three_digits(zip_code: str) -> None:
    out = REGISTRY["zip3"].apply(zip_code, context())
    assert out == ("000" if zip_code[:3] in RESTRICTED else zip_code[:3])


@given(st.text(max_size=12).filter(lambda s: not s.strip().isdigit()))
def test_what_is_not_a_zip_is_removed(text: str) -> None:
    assert REGISTRY["zip3"].apply(text, context()) is REMOVED


def _birth_for(age: int, days: int = 0) -> str:
    born = date(EXPORT_DATE.year - age, EXPORT_DATE.month, EXPORT_DATE.day)
    return (born + timedelta(days=days)).isoformat()


@pytest.mark.parametrize(
    ("birth", "kept"),
    [
        (_birth_for(89), True),  # 89 today: kept
        (_birth_for(90, days=1), True),  # 90 tomorrow: still 89
        (_birth_for(90), False),  # 90 today: folded
        (_birth_for(104), False),
        (str(EXPORT_DATE.year - 90), False),  # year only: could be 90 already
        (str(EXPORT_DATE.year - 89), True),
    ],
)
def test_the_89_90_boundary_of_the_birth_date(birth: str, kept: bool) -> None:
    out, _ = deidentify(PATIENT | {"birthDate": birth})
    if kept:
        assert out["birthDate"] == birth[:4]
    else:
        assert "birthDate" not in out
        assert out["extension"][-1]["valueString"] == "90 or older"


def test_age_on_counts_whole_years() -> None:
    assert age_on("2000-12-02", date(2026, 12, 1)) == 25
    assert age_on("2000-12-01", date(2026, 12, 1)) == 26
    assert age_on("2000", date(2026, 12, 1)) == 26
    assert age_on("garbage", date(2026, 12, 1)) is None


@pytest.mark.parametrize("value", [89, 89.9, 90, 120])
def test_cap_age_on_numbers(value: float) -> None:
    assert REGISTRY["cap-age"].apply(value, context()) == min(value, 90)


@given(st.dates(min_value=date(1, 1, 1)), st.booleans())
def test_every_date_keeps_its_year_and_nothing_else(day: date, with_time: bool) -> None:
    value = day.isoformat() + ("T10:20:30.123+02:00" if with_time else "")
    out, _ = deidentify({"resourceType": "Encounter", "id": "e", "period": {"start": value}})
    assert out["period"] == {"start": value[:4]}
