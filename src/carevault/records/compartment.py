"""A patient's compartment, a page at a time (Patient/$everything), and what it references.

Scoped in SQL: the query names the tenant, the patient and the actor's compartments,
so a patient user asking for someone else's compartment gets nothing from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
from sqlalchemy import Connection, and_, func, or_, select
from sqlalchemy.sql import ColumnElement

from carevault.records import indexing
from carevault.records.models import resource_versions, resources
from carevault.records.statements import CURRENT_VERSION_JOIN
from carevault.records.store import RecordStore, Scope, Version

CompartmentCursor = tuple[str, str]
"""(resource_type, resource_id) of the last entry on the page before."""


@dataclass(frozen=True)
class CompartmentPage:
    versions: list[Version]
    total: int
    next_cursor: CompartmentCursor | None


def compartment_page(
    store: RecordStore,
    conn: Connection,
    scope: Scope,
    patient_id: str,
    types: Sequence[str],
    *,
    since: str | None,
    count: int,
    after: CompartmentCursor | None,
) -> CompartmentPage:
    """Live resources of these types in the patient's compartment, by type then id."""
    if not types or (scope.patient_ids is not None and patient_id not in scope.patient_ids):
        return CompartmentPage([], 0, None)
    where: list[ColumnElement[bool]] = [
        resources.c.tenant_id == scope.tenant_id,
        resources.c.patient_id == patient_id,
        resources.c.resource_type.in_(sorted(types)),
        resources.c.deleted.is_(False),
    ]
    if scope.patient_ids is not None:
        where.append(resources.c.patient_id.in_(sorted(scope.patient_ids)))
    if since is not None:
        where.append(resources.c.last_updated >= since)
    total = conn.execute(select(func.count()).select_from(resources).where(*where)).scalar_one()
    if count == 0:
        return CompartmentPage([], int(total), None)
    if after is not None:
        after_type, after_id = after
        where.append(
            or_(
                resources.c.resource_type > after_type,
                and_(resources.c.resource_type == after_type, resources.c.resource_id > after_id),
            )
        )
    rows = conn.execute(
        select(resource_versions)
        .join(resources, CURRENT_VERSION_JOIN)
        .where(*where)
        .order_by(resources.c.resource_type, resources.c.resource_id)
        .limit(count + 1)
    ).all()
    more = len(rows) > count
    versions = [store.open_row(scope.tenant_id, row) for row in rows[:count]]
    last = versions[-1] if more else None
    return CompartmentPage(
        versions, int(total), (last.resource_type, last.resource_id) if last else None
    )


def referenced(versions: Iterable[Version], types: Iterable[str]) -> list[tuple[str, str]]:
    """The distinct local references (type, id) to these types, in order of appearance."""
    wanted = frozenset(types)
    found: dict[tuple[str, str], None] = {}
    for version in versions:
        if version.body is None:
            continue
        for ref in indexing.references(orjson.loads(version.body)):
            if ref[0] in wanted:
                found[ref] = None
    return list(found)
