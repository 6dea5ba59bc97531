"""Bulk reads for export: the current versions of one type, in keyset batches.

One query per batch (the current row joined to its version), scoped in SQL to the
tenant and, when asked, to some compartments; deletions are left out. Each batch is
decrypted here, like every store read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, bindparam, func, select

from carevault.crypto.vault import Vault
from carevault.records import sealing
from carevault.records.models import resource_versions as rv
from carevault.records.models import resources as cur
from carevault.records.params import IN_COMPARTMENT
from carevault.records.statements import CURRENT_VERSION_JOIN
from carevault.records.store import Scope, Version

_PATIENT_CHUNK = 10_000
"""Patients per IN list: SQLite and PostgreSQL both cap the bind parameters of a statement."""


@dataclass(frozen=True)
class BulkQuery:
    """What to read of one type: all of it in scope, or some compartments, since an instant."""

    resource_type: str
    patient_ids: frozenset[str] | None = None
    """None: every resource in scope; else only these patients' compartments."""
    since: str | None = None
    """Only resources whose current version was written after this instant (FHIR instant)."""


def effective_patients(scope: Scope, query: BulkQuery) -> frozenset[str] | None:
    """The compartments to read: the actor's reach intersected with the ones asked for."""
    if query.resource_type not in IN_COMPARTMENT:
        return None
    wanted = query.patient_ids
    if scope.patient_ids is not None:
        wanted = scope.patient_ids if wanted is None else wanted & scope.patient_ids
    return wanted


class BulkReader:
    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def count(self, conn: Connection, scope: Scope, query: BulkQuery) -> int:
        """How many live resources the query will read (no decryption)."""
        patients = effective_patients(scope, query)
        total = 0
        for chunk in _chunks(patients):
            statement = _where(select(func.count()).select_from(cur), scope, query, chunk, None)
            total += int(conn.execute(statement, _params(scope, query, chunk, None)).scalar_one())
        return total

    def batch(
        self, conn: Connection, scope: Scope, query: BulkQuery, *, after: str | None, limit: int
    ) -> list[Version]:
        """The next `limit` live resources by id after `after`, decrypted."""
        patients = effective_patients(scope, query)
        rows: list[Any] = []
        for chunk in _chunks(patients):
            statement = _where(
                select(rv).join(cur, CURRENT_VERSION_JOIN), scope, query, chunk, after
            )
            statement = statement.order_by(cur.c.resource_id).limit(limit)
            rows.extend(conn.execute(statement, _params(scope, query, chunk, after)).all())
        if len(rows) > limit:  # several patient chunks: merge their keysets
            rows = sorted(rows, key=lambda r: str(r.resource_id))[:limit]
        return [sealing.open_version(self._vault, scope.tenant_id, row) for row in rows]


def _chunks(patients: frozenset[str] | None) -> list[list[str] | None]:
    if patients is None:
        return [None]
    ordered = sorted(patients)
    return [ordered[i : i + _PATIENT_CHUNK] for i in range(0, len(ordered), _PATIENT_CHUNK)]


def _where(
    statement: Select[Any],
    scope: Scope,
    query: BulkQuery,
    patients: list[str] | None,
    after: str | None,
) -> Select[Any]:
    statement = statement.where(
        cur.c.tenant_id == bindparam("tenant_id"),
        cur.c.resource_type == bindparam("rtype"),
        cur.c.deleted.is_(False),
    )
    if patients is not None:
        statement = statement.where(cur.c.patient_id.in_(bindparam("patients", expanding=True)))
    if query.since is not None:
        statement = statement.where(cur.c.last_updated > bindparam("since"))
    if after is not None:
        statement = statement.where(cur.c.resource_id > bindparam("after"))
    return statement


def _params(
    scope: Scope, query: BulkQuery, patients: list[str] | None, after: str | None
) -> dict[str, Any]:
    params: dict[str, Any] = {"tenant_id": scope.tenant_id, "rtype": query.resource_type}
    if patients is not None:
        params["patients"] = patients
    if query.since is not None:
        params["since"] = query.since
    if after is not None:
        params["after"] = after
    return params
