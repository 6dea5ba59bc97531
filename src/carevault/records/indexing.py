"""Turn a resource into search-index rows, by the table in params.py."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from carevault.crypto.hashing import KeyedHasher
from carevault.records import quantities
from carevault.records.dates import parse_range
from carevault.records.normalize import MAX_PREFIX, fold, telecom, trigrams
from carevault.records.params import SEARCH_PARAMS, Kind, SearchParam


@dataclass
class IndexRows:
    tokens: set[tuple[str, str, str]] = field(default_factory=set)  # (param, system, code)
    dates: set[tuple[str, str, str]] = field(default_factory=set)  # (param, low, high)
    refs: set[tuple[str, str, str]] = field(default_factory=set)  # (param, type, id)
    # (param, system, code, low, high)
    quantities: set[tuple[str, str, str, float, float]] = field(default_factory=set)


def walk(node: Any, path: str) -> Iterator[Any]:
    """Values at a dotted path; lists along the way are flattened."""
    head, _, rest = path.partition(".")
    value = node.get(head) if isinstance(node, dict) else None
    if value is None:
        return
    for item in value if isinstance(value, list) else [value]:
        if rest:
            yield from walk(item, rest)
        else:
            yield item


def codings(value: Any) -> Iterator[tuple[str, str]]:
    """(system, code) pairs of a CodeableConcept, Coding, Identifier, code or boolean."""
    if isinstance(value, bool):
        yield "", "true" if value else "false"
    elif isinstance(value, str):
        yield "", value
    elif isinstance(value, dict):
        if "coding" in value:
            for coding in value["coding"] or []:
                yield from codings(coding)
        elif "code" in value:
            yield value.get("system") or "", str(value["code"])
        elif "value" in value:
            yield value.get("system") or "", str(value["value"])


def hash_domain(resource_type: str, param: str, match: str) -> str:
    return f"{resource_type}.{param}.{match}"


def relative_reference(value: Any) -> tuple[str, str] | None:
    """(type, id) of a local reference, `Type/id` or `Type/id/_history/n`; None for any other."""
    ref = value.get("reference") if isinstance(value, dict) else None
    if not isinstance(ref, str) or ":" in ref or ref.startswith("#"):
        return None
    parts = ref.split("/")
    if len(parts) == 4 and parts[2] == "_history" and parts[3]:
        parts = parts[:2]
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return None
    return parts[0], parts[1]


def references(node: Any) -> Iterator[tuple[str, str]]:
    """(type, id) of every local reference anywhere in a resource."""
    if isinstance(node, dict):
        ref = relative_reference(node)
        if ref is not None:
            yield ref
        for value in node.values():
            if isinstance(value, dict | list):
                yield from references(value)
    elif isinstance(node, list):
        for item in node:
            yield from references(item)


def index(resource_type: str, resource: dict[str, Any], hasher: KeyedHasher) -> IndexRows:
    rows = IndexRows()
    for sp in SEARCH_PARAMS[resource_type]:
        for path in sp.paths:
            for value in walk(resource, path):
                _index_value(resource_type, sp, value, hasher, rows)
    return rows


def _index_value(
    rtype: str, sp: SearchParam, value: Any, hasher: KeyedHasher, rows: IndexRows
) -> None:
    name = sp.name
    if sp.kind is Kind.TOKEN:
        rows.tokens.update((name, system, code) for system, code in codings(value))
    elif sp.kind is Kind.IDENTIFIER:
        domain = hash_domain(rtype, name, "token")
        for system, code in codings(value):
            rows.tokens.add((name, "", hasher.digest(domain, f"{system}|{code}")))
            rows.tokens.add((name, "", hasher.digest(domain, f"*|{code}")))
    elif sp.kind is Kind.TELECOM:
        wanted = isinstance(value, dict) and value.get("value")
        if wanted and (sp.telecom_system is None or value.get("system") == sp.telecom_system):
            digest = hasher.digest(hash_domain(rtype, name, "token"), telecom(value["value"]))
            rows.tokens.add((name, "", digest))
    elif sp.kind is Kind.STRING:
        if isinstance(value, str) and value.strip():
            folded = fold(value)[:MAX_PREFIX]
            prefix_domain = hash_domain(rtype, name, "prefix")
            for end in range(1, len(folded) + 1):
                rows.tokens.add((name, "", hasher.digest(prefix_domain, folded[:end])))
            exact = hasher.digest(hash_domain(rtype, name, "exact"), value)
            rows.tokens.add((name, "", exact))
            # :contains — every trigram, keyed-hashed like the prefixes (never in the clear)
            trigram_domain = hash_domain(rtype, name, "trigram")
            for gram in trigrams(fold(value)):
                rows.tokens.add((name, "", hasher.digest(trigram_domain, gram)))
    elif sp.kind is Kind.DATE:
        for low, high in _date_ranges(value):
            rows.dates.add((name, low, high))
    elif sp.kind is Kind.BIRTHDATE:
        if isinstance(value, str) and len(value) >= 4:
            # The year alone, not a range: "1980-01-01T…" would be a full birth date in clear.
            rows.dates.add((name, value[:4], value[:4]))
            domain = hash_domain(rtype, name, "token")
            for part in {value[:7], value[:10]} - {value[:4]}:
                rows.tokens.add((name, "", hasher.digest(domain, part)))
    elif sp.kind is Kind.REFERENCE:
        ref = relative_reference(value)
        if ref is not None and (not sp.targets or ref[0] in sp.targets):
            rows.refs.add((name, ref[0], ref[1]))
    elif sp.kind is Kind.QUANTITY:
        for system, code, q_low, q_high in quantities.index_rows(value):
            rows.quantities.add((name, system, code, q_low, q_high))


def _date_ranges(value: Any) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        low, high, _ = parse_range(value)
        yield low, high
    elif isinstance(value, dict) and ("start" in value or "end" in value):  # a Period
        low = parse_range(value["start"])[0] if value.get("start") else "0001-01-01T00:00:00.000000"
        high = parse_range(value["end"])[1] if value.get("end") else "9999-12-31T23:59:59.999999"
        yield low, high
