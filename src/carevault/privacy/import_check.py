"""The import's first pass over each resource: parse, validate, and note what it declares and
what it references. Pure functions of the raw bytes, so they run in worker processes.

Reasons name elements and rules, never values: they are printed and may be logged.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from carevault.errors import CareVaultError
from carevault.records import conditional, indexing, validation
from carevault.records.params import SEARCH_PARAMS, SUPPORTED_TYPES, Kind
from carevault.records.store import compartment_of, valid_id

Key = tuple[str, str]
_DATE_PATHS = {
    rtype: tuple(path for sp in params if sp.kind is Kind.DATE for path in sp.paths)
    for rtype, params in SEARCH_PARAMS.items()
}
_MAX_ISSUES_SHOWN = 3


@dataclass(frozen=True, slots=True)
class Checked:
    position: int
    digest: bytes
    """Of the raw bytes: the second pass must read what the first one checked."""
    rtype: str | None = None
    rid: str | None = None
    error: str | None = None
    refs: tuple[Key, ...] = ()
    """Relative references to served types."""
    conditionals: tuple[str, ...] = ()
    """Conditional references (`Type?params`), resolved between the passes."""
    identifiers: tuple[tuple[str, str], ...] = ()
    """(system, value) of its identifiers: conditional references may name it by them."""
    patient_id: str | None = None


def digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


def check_items(items: list[tuple[int, bytes]]) -> list[Checked]:
    """Check a chunk of (position, raw JSON) items (in a worker process, or in-process)."""
    return [check(position, raw) for position, raw in items]


def check(position: int, raw: bytes) -> Checked:
    sealed = digest(raw)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return Checked(position, sealed, error="not valid JSON")
    if not isinstance(body, dict):
        return Checked(position, sealed, error="not a FHIR resource (a JSON object)")
    rtype, rid = body.get("resourceType"), body.get("id")
    if not isinstance(rtype, str) or rtype not in SUPPORTED_TYPES:
        return Checked(position, sealed, error="resourceType is missing or not a type served here")
    if not isinstance(rid, str) or not valid_id(rid):
        return Checked(
            position,
            sealed,
            rtype,
            error="the resource needs an id of 1-64 characters A-Z a-z 0-9 - . (ids are kept)",
        )
    try:
        validation.validate(rtype, body)
        patient_id = compartment_of(rtype, rid, body)
        _read_dates(rtype, body)
        refs, conditionals = _references(body)
    except CareVaultError as exc:
        return Checked(position, sealed, rtype, rid, error=_reason(exc))
    except ValueError:
        return Checked(position, sealed, rtype, rid, error="a date element is not a valid date")
    return Checked(
        position, sealed, rtype, rid, None, refs, conditionals, _identifiers(body), patient_id
    )


def _read_dates(rtype: str, body: dict[str, Any]) -> None:
    """Read every date the search index will read (ValueError if one cannot be), so that
    writing never meets a date the checks let through."""
    for path in _DATE_PATHS.get(rtype, ()):
        for value in indexing.walk(body, path):
            for _ in indexing._date_ranges(value):
                pass


def _reason(exc: CareVaultError) -> str:
    shown = [f"{where}: {what}" for where, what in exc.issues[:_MAX_ISSUES_SHOWN]]
    more = len(exc.issues) - len(shown)
    tail = f" (+{more} more)" if more > 0 else ""
    return f"{exc.message}: {'; '.join(shown)}{tail}" if shown else exc.message


def _references(body: dict[str, Any]) -> tuple[tuple[Key, ...], tuple[str, ...]]:
    """Its local references to served types, and its conditional references (`Type?params`;
    a malformed one raises Invalid), in one walk over the resource."""
    refs: set[Key] = set()
    conditionals: set[str] = set()
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            reference = node.get("reference")
            if isinstance(reference, str):
                if "?" in reference and "/" not in reference.partition("?")[0]:
                    conditional.parse(reference)
                    conditionals.add(reference)
                elif (local := indexing.relative_reference(node)) and local[0] in SUPPORTED_TYPES:
                    refs.add(local)
            stack.extend(v for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend(v for v in node if isinstance(v, dict | list))
    return tuple(sorted(refs)), tuple(sorted(conditionals))


def _identifiers(body: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    found = []
    for identifier in body.get("identifier") or []:
        if isinstance(identifier, dict) and isinstance(identifier.get("value"), str):
            found.append((str(identifier.get("system") or ""), identifier["value"]))
    return tuple(found)
