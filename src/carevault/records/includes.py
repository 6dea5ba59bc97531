"""`_include` and `_revinclude`: the resources a page's matches refer to, or that refer to
them, found through search_refs (ids only) before anything is decrypted."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select

from carevault.records.models import search_refs
from carevault.records.shaping import Include

MAX_INCLUDED = 1_000
"""Included resources per page at most; more would make one page unboundedly large."""


@dataclass(frozen=True)
class Wanted:
    """What to include: (type, id) pairs the actor may read, and types left out for lack of it."""

    keys: list[tuple[str, str]]
    withheld: tuple[str, ...]
    truncated: bool = False


def wanted(
    conn: Connection,
    tenant_id: str,
    rtype: str,
    page_ids: Sequence[str],
    specs: Sequence[Include],
    readable: Collection[str],
) -> Wanted:
    seen = {(rtype, rid) for rid in page_ids}
    keys: list[tuple[str, str]] = []
    withheld: dict[str, None] = {}
    if not page_ids:
        return Wanted([], ())
    truncated = False
    for spec in specs:
        referenced = _referenced(conn, tenant_id, rtype, page_ids, spec)
        truncated = truncated or len(referenced) > MAX_INCLUDED
        for key in referenced:
            if key in seen:
                continue
            if key[0] not in readable:
                withheld[key[0]] = None
                continue
            seen.add(key)
            keys.append(key)
    truncated = truncated or len(keys) > MAX_INCLUDED
    return Wanted(keys[:MAX_INCLUDED], tuple(withheld), truncated)


def _referenced(
    conn: Connection, tenant_id: str, rtype: str, page_ids: Sequence[str], spec: Include
) -> list[tuple[str, str]]:
    r = search_refs
    if spec.reverse:
        statement = select(r.c.resource_type, r.c.resource_id).where(
            r.c.tenant_id == tenant_id,
            r.c.resource_type == spec.source_type,
            r.c.param == spec.param.name,
            r.c.target_type == rtype,
            r.c.target_id.in_(page_ids),
        )
    else:
        statement = select(r.c.target_type, r.c.target_id).where(
            r.c.tenant_id == tenant_id,
            r.c.resource_type == rtype,
            r.c.resource_id.in_(page_ids),
            r.c.param == spec.param.name,
        )
        if spec.target_type is not None:
            statement = statement.where(r.c.target_type == spec.target_type)
    rows = conn.execute(statement.distinct().limit(MAX_INCLUDED + 1)).all()
    return sorted((str(row[0]), str(row[1])) for row in rows)
