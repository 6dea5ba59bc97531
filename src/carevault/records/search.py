"""FHIR search parameters → SQL conditions, table-driven by params.py.

Every condition is a subquery on an index table, so the tenant filter and the
actor's compartment filter (added by the store) always apply in the same SQL.
Chained parameters (`subject:Patient.name=…`) look the inner parameter up in the
target type's table and build it with the same code.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, distinct, false, func, not_, or_, select

from carevault.crypto.hashing import KeyedHasher
from carevault.errors import Forbidden, Invalid
from carevault.records import quantities, shaping
from carevault.records.dates import Precision, parse_range
from carevault.records.indexing import hash_domain
from carevault.records.models import (
    resources,
    search_dates,
    search_quantities,
    search_refs,
    search_tokens,
)
from carevault.records.normalize import MAX_CONTAINS, MAX_PREFIX, MIN_CONTAINS, fold, telecom
from carevault.records.normalize import trigrams as trigrams_of
from carevault.records.params import (
    COMMON_PARAMS,
    RESULT_PARAMS,
    SUPPORTED_TYPES,
    Kind,
    SearchParam,
    param,
)
from carevault.records.shaping import Unsupported

DATE_PREFIXES = ("eq", "ne", "lt", "gt", "le", "ge")
MODIFIERS: dict[Kind, tuple[str, ...]] = {
    Kind.TOKEN: ("missing", "not"),
    Kind.IDENTIFIER: ("missing",),
    Kind.TELECOM: ("missing",),
    Kind.STRING: ("exact", "contains", "missing"),
    Kind.DATE: ("missing",),
    Kind.BIRTHDATE: ("missing",),
    Kind.REFERENCE: ("missing",),  # plus a type name, checked against the parameter's targets
    Kind.QUANTITY: ("missing",),
}
_INDEX_TABLE: dict[Kind, Table] = {
    Kind.TOKEN: search_tokens,
    Kind.IDENTIFIER: search_tokens,
    Kind.TELECOM: search_tokens,
    Kind.STRING: search_tokens,
    Kind.DATE: search_dates,
    Kind.BIRTHDATE: search_dates,  # the birth year is always indexed there
    Kind.REFERENCE: search_refs,
    Kind.QUANTITY: search_quantities,
}
_HASHED = (Kind.IDENTIFIER, Kind.TELECOM)


@dataclass(frozen=True)
class Criteria:
    conditions: tuple[ColumnElement[bool], ...]
    count: int
    ignored: tuple[str, ...]
    """Unknown parameter names skipped under handling=lenient (names only, never values)."""
    options: shaping.SearchOptions = field(default_factory=shaping.SearchOptions)


def split_name(raw_name: str) -> tuple[str, str, str]:
    """(name, modifier, chain) of `name[:modifier][.chain]`; parameter names have no dots."""
    head, _, chain = raw_name.partition(".")
    name, _, modifier = head.partition(":")
    return name, modifier, chain


def build(
    tenant_id: str,
    resource_type: str,
    params: Sequence[tuple[str, str]],
    hasher: KeyedHasher,
    *,
    default_count: int,
    max_count: int,
    lenient: bool,
    readable: Collection[str] | None = None,
) -> Criteria:
    """`readable`: the types the actor may read (a chain into another type needs it)."""
    conditions: list[ColumnElement[bool]] = []
    ignored: list[str] = []
    shaping_params: list[tuple[str, str]] = []
    count = default_count
    ctx = _Context(tenant_id, hasher, readable)
    for raw_name, value in params:
        if "\x00" in raw_name or "\x00" in value:  # PostgreSQL text cannot hold NUL
            raise Invalid("search parameters may not contain NUL characters")
        name, modifier, chain = split_name(raw_name)
        if name == "_count":
            count = _parse_count(value, max_count)
            continue
        if name in shaping.SHAPING_PARAMS:
            shaping_params.append((raw_name, value))
            continue
        if name in RESULT_PARAMS:
            continue
        try:
            conditions.append(_filter(ctx, resource_type, name, modifier, chain, value))
        except Unsupported:
            if not lenient:
                raise
            ignored.append(raw_name)  # names and modifiers only, never values
    options = shaping.parse(resource_type, shaping_params, lenient, ignored)
    return Criteria(tuple(conditions), count, tuple(ignored), options)


@dataclass(frozen=True)
class _Context:
    tenant_id: str
    hasher: KeyedHasher
    readable: Collection[str] | None


def _filter(
    ctx: _Context, rtype: str, name: str, modifier: str, chain: str, value: str
) -> ColumnElement[bool]:
    if name in COMMON_PARAMS:
        if modifier or chain:
            raise Unsupported(f"modifier ':{modifier or chain}' is not supported on {name}")
        return _common(name, value)
    sp = param(rtype, name)
    if sp is None:
        raise Unsupported(f"unknown search parameter '{name}' for {rtype}")
    values = [v for v in value.split(",") if v != ""]
    if not values:
        raise Invalid(f"search parameter '{name}' needs a value")
    return _condition(ctx, rtype, sp, modifier, chain, values)


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


def _condition(
    ctx: _Context, rtype: str, sp: SearchParam, modifier: str, chain: str, values: list[str]
) -> ColumnElement[bool]:
    if chain:
        return _chained(ctx, rtype, sp, modifier, chain, values)
    if modifier == "missing":
        return _missing(ctx.tenant_id, rtype, sp, values)
    if modifier == "not":
        if sp.kind is not Kind.TOKEN:
            raise Unsupported(
                f"modifier ':not' is supported on token parameters only, not '{sp.name}'"
            )
        # FHIR :not also matches resources with no value at all
        return and_(*(resources.c.resource_id.not_in(_token(ctx, rtype, sp, v)) for v in values))
    return or_(*(resources.c.resource_id.in_(_ids(ctx, rtype, sp, modifier, v)) for v in values))


def _missing(tenant_id: str, rtype: str, sp: SearchParam, values: list[str]) -> ColumnElement[bool]:
    if values not in (["true"], ["false"]):
        raise Invalid(f"'{sp.name}:missing' takes true or false")
    table = _INDEX_TABLE[sp.kind]
    present = select(table.c.resource_id).where(
        table.c.tenant_id == tenant_id, table.c.resource_type == rtype, table.c.param == sp.name
    )
    if values == ["true"]:
        return resources.c.resource_id.not_in(present)
    return resources.c.resource_id.in_(present)


def _chained(
    ctx: _Context, rtype: str, sp: SearchParam, modifier: str, chain: str, values: list[str]
) -> ColumnElement[bool]:
    """`ref[:Type].inner[:modifier]=v`: resources whose ref points at a target matching inner."""
    if sp.kind is not Kind.REFERENCE:
        raise Unsupported(f"chained search works on reference parameters only, not '{sp.name}'")
    inner_name, _, inner_modifier = chain.partition(":")
    if "." in chain or not inner_name:
        raise Unsupported("chained search goes one level deep (reference.parameter)")
    allowed = sp.targets or SUPPORTED_TYPES
    if modifier and modifier not in allowed:
        raise Invalid(f"modifier ':{modifier}' is not a target type of '{sp.name}'")
    targets: list[tuple[str, SearchParam]] = []
    unreadable = False
    for target in [modifier] if modifier else allowed:
        inner = param(target, inner_name)
        if inner is None:
            continue
        if ctx.readable is not None and target not in ctx.readable:
            unreadable = True
            continue
        targets.append((target, inner))
    if not targets:
        if unreadable:
            raise Forbidden("your role and token do not allow reading the chained target type")
        raise Unsupported(f"chained search: '{inner_name}' is not a parameter of the target type")
    if inner_modifier in ("missing", "not"):
        raise Unsupported(f"modifier ':{inner_modifier}' is not supported inside a chain")
    ors = []
    for value in values:
        for target, inner in targets:
            matches = _ids(ctx, target, inner, inner_modifier, value)
            refs = select(search_refs.c.resource_id).where(
                search_refs.c.tenant_id == ctx.tenant_id,
                search_refs.c.resource_type == rtype,
                search_refs.c.param == sp.name,
                search_refs.c.target_type == target,
                search_refs.c.target_id.in_(matches),
            )
            ors.append(resources.c.resource_id.in_(refs))
    return or_(*ors)


def _ids(ctx: _Context, rtype: str, sp: SearchParam, modifier: str, value: str) -> Select[Any]:
    """Ids of the resources of rtype whose sp matches one value."""
    if sp.kind is Kind.REFERENCE:
        return _reference(ctx.tenant_id, rtype, sp, modifier, value)
    if modifier == "contains" and sp.kind in _HASHED:
        raise Unsupported(
            f"':contains' is not supported on '{sp.name}': identifiers and telecom are stored "
            "only as keyed hashes, so they match exactly"
        )
    if modifier and (modifier not in MODIFIERS[sp.kind] or modifier in ("missing", "not")):
        raise Unsupported(f"modifier ':{modifier}' is not supported on '{sp.name}'")
    if sp.kind is Kind.TOKEN:
        return _token(ctx, rtype, sp, value)
    if sp.kind is Kind.IDENTIFIER:
        system, sep, code = value.rpartition("|")
        if not code:
            raise Invalid(f"'{sp.name}' search needs a value (identifiers are matched exactly)")
        key = f"{system}|{code}" if sep else f"*|{code}"
        return _tokens(ctx, rtype, sp, hash_domain(rtype, sp.name, "token"), key)
    if sp.kind is Kind.TELECOM:
        normalized = telecom(value.rpartition("|")[2])
        return _tokens(ctx, rtype, sp, hash_domain(rtype, sp.name, "token"), normalized)
    if sp.kind is Kind.STRING:
        return _string(ctx, rtype, sp, modifier, value)
    if sp.kind is Kind.DATE:
        prefix, low, high, _ = _date_value(sp.name, value)
        return _in_dates(ctx.tenant_id, rtype, sp.name, prefix, low, high)
    if sp.kind is Kind.BIRTHDATE:
        return _birthdate(ctx, rtype, sp, value)
    return _quantity(ctx.tenant_id, rtype, sp, value)


def _token(ctx: _Context, rtype: str, sp: SearchParam, value: str) -> Select[Any]:
    system, sep, code = value.rpartition("|")
    clauses = [search_tokens.c.code == code] if code else []
    if sep:
        clauses.append(search_tokens.c.system == system)
    if not clauses:
        raise Invalid(f"search parameter '{sp.name}' needs a code")
    return _token_rows(ctx.tenant_id, rtype, sp.name, and_(*clauses))


def _tokens(ctx: _Context, rtype: str, sp: SearchParam, domain: str, key: str) -> Select[Any]:
    digest = ctx.hasher.digest(domain, key)
    return _token_rows(ctx.tenant_id, rtype, sp.name, search_tokens.c.code == digest)


def _string(ctx: _Context, rtype: str, sp: SearchParam, modifier: str, value: str) -> Select[Any]:
    if modifier == "exact":
        return _tokens(ctx, rtype, sp, hash_domain(rtype, sp.name, "exact"), value)
    folded = fold(value)
    if modifier == "contains":
        if not MIN_CONTAINS <= len(folded) <= MAX_CONTAINS:
            raise Invalid(f"'{sp.name}:contains' needs {MIN_CONTAINS} to {MAX_CONTAINS} characters")
        domain = hash_domain(rtype, sp.name, "trigram")
        digests = sorted({ctx.hasher.digest(domain, gram) for gram in trigrams_of(folded)})
        # all of the query's trigrams, in any of the parameter's values (see catalog.py)
        return (
            _token_rows(ctx.tenant_id, rtype, sp.name, search_tokens.c.code.in_(digests))
            .group_by(search_tokens.c.resource_id)
            .having(func.count(distinct(search_tokens.c.code)) == len(digests))
        )
    if not folded:
        raise Invalid(f"search parameter '{sp.name}' needs a value")
    return _tokens(ctx, rtype, sp, hash_domain(rtype, sp.name, "prefix"), folded[:MAX_PREFIX])


def _birthdate(ctx: _Context, rtype: str, sp: SearchParam, value: str) -> Select[Any]:
    prefix, low, _, precision = _date_value(sp.name, value)
    if precision is Precision.YEAR:
        year = low[:4]  # birth years are indexed as bare years (see indexing.py)
        return _in_dates(ctx.tenant_id, rtype, sp.name, prefix, year, year)
    if prefix == "eq" and precision in (Precision.MONTH, Precision.DAY):
        domain = hash_domain(rtype, sp.name, "token")
        return _tokens(ctx, rtype, sp, domain, value.removeprefix("eq"))
    raise Invalid(
        f"'{sp.name}' compares by year (e.g. ge1980) or matches a whole date or month; "
        "comparisons finer than a year are not supported (birth dates are stored hashed)"
    )


def _reference(
    tenant_id: str, rtype: str, sp: SearchParam, modifier: str, value: str
) -> Select[Any]:
    if modifier and modifier not in SUPPORTED_TYPES:
        raise Unsupported(f"modifier ':{modifier}' is not supported on '{sp.name}'")
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
    return select(search_refs.c.resource_id).where(
        search_refs.c.tenant_id == tenant_id,
        search_refs.c.resource_type == rtype,
        search_refs.c.param == sp.name,
        *clauses,
    )


def _quantity(tenant_id: str, rtype: str, sp: SearchParam, value: str) -> Select[Any]:
    try:
        query = quantities.parse_query(value)
    except ValueError:
        raise Invalid(
            f"'{sp.name}' takes [prefix]number[|system|code], prefixes "
            + ", ".join(quantities.PREFIXES)
        ) from None
    t = search_quantities
    clauses = [t.c.tenant_id == tenant_id, t.c.resource_type == rtype, t.c.param == sp.name]
    if query.code is not None:
        clauses.append(t.c.code == query.code)
    if query.system is not None:
        clauses.append(t.c.system == query.system)
    low, high = query.range.low, query.range.high
    clauses.append(_compare_half_open(query.prefix, t.c.low, t.c.high, low, high))
    return select(t.c.resource_id).where(*clauses)


def _compare_half_open(
    prefix: str, col_low: Any, col_high: Any, low: float, high: float
) -> ColumnElement[bool]:
    """FHIR number comparison of the resource's [col_low, col_high) with the value's [low, high)."""
    contained = and_(col_low >= low, col_high <= high)
    conditions: dict[str, ColumnElement[bool]] = {
        "eq": contained,
        "ne": not_(contained),
        "lt": col_low < low,
        "gt": col_high > high,
        "le": col_low < high,
        "ge": col_high > low,
        "sa": col_low >= high,
        "eb": col_high <= low,
        "ap": and_(col_low < high, col_high > low),
    }
    return conditions.get(prefix, false())


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


def _token_rows(tenant_id: str, rtype: str, name: str, clause: ColumnElement[bool]) -> Select[Any]:
    return select(search_tokens.c.resource_id).where(
        search_tokens.c.tenant_id == tenant_id,
        search_tokens.c.resource_type == rtype,
        search_tokens.c.param == name,
        clause,
    )


def _in_dates(
    tenant_id: str, rtype: str, name: str, prefix: str, low: str, high: str
) -> Select[Any]:
    return select(search_dates.c.resource_id).where(
        search_dates.c.tenant_id == tenant_id,
        search_dates.c.resource_type == rtype,
        search_dates.c.param == name,
        _compare(prefix, search_dates.c.low, search_dates.c.high, low, high),
    )
