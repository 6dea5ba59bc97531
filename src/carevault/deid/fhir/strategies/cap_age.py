"""cap-age (generalize): an age of 90 years or more (an Age such as onsetAge, or the value of an
Observation that records an age) becomes "90 or older"; a younger age is kept as it is.

The age is read in years from its UCUM time unit (1100 mo is over 91 years), exactly, with
fractions, so that the 90-year boundary does not depend on float rounding. A value that cannot
be read as an age (text, a unit that is not a time unit, no number) is removed, never passed
through unexamined. "90 or older" is written one way per value type: a Quantity becomes
`{value: 90, comparator: ">=", unit: a}`, a bare number 90, a string "90 or older".
"""

from __future__ import annotations

import re
from fractions import Fraction
from typing import Any, Final

from carevault.deid.fhir.strategies.base import REMOVED, Context, register
from carevault.deid.fhir.strategies.birth_date import OLDEST_AGE_KEPT

UCUM: Final = "http://unitsofmeasure.org"
OLDEST: Final = OLDEST_AGE_KEPT + 1
OLDEST_TEXT: Final = "90 or older"  # the birth-date strategy's age-group wording

_YEAR: Final = Fraction(1)
_DAY: Final = Fraction(4, 1461)  # UCUM: a = a_j = 365.25 d
# UCUM codes and the spellings seen in `unit` (and in strings), to years
_UNITS: Final[dict[str, Fraction]] = {
    **dict.fromkeys(("a", "a_j", "y", "yr", "yrs", "year", "years"), _YEAR),
    **dict.fromkeys(("mo", "mo_j", "month", "months"), Fraction(1, 12)),
    **dict.fromkeys(("wk", "w", "week", "weeks"), 7 * _DAY),
    **dict.fromkeys(("d", "day", "days"), _DAY),
    **dict.fromkeys(("h", "hr", "hour", "hours"), _DAY / 24),
    **dict.fromkeys(("min", "minute", "minutes"), _DAY / 1440),
}
_TEXT: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z_]*)\.?\s*")


def years(number: Any, unit: str | None) -> Fraction | None:
    """The age in years of a number in a time unit (no unit: years, the reading that caps the
    most), or None if it is not an age."""
    if isinstance(number, bool) or not isinstance(number, int | float | str):
        return None
    factor = _UNITS.get(unit.strip().lower()) if unit else _YEAR
    if factor is None:
        return None
    try:
        value = Fraction(str(number))
    except (ValueError, OverflowError, ZeroDivisionError):
        return None
    return None if value < 0 else value * factor


def _quantity(value: dict[str, Any]) -> Any:
    # the UCUM code says what the unit is; `unit` is only its display
    unit = value.get("code") if isinstance(value.get("code"), str) else value.get("unit")
    if unit is not None and not isinstance(unit, str):
        return REMOVED
    age = years(value.get("value"), unit)
    if age is None:
        return REMOVED
    if age < OLDEST:
        return value
    capped = {k: v for k, v in value.items() if k not in ("value", "comparator")}
    if not unit or _UNITS.get(unit.strip().lower()) != _YEAR:  # say which unit was read
        capped |= {"unit": "a", "system": UCUM, "code": "a"}
    return {**capped, "value": OLDEST, "comparator": ">="}


class CapAge:
    name = "cap-age"

    def apply(self, value: Any, ctx: Context) -> Any:
        if isinstance(value, bool):
            return REMOVED
        if isinstance(value, int | float):
            return value if value < OLDEST else OLDEST
        if isinstance(value, dict):
            return _quantity(value)
        if isinstance(value, str):
            match = _TEXT.fullmatch(value)
            age = years(match[1], match[2] or None) if match else None
            if age is None:
                return REMOVED
            return value if age < OLDEST else OLDEST_TEXT
        return REMOVED


register(CapAge())
