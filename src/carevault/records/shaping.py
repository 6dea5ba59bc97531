"""Result parameters that shape a search rather than filter it: _sort, _include, _revinclude,
_summary, _total, _elements. Parsed strictly (400) unless handling=lenient."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from carevault.errors import Invalid
from carevault.records.params import SEARCH_PARAMS, SUPPORTED_TYPES, Kind, SearchParam, param

SHAPING_PARAMS = ("_sort", "_include", "_revinclude", "_summary", "_total", "_elements")
SORTABLE_KINDS = frozenset({Kind.DATE, Kind.QUANTITY, Kind.TOKEN})
SORTABLE_COMMON = ("_id", "_lastUpdated")
TOTAL_MODES = ("accurate", "estimate", "none")
_ELEMENT = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


class Unsupported(Invalid):
    """A parameter, modifier or feature this server does not support (400); under
    handling=lenient the parameter is skipped and named in a warning instead."""


@dataclass(frozen=True)
class SortKey:
    name: str
    descending: bool
    param: SearchParam | None  # None for _id and _lastUpdated


@dataclass(frozen=True)
class Include:
    """`_include=source:param[:target]` (forward) or `_revinclude=…` (reverse)."""

    source_type: str
    param: SearchParam
    target_type: str | None
    reverse: bool

    def target_types(self) -> tuple[str, ...]:
        if self.target_type is not None:
            return (self.target_type,)
        return self.param.targets or SUPPORTED_TYPES


@dataclass(frozen=True)
class SearchOptions:
    sort: tuple[SortKey, ...] = ()
    includes: tuple[Include, ...] = ()
    summary_count: bool = False
    total: str = "accurate"
    elements: tuple[str, ...] = ()


def sortable(resource_type: str) -> tuple[str, ...]:
    """The parameters _sort accepts for a type: those with clear values."""
    found = [sp.name for sp in SEARCH_PARAMS.get(resource_type, ()) if sp.kind in SORTABLE_KINDS]
    return (*SORTABLE_COMMON, *found)


def includes(resource_type: str) -> tuple[str, ...]:
    """`_include` values for a search of this type: its reference parameters."""
    return tuple(
        f"{resource_type}:{sp.name}"
        for sp in SEARCH_PARAMS.get(resource_type, ())
        if sp.kind is Kind.REFERENCE
    )


def revincludes(resource_type: str) -> tuple[str, ...]:
    """`_revinclude` values for a search of this type: references to it from any type."""
    return tuple(
        f"{source}:{sp.name}"
        for source, table in SEARCH_PARAMS.items()
        for sp in table
        if sp.kind is Kind.REFERENCE and (not sp.targets or resource_type in sp.targets)
    )


def parse(
    resource_type: str, params: Sequence[tuple[str, str]], lenient: bool, ignored: list[str]
) -> SearchOptions:
    """Options from the shaping parameters (names with their modifiers, values)."""
    found = _Options()
    for raw_name, value in params:
        name, _, modifier = raw_name.partition(":")
        if modifier == "iterate" and name in ("_include", "_revinclude"):
            if not lenient:
                raise Unsupported(f"{name}:iterate is not supported (one level of includes)")
            ignored.append(raw_name)  # lenient: one level, and a warning that says so
            modifier = ""
        try:
            if modifier:
                raise Unsupported(f"modifier ':{modifier}' is not supported on {name}")
            found.add(resource_type, name, value)
        except Unsupported:
            if not lenient:
                raise
            ignored.append(raw_name)
    return SearchOptions(
        tuple(found.sort),
        tuple(found.includes),
        found.summary_count,
        found.total,
        tuple(dict.fromkeys(found.elements)),
    )


@dataclass
class _Options:
    sort: list[SortKey] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    summary_count: bool = False
    total: str = "accurate"
    elements: list[str] = field(default_factory=list)

    def add(self, resource_type: str, name: str, value: str) -> None:
        if name in ("_include", "_revinclude"):
            self.includes.append(_include(resource_type, value, reverse=name == "_revinclude"))
        elif name == "_sort":
            self.sort += [_sort_key(resource_type, key) for key in value.split(",") if key]
        elif name == "_summary":
            if value not in ("count", "false"):
                raise Unsupported("_summary supports count (and false)")
            self.summary_count = value == "count"
        elif name == "_total":
            if value not in TOTAL_MODES:
                raise Invalid(f"_total takes one of {', '.join(TOTAL_MODES)}")
            self.total = value
        elif name == "_elements":
            wanted = [e for e in value.split(",") if e]
            if not wanted or not all(_ELEMENT.match(e) for e in wanted):
                raise Invalid("_elements takes top-level element names, comma-separated")
            self.elements += wanted


def _sort_key(resource_type: str, key: str) -> SortKey:
    descending = key.startswith("-")
    name = key.removeprefix("-")
    if name in SORTABLE_COMMON:
        return SortKey(name, descending, None)
    sp = param(resource_type, name)
    if sp is None:
        raise Unsupported(
            f"_sort names '{name}', which is not a search parameter of {resource_type}"
        )
    if sp.kind in (Kind.STRING, Kind.IDENTIFIER, Kind.TELECOM, Kind.BIRTHDATE):
        raise Unsupported(
            f"_sort cannot use '{name}': its values are stored only as keyed hashes, which "
            "have no order (sortable: " + ", ".join(sortable(resource_type)) + ")"
        )
    if sp.kind not in SORTABLE_KINDS:
        raise Unsupported(f"_sort cannot use the reference parameter '{name}'")
    return SortKey(name, descending, sp)


def _include(resource_type: str, value: str, *, reverse: bool) -> Include:
    what = "_revinclude" if reverse else "_include"
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        raise Invalid(f"{what} takes Type:parameter or Type:parameter:TargetType")
    source, name = parts[0], parts[1]
    target = parts[2] if len(parts) == 3 else None
    if name == "*":
        raise Unsupported(f"{what} with a wildcard is not supported; name the parameter")
    if source not in SUPPORTED_TYPES:
        raise Invalid(f"{what} names a resource type that is not served here")
    if not reverse and source != resource_type:
        raise Invalid(f"_include must start with the searched type ({resource_type}:parameter)")
    sp = param(source, name)
    if sp is None or sp.kind is not Kind.REFERENCE:
        raise Invalid(f"{what}: '{name}' is not a reference parameter of {source}")
    allowed = sp.targets or SUPPORTED_TYPES
    if target is not None and target not in allowed:
        raise Invalid(f"{what}: '{name}' of {source} cannot refer to that type")
    if reverse:
        if resource_type not in allowed or (target is not None and target != resource_type):
            raise Invalid(f"_revinclude: '{name}' of {source} does not refer to {resource_type}")
        target = resource_type
    return Include(source, sp, target, reverse)
