"""Conditional references and conditional interactions: `Type?params` names whatever
one resource matches the search (as Synthea's `Practitioner?identifier=…` does)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from sqlalchemy import Connection

from carevault.errors import Invalid, PreconditionFailed, Unprocessable
from carevault.records.params import SUPPORTED_TYPES
from carevault.records.store import RecordStore, Scope

Query = tuple[tuple[str, str], ...]


def parse(reference: str) -> tuple[str, Query] | None:
    """(type, search) of a conditional reference `Type?a=b`, or None if it is not one."""
    rtype, sep, query = reference.partition("?")
    if not sep:
        return None
    if rtype not in SUPPORTED_TYPES:
        raise Invalid("a conditional reference names a resource type that is not served here")
    params = tuple(parse_qsl(query, keep_blank_values=True))
    if not params or any(name.startswith("_") and name != "_id" for name, _ in params):
        raise Invalid("a conditional reference needs search parameters (Type?name=value)")
    return rtype, params


def matching_ids(
    conn: Connection, store: RecordStore, scope: Scope, rtype: str, params: Query, limit: int = 2
) -> list[str]:
    """Ids of up to `limit` live resources the search matches, within the actor's reach."""
    return store.match_ids(conn, scope, rtype, params, limit=limit)


def resolve(conn: Connection, store: RecordStore, scope: Scope, rtype: str, params: Query) -> str:
    """The id of the one resource the search matches; a clear refusal for none or several."""
    found = matching_ids(conn, store, scope, rtype, params)
    if not found:
        raise Unprocessable(f"a conditional reference to {rtype} matches no resource")
    if len(found) > 1:
        raise PreconditionFailed(f"a conditional reference to {rtype} matches several resources")
    return found[0]
