"""What the gate serves, described for the faces (CapabilityStatement) without exposing records/."""

from __future__ import annotations

from dataclasses import dataclass

from carevault.records.params import FHIR_TYPE, SEARCH_PARAMS, SUPPORTED_TYPES, Kind
from carevault.records.shaping import includes, revincludes, sortable


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    documentation: str


_NOTES = {
    Kind.IDENTIFIER: "Exact match only (system|value or value); stored as a keyed hash, so "
    ":contains is refused. Modifiers: :missing.",
    Kind.TELECOM: "Exact match on the normalized value; stored as a keyed hash, so :contains "
    "is refused. Modifiers: :missing.",
    Kind.STRING: "Case- and accent-insensitive prefix (first 32 characters). Modifiers: "
    ":exact, :contains (3-128 characters, matched by keyed-hash trigrams; trigrams are not "
    "positional, so in rare cases it over-matches, e.g. when the trigrams come from different "
    "values), :missing. Not sortable (stored only as keyed hashes).",
    Kind.BIRTHDATE: "Year comparisons (eq, ne, lt, gt, le, ge with YYYY); equality with a whole "
    "date or month. Full dates are stored only as keyed hashes, so not sortable. "
    "Modifiers: :missing.",
    Kind.DATE: "Prefixes eq, ne, lt, gt, le, ge. Modifiers: :missing. Sortable.",
    Kind.TOKEN: "system|code, code, or system|. Modifiers: :not, :missing. Sortable (by code).",
    Kind.REFERENCE: "Type/id or id; a :Type modifier names the target type. Modifiers: "
    ":missing. Chained one level: name[:Type].parameter=value (any parameter of the target).",
    Kind.QUANTITY: "[prefix]number[|system|code] (Money: number|urn:iso:std:iso:4217|currency); "
    "prefixes eq, ne, lt, gt, le, ge, sa, eb, ap; implicit precision (5.4 is [5.35, 5.45)). "
    "Modifiers: :missing. Sortable.",
}

SERVED_TYPES: tuple[str, ...] = SUPPORTED_TYPES


def search_params(resource_type: str) -> list[ParamInfo]:
    found = [
        ParamInfo("_id", "token", "Logical id."),
        ParamInfo("_lastUpdated", "date", "When the current version was written."),
    ]
    found += [
        ParamInfo(sp.name, FHIR_TYPE[sp.kind], _NOTES[sp.kind])
        for sp in SEARCH_PARAMS.get(resource_type, ())
    ]
    return found


SEARCH_NOTES = (
    "Search results: _count (0 for the total only), _summary=count, _total "
    "(accurate, estimate, none), _elements (top-level elements), _sort (several keys, - for "
    "descending; see each type), _include and _revinclude (one level; :iterate refused unless "
    "handling=lenient; types the caller may not read are left out with a warning). Paging "
    "links are sealed tokens; unsorted searches page by id and sorted ones from a snapshot "
    "taken on the first page, so pages stay stable under writes (a sorted search may match "
    "at most 10,000 resources). Unknown parameters and modifiers are refused (400) unless "
    "handling=lenient."
)


def sort_keys(resource_type: str) -> tuple[str, ...]:
    return sortable(resource_type)


def search_includes(resource_type: str) -> tuple[str, ...]:
    return includes(resource_type)


def search_revincludes(resource_type: str) -> tuple[str, ...]:
    return revincludes(resource_type)
