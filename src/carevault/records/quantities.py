"""Quantity and Money values as number ranges, for indexing and for `[prefix]number|system|code`.

A number stands for the range its written precision implies (FHIR's implicit precision):
5.4 is [5.35, 5.45), 100 is [99.5, 100.5). Ranges are half-open and computed in decimal,
then stored as doubles; both sides go through the same conversion, so boundaries agree.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

CURRENCY_SYSTEM = "urn:iso:std:iso:4217"
UNBOUNDED = 1e300
"""Stands for ±infinity (a stored `<5` or `>5`): portable across SQLite and PostgreSQL."""
PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge", "sa", "eb", "ap")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


@dataclass(frozen=True)
class Range:
    low: float
    high: float  # exclusive


@dataclass(frozen=True)
class QuantityQuery:
    prefix: str
    range: Range
    system: str | None  # None: any system
    code: str | None  # None: any unit


def implicit_range(number: Decimal) -> Range:
    """The half-open range a decimal covers at the precision it is written with."""
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)  # finite numbers only (callers check)
    half = Decimal(5).scaleb(exponent - 1)
    return Range(float(number - half), float(number + half))


def approximate_range(number: Decimal) -> Range:
    """`ap`: within 10% of the value (FHIR leaves the margin to the server)."""
    margin = abs(number) / 10 or Decimal("0.1")
    return Range(float(number - margin), float(number + margin))


MAX_EXPONENT = 300
"""Numbers beyond 1e±300 are refused: a double holds them, and their ranges stay finite."""


def parse_number(text: str) -> Decimal | None:
    if not _NUMBER.match(text):
        return None
    try:
        number = Decimal(text)
    except (InvalidOperation, ArithmeticError):
        return None
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int) or abs(exponent) > MAX_EXPONENT:
        return None
    if number and abs(number.adjusted()) > MAX_EXPONENT:
        return None
    return number


def index_rows(value: Any) -> Iterator[tuple[str, str, float, float]]:
    """(system, code, low, high) rows for a Quantity or Money; nothing for anything else."""
    if not isinstance(value, dict):
        return
    raw = value.get("value")
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return
    number = parse_number(repr(raw)) if isinstance(raw, float) else parse_number(str(raw))
    if number is None:
        return
    bounds = implicit_range(number)
    comparator = value.get("comparator")
    if comparator in ("<", "<="):
        bounds = Range(-UNBOUNDED, bounds.high)
    elif comparator in (">", ">="):
        bounds = Range(bounds.low, UNBOUNDED)
    if "currency" in value:  # Money
        yield CURRENCY_SYSTEM, str(value["currency"]), bounds.low, bounds.high
        return
    system, code, unit = value.get("system") or "", value.get("code"), value.get("unit")
    if code:
        yield system, str(code), bounds.low, bounds.high
    if unit and unit != code:
        yield "", str(unit), bounds.low, bounds.high  # `5.4||mg` matches a unit too
    if not code and not unit:
        yield system, "", bounds.low, bounds.high


def parse_query(value: str) -> QuantityQuery:
    """`[prefix]number[|system|code]`; ValueError (no value in its text) when malformed."""
    parts = value.split("|")
    if len(parts) not in (1, 3):
        raise ValueError("expected number or number|system|code")
    head = parts[0]
    prefix = head[:2] if head[:2] in PREFIXES else "eq"
    body = head[2:] if head[:2] in PREFIXES else head
    number = parse_number(body)
    if number is None:
        raise ValueError("not a number")
    bounds = approximate_range(number) if prefix == "ap" else implicit_range(number)
    system = parts[1] if len(parts) == 3 and parts[1] else None
    code = parts[2] if len(parts) == 3 and parts[2] else None
    return QuantityQuery(prefix, bounds, system, code)
