"""The store's fixed statements, built once with bind parameters.

Building a SQLAlchemy statement per call costs several times what SQLite takes to
run it; these are compiled once and cached, so a read spends its time reading.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, bindparam, delete, insert, select, update

from carevault.records.models import resource_versions as rv
from carevault.records.models import resources as cur
from carevault.records.models import search_dates, search_quantities, search_refs, search_tokens

_VERSION_KEY = and_(
    rv.c.tenant_id == bindparam("tenant_id"),
    rv.c.resource_type == bindparam("rtype"),
    rv.c.resource_id == bindparam("rid"),
)
_CURRENT_KEY = and_(
    cur.c.tenant_id == bindparam("tenant_id"),
    cur.c.resource_type == bindparam("rtype"),
    cur.c.resource_id == bindparam("rid"),
)
_IN_COMPARTMENTS = rv.c.patient_id.in_(bindparam("patient_ids", expanding=True))
_CURRENT_IN_COMPARTMENTS = cur.c.patient_id.in_(bindparam("patient_ids", expanding=True))

CURRENT_VERSION_JOIN = and_(
    cur.c.tenant_id == rv.c.tenant_id,
    cur.c.resource_type == rv.c.resource_type,
    cur.c.resource_id == rv.c.resource_id,
    cur.c.version_id == rv.c.version_id,
)


def _pair(statement: Select[Any], scoped: ColumnElement[bool]) -> tuple[Select[Any], Select[Any]]:
    """The statement for a tenant-wide actor, and the same limited to some compartments."""
    return statement, statement.where(scoped)


READ = _pair(select(rv).join(cur, CURRENT_VERSION_JOIN).where(_VERSION_KEY), _IN_COMPARTMENTS)
VREAD = _pair(
    select(rv).where(_VERSION_KEY, rv.c.version_id == bindparam("version_id")), _IN_COMPARTMENTS
)
HISTORY = (
    select(rv).where(_VERSION_KEY).order_by(rv.c.version_id.desc()),
    select(rv).where(_VERSION_KEY, _IN_COMPARTMENTS).order_by(rv.c.version_id.desc()),
)
CURRENT = _pair(select(cur).where(_CURRENT_KEY), _CURRENT_IN_COMPARTMENTS)
EXISTS = select(cur.c.resource_id).where(_CURRENT_KEY)
LIVE = select(cur.c.resource_id).where(_CURRENT_KEY, cur.c.deleted.is_(False))

INSERT_VERSION = insert(rv)
INSERT_CURRENT = insert(cur)
UPDATE_CURRENT = (
    update(cur)
    # bind names differ from column names: an UPDATE reserves those for its SET clause
    .where(
        cur.c.tenant_id == bindparam("key_tenant_id"),
        cur.c.resource_type == bindparam("key_rtype"),
        cur.c.resource_id == bindparam("key_rid"),
    )
    .values(
        version_id=bindparam("new_version_id"),
        last_updated=bindparam("new_last_updated"),
        deleted=bindparam("new_deleted"),
        patient_id=bindparam("new_patient_id"),
    )
)
INSERT_INDEX = {
    "tokens": insert(search_tokens),
    "dates": insert(search_dates),
    "refs": insert(search_refs),
    "quantities": insert(search_quantities),
}
CLEAR_INDEX = tuple(
    delete(t).where(
        t.c.tenant_id == bindparam("tenant_id"),
        t.c.resource_type == bindparam("rtype"),
        t.c.resource_id == bindparam("rid"),
    )
    for t in (search_tokens, search_dates, search_refs, search_quantities)
)
