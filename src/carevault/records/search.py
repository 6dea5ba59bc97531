"""FHIR search parameters → SQL conditions, table-driven by params.py.

Every condition is a subquery on an index table, so the tenant filter and the
actor's compartment filter (added by the store) always apply in the same SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, false, not_, or_, select

from carevault.crypto.hashing import KeyedHasher
from carevault.errors import Invalid
from carevault.records.dates import Precision, parse_range
from carevault.records.indexing import hash_domain
from carevault.records.models import resources, search_dates, search_refs, search_tokens
from carevault.records.normalize import MAX_PREFIX, fold, telecom
from carevault.records.params import (
    COMMON_PARAMS,
    RESULT_PARAMS,
    SUPPORTED_TYPES,
    Kind,
    SearchParam,
    param,
)

DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge")
MODIFIERS: dict[Kind, tuple[str, ...]] = {
    Kind.STRING: ("exact",),
    Kind.REFERENCE: (),  # plus a type name, checked against the parameter's targets
}


@dataclass(frozen=True)
class Criteria:
    conditions: tuple[ColumnElement[bool], ...]
    count: int
    ignored: tuple[str, ...]
    """Unknown parameter names skipped under handling=lenient (names only, never values)."""


def build(
    tenant_id: str,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    hasher: KeyedHasher,
    *,
    default_count: int,
    max_count: int,
    lenient: bool,
) -> Criteria:
    conditions: list[ColumnElement[bool]] = []
    ignored: list[str] = []
    count = default_count
    for raw_name, value in params:
        name, _, modifier = raw_name.partition(":")
        if name == "_count":
            count = _parse_count(value, max_count)
            continue
        if name in RESULT_PARAMS:
            continue
        if name in COMMON_PARAMS:
            if modifier:
                raise Invalid(f"modifier ':{modifier}' is not supported on {name}")
            conditions.append(_common(name, value))
            continue
        sp = param(resource_type, name)
        if sp is None:
            if lenient:
                ignored.append(name)
                continue
            raise Invalid(f"unknown search parameter '{name}' for {resource_type}")
        values = [v for v in value.split(",") if v != ""]
        if not values:
            raise Invalid(f"search parameter '{name}' needs a value")
        ors = [_one(tenant_id, resource_type, sp, modifier, v, hasher) for v in values]
        conditions.append(or_(*ors))
    return Criteria(tuple(conditions), count, tuple(ignored))


def _parse_count(value: str, max_count: int) -> int:
    if not value.isdigit():
        raise Invalid("_count must be a non-negative integer")
    return min(int(value), max_count)


def _common(name: str, value: str) -> ColumnElement[bool]:
    if name == "_id":
        return resources.c.resource_id.in_([v for v in value.split(",") if v])
    ors = []
    for v in value.split(","):
        prefix, low, high, _ = _date_value(name, v)
        # last_updated is stored as an instant with a trailing Z
        ors.append(
            _compare(
                prefix, resources.c.last_updated, resources.c.last_updated, low + "Z", high + "Z"
            )
        )
    return or_(*ors)


def _one(
    tenant_id: str, rtype: str, sp: SearchParam, modifier: str, value: str, hasher: KeyedHasher
) -> ColumnElement[bool]:
    if modifier and sp.kind is not Kind.REFERENCE and modifier not in MODIFIERS.get(sp.kind, ()):
        raise Invalid(f"modifier ':{modifier}' is not supported on '{sp.name}'")
    if sp.kind is Kind.TOKEN:
        system, sep, code = value.rpartition("|")
        clauses = [search_tokens.c.code == code] if code else []
        if sep:
            clauses.append(search_tokens.c.system == system)
        if not clauses:
            raise Invalid(f"search parameter '{sp.name}' needs a code")
        return _in_tokens(tenant_id, rtype, sp.name, and_(*clauses))
    if sp.kind is Kind.IDENTIFIER:
        system, sep, code = value.rpartition("|")
        if not code:
            raise Invalid(f"'{sp.name}' search needs a value (identifiers are matched exactly)")
        key = f"{system}|{code}" if sep else f"*|{code}"
        digest = hasher.digest(hash_domain(rtype, sp.name, "token"), key)
        return _in_tokens(tenant_id, rtype, sp.name, search_tokens.c.code == digest)
    if sp.kind is Kind.TELECOM:
        digest = hasher.digest(
            hash_domain(rtype, sp.name, "token"), telecom(value.rpartition("|")[2])
        )
        return _in_tokens(tenant_id, rtype, sp.name, search_tokens.c.code == digest)
    if sp.kind is Kind.STRING:
        if modifier == "exact":
            digest = hasher.digest(hash_domain(rtype, sp.name, "exact"), value)
        else:
            folded = fold(value)[:MAX_PREFIX]
            if not folded:
                raise Invalid(f"search parameter '{sp.name}' needs a value")
            digest = hasher.digest(hash_domain(rtype, sp.name, "prefix"), folded)
        return _in_tokens(tenant_id, rtype, sp.name, search_tokens.c.code == digest)
    if sp.kind is Kind.DATE:
        prefix, low, high, _ = _date_value(sp.name, value)
        return _in_dates(tenant_id, rtype, sp.name, prefix, low, high)
    if sp.kind is Kind.BIRTHDATE:
        prefix, low, high, precision = _date_value(sp.name, value)
        if precision is Precision.YEAR:
            year = low[:4]  # birth years are indexed as bare years (see indexing.py)
            return _in_dates(tenant_id, rtype, sp.name, prefix, year, year)
        if prefix == "eq" and precision in (Precision.MONTH, Precision.DAY):
            digest = hasher.digest(hash_domain(rtype, sp.name, "token"), value.removeprefix("eq"))
            return _in_tokens(tenant_id, rtype, sp.name, search_tokens.c.code == digest)
        raise Invalid(
            f"'{sp.name}' compares by year (e.g. ge1980) or matches a whole date or month; "
            "comparisons finer than a year are not supported (birth dates are stored hashed)"
        )
    return _reference(tenant_id, rtype, sp, modifier, value)


def _reference(
    tenant_id: str, rtype: str, sp: SearchParam, modifier: str, value: str
) -> ColumnElement[bool]:
    if modifier and modifier not in (sp.targets or SUPPORTED_TYPES):
        raise Invalid(f"modifier ':{modifier}' is not a target type of '{sp.name}'")
    if "://" in value:
        raise Invalid(f"'{sp.name}' takes a relative reference (Type/id) or an id")
    target_type, _, target_id = value.rpartition("/")
    target_type = target_type or modifier
    if target_type and sp.targets and target_type not in sp.targets:
        raise Invalid(f"'{sp.name}' cannot refer to that resource type")
    clauses = [search_refs.c.target_id == target_id]
    if target_type:
        clauses.append(search_refs.c.target_type == target_type)
    sub = select(search_refs.c.resource_id).where(
        search_refs.c.tenant_id == tenant_id,
        search_refs.c.resource_type == rtype,
        search_refs.c.param == sp.name,
        *clauses,
    )
    return resources.c.resource_id.in_(sub)


def _date_value(name: str, value: str) -> tuple[str, str, str, Precision]:
    prefix = value[:2] if value[:2] in DATE_PREFIXES else "eq"
    body = value[2:] if value[:2] in DATE_PREFIXES else value
    if value[:2].isalpha() and value[:2] not in DATE_PREFIXES:
        raise Invalid(f"'{name}' prefix is not supported (use one of {', '.join(DATE_PREFIXES)})")
    try:
        low, high, precision = parse_range(body)
    except ValueError:
        raise Invalid(
            f"'{name}' needs a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or dateTime)"
        ) from None
    return prefix, low, high, precision


def _compare(
    prefix: str, col_low: ColumnElement[str], col_high: ColumnElement[str], low: str, high: str
) -> ColumnElement[bool]:
    """FHIR date comparison of the resource's [col_low, col_high] with the value's [low, high]."""
    if prefix == "eq":
        return and_(col_low >= low, col_high <= high)
    if prefix == "ne":
        return not_(and_(col_low >= low, col_high <= high))
    if prefix == "lt":
        return col_low < low
    if prefix == "gt":
        return col_high > high
    if prefix == "le":
        return col_low <= high
    if prefix == "ge":
        return col_high >= low
    return false()


def _in_tokens(
    tenant_id: str, rtype: str, name: str, clause: ColumnElement[bool]
) -> ColumnElement[bool]:
    sub = select(search_tokens.c.resource_id).where(
        search_tokens.c.tenant_id == tenant_id,
        search_tokens.c.resource_type == rtype,
        search_tokens.c.param == name,
        clause,
    )
    return resources.c.resource_id.in_(sub)


def _in_dates(
    tenant_id: str, rtype: str, name: str, prefix: str, low: str, high: str
) -> ColumnElement[bool]:
    sub = select(search_dates.c.resource_id).where(
        search_dates.c.tenant_id == tenant_id,
        search_dates.c.resource_type == rtype,
        search_dates.c.param == name,
        _compare(prefix, search_dates.c.low, search_dates.c.high, low, high),
    )
    return resources.c.resource_id.in_(sub)
