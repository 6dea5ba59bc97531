"""History at type level: every version of a type's resources, newest first, a page at a time.

Scoped in SQL like every other read: a compartment user's query carries the patients
whose compartments they may reach, so other patients' versions never leave the database.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, exists, func, or_, select, tuple_
from sqlalchemy.sql import ColumnElement

from carevault.records.models import hidden_resources
from carevault.records.models import resource_versions as rv
from carevault.records.params import IN_COMPARTMENT
from carevault.records.store import RecordStore, Scope, Version

HistoryCursor = tuple[str, str, int]
"""(last_updated, resource_id, version_id) of the last version on the page before."""


@dataclass(frozen=True)
class HistoryPage:
    versions: list[Version]
    total: int
    next_cursor: HistoryCursor | None


def type_history(
    store: RecordStore,
    conn: Connection,
    scope: Scope,
    rtype: str,
    *,
    since: str | None,
    count: int,
    after: HistoryCursor | None,
) -> HistoryPage:
    """One page of the type's versions the scope reaches, newest first.

    The order (last_updated, resource_id, version_id) descending is total, so a cursor
    keeps pages stable while new versions are written: those sort before the cursor.
    """
    where: list[ColumnElement[bool]] = [
        rv.c.tenant_id == scope.tenant_id,
        rv.c.resource_type == rtype,
    ]
    if scope.patient_ids is not None and rtype in IN_COMPARTMENT:
        where.append(rv.c.patient_id.in_(sorted(scope.patient_ids)))
    if since is not None:
        where.append(rv.c.last_updated >= since)
    hidden = hidden_resources.c
    where.append(
        ~exists().where(
            hidden.tenant_id == rv.c.tenant_id,
            hidden.resource_type == rv.c.resource_type,
            hidden.resource_id == rv.c.resource_id,
        )
    )  # soft-deleted resources are absent from every listing, as from reads
    total = conn.execute(select(func.count()).select_from(rv).where(*where)).scalar_one()
    if count == 0:
        return HistoryPage([], int(total), None)
    if after is not None:
        where.append(_before(after))
    # Order the keys first, then fetch those rows: the sort never carries the sealed bodies.
    order = (rv.c.last_updated.desc(), rv.c.resource_id.desc(), rv.c.version_id.desc())
    keys = conn.execute(
        select(rv.c.resource_id, rv.c.version_id).where(*where).order_by(*order).limit(count + 1)
    ).all()
    more = len(keys) > count
    wanted = {(k.resource_id, k.version_id): n for n, k in enumerate(keys[:count])}
    found = (
        conn.execute(
            select(rv).where(
                rv.c.tenant_id == scope.tenant_id,
                rv.c.resource_type == rtype,
                tuple_(rv.c.resource_id, rv.c.version_id).in_(list(wanted)),
            )
        ).all()
        if wanted
        else []
    )
    rows = sorted(found, key=lambda row: wanted[(row.resource_id, row.version_id)])
    versions = [store.open_row(scope.tenant_id, row) for row in rows]
    last = versions[-1] if more else None
    cursor = (last.last_updated, last.resource_id, last.version_id) if last else None
    return HistoryPage(versions, int(total), cursor)


def _before(cursor: HistoryCursor) -> ColumnElement[bool]:
    updated, rid, vid = cursor
    return or_(
        rv.c.last_updated < updated,
        and_(rv.c.last_updated == updated, rv.c.resource_id < rid),
        and_(rv.c.last_updated == updated, rv.c.resource_id == rid, rv.c.version_id < vid),
    )
