"""Bulk writes for import: a batch of resources of one type, under their own ids.

The same rows as `RecordStore` writes one by one (a sealed version, the current row, the
search-index rows), but a fixed number of statements per batch: one query for the
current versions, one for the references that must resolve, then one insert per table
(COPY on PostgreSQL, executemany on SQLite).
Called by the importer inside one transaction with the batch's audit entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, bindparam, select, tuple_

from carevault.crypto.vault import Vault
from carevault.errors import Unprocessable
from carevault.records import indexing, sealing, statements
from carevault.records.models import resources as cur
from carevault.records.params import SUPPORTED_TYPES
from carevault.records.store import Version, compartment_of

Key = tuple[str, str]
"""(resource type, id)."""

_LIVE_CHUNK = 400
"""Keys per reference query: well under SQLite's and psycopg's bind-parameter limits."""
_INDEX_KINDS = ("tokens", "dates", "refs", "quantities")
if {f.name for f in fields(indexing.IndexRows)} != set(_INDEX_KINDS):
    # A new kind of index row must be written here too, or imported resources miss a search.
    raise ImportError("records.bulk_write does not write every kind of search-index row")

_CURRENT_OF = select(cur.c.resource_id, cur.c.version_id).where(
    cur.c.tenant_id == bindparam("tenant_id"),
    cur.c.resource_type == bindparam("rtype"),
    cur.c.resource_id.in_(bindparam("rids", expanding=True)),
)


class _DriverStatement:
    """A fixed insert run by the driver: COPY on PostgreSQL (one stream per table and batch,
    not a statement per row), executemany of a statement compiled once elsewhere. Either way
    SQLAlchemy's per-row parameter processing, which costs more than the insert, is skipped."""

    def __init__(self, statement: Any) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, Callable[[dict[str, Any]], Any] | None]] = {}
        table = statement.table
        self._columns = tuple(column.name for column in table.columns)
        self._copy = f"COPY {table.name} ({', '.join(self._columns)}) FROM STDIN"

    def run(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        dialect = conn.dialect
        if dialect.name == "postgresql":
            self._run_copy(conn, rows)
            return
        found = self._compiled.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            # qmark drivers (sqlite3) take tuples in the statement's order; others take dicts
            getter = itemgetter(*compiled.positiontup) if compiled.positional else None
            found = self._compiled[dialect.name] = (str(compiled), getter)
        sql, order = found
        conn.exec_driver_sql(sql, rows if order is None else [order(row) for row in rows])

    def _run_copy(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        getter = itemgetter(*self._columns)
        # The driver's own connection, inside the transaction SQLAlchemy opened on it.
        driver: Any = conn.connection.driver_connection
        with driver.cursor() as cursor, cursor.copy(self._copy) as copy:
            for row in rows:
                copy.write_row(getter(row))


_INSERT_VERSION = _DriverStatement(statements.INSERT_VERSION)
_INSERT_CURRENT = _DriverStatement(statements.INSERT_CURRENT)
_INSERT_INDEX = {kind: _DriverStatement(statements.INSERT_INDEX[kind]) for kind in _INDEX_KINDS}


class RowRefused(Unprocessable):
    """One resource of a batch cannot be written; `index` is its place in the batch."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


@dataclass(frozen=True)
class References:
    """Which references a batch may rely on without asking the database."""

    known: set[Key]
    """Resources this import writes (or has written): they resolve by construction. The
    importer takes out what it could not write after all."""
    keep_unresolved: bool = False
    """Let references to resources absent from the tenant stand (the operator's choice);
    the patient whose compartment holds a resource must exist all the same."""


def live_keys(conn: Connection, tenant_id: str, keys: Iterable[Key]) -> set[Key]:
    """The keys that name a live resource of this tenant: one query per few hundred keys."""
    wanted = sorted(set(keys))
    found: set[Key] = set()
    for start in range(0, len(wanted), _LIVE_CHUNK):
        chunk = wanted[start : start + _LIVE_CHUNK]
        rows = conn.execute(
            select(cur.c.resource_type, cur.c.resource_id).where(
                cur.c.tenant_id == tenant_id,
                cur.c.deleted.is_(False),
                tuple_(cur.c.resource_type, cur.c.resource_id).in_(chunk),
            )
        )
        found.update((row.resource_type, row.resource_id) for row in rows)
    return found


class BulkWriter:
    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    def write_batch(
        self,
        conn: Connection,
        tenant_id: str,
        rtype: str,
        bodies: Sequence[dict[str, Any]],
        now: str,
        references: References,
        refs: Sequence[Iterable[Key]] | None = None,
    ) -> list[Version]:
        """Write each body as the next version of its id (version 1 if new); RowRefused
        (nothing written) when one of them cannot be. `refs`: each body's local references
        to served types, when the caller has them already (else they are read here)."""
        rids = [str(body["id"]) for body in bodies]
        if len(set(rids)) != len(rids):
            raise ValueError("a batch names the same resource twice")
        patients = [self._compartment(i, rtype, body) for i, body in enumerate(bodies)]
        if refs is None:
            refs = [[r for r in indexing.references(b) if r[0] in SUPPORTED_TYPES] for b in bodies]
        self._check_references(conn, tenant_id, refs, patients, references)
        found = conn.execute(_CURRENT_OF, {"tenant_id": tenant_id, "rtype": rtype, "rids": rids})
        current: dict[str, int] = {row.resource_id: row.version_id for row in found}
        hasher = self._vault.hasher(tenant_id)
        versions: list[Version] = []
        version_rows: list[dict[str, Any]] = []
        new_rows: list[dict[str, Any]] = []
        updated_rows: list[dict[str, Any]] = []
        index_rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in _INDEX_KINDS}
        for i, (body, rid, patient_id) in enumerate(zip(bodies, rids, patients, strict=True)):
            version_id = current.get(rid, 0) + 1
            kept = sealing.seal(
                self._vault, tenant_id, rtype, rid, version_id, patient_id, body, now
            )
            row = {"tenant_id": tenant_id, "resource_type": rtype, "resource_id": rid,
                   "version_id": version_id, "last_updated": now, "deleted": False,
                   "patient_id": patient_id}  # fmt: skip
            version_rows.append({**row, "key_name": kept.key_name, "sealed": kept.sealed})
            if rid in current:
                updated = {"key_tenant_id": tenant_id, "key_rtype": rtype, "key_rid": rid,
                           "new_version_id": version_id, "new_last_updated": now,
                           "new_deleted": False, "new_patient_id": patient_id}  # fmt: skip
                updated_rows.append(updated)
            else:
                new_rows.append(row)
            self._index(i, rtype, rid, body, hasher, tenant_id, index_rows)
            versions.append(Version(rtype, rid, version_id, now, False, patient_id, None))
        _INSERT_VERSION.run(conn, version_rows)
        if new_rows:
            _INSERT_CURRENT.run(conn, new_rows)
        if updated_rows:
            conn.execute(statements.UPDATE_CURRENT, updated_rows)
            keys = [{"tenant_id": tenant_id, "rtype": rtype, "rid": r} for r in current]
            for statement in statements.CLEAR_INDEX:
                conn.execute(statement, keys)
        for kind, rows in index_rows.items():
            if rows:
                _INSERT_INDEX[kind].run(conn, rows)
        return versions

    @staticmethod
    def _compartment(index: int, rtype: str, body: dict[str, Any]) -> str | None:
        try:
            return compartment_of(rtype, str(body["id"]), body)
        except Unprocessable as exc:
            raise RowRefused(index, exc.message) from None

    @staticmethod
    def _check_references(
        conn: Connection,
        tenant_id: str,
        refs: Sequence[Iterable[Key]],
        patients: Sequence[str | None],
        references: References,
    ) -> None:
        """One query for the batch: every reference outside the import must be live here."""
        needed: list[list[Key]] = []
        for body_refs, patient_id in zip(refs, patients, strict=True):
            if references.keep_unresolved:
                checked: Iterable[Key] = [("Patient", patient_id)] if patient_id else []
            else:
                checked = body_refs
            needed.append([ref for ref in checked if ref not in references.known])
        live = live_keys(conn, tenant_id, (ref for wanted in needed for ref in wanted))
        for index, wanted in enumerate(needed):
            for rtype, _ in (ref for ref in wanted if ref not in live):
                raise RowRefused(index, f"a reference to {rtype} does not resolve to a resource")

    @staticmethod
    def _index(
        index: int,
        rtype: str,
        rid: str,
        stored: dict[str, Any],
        hasher: Any,
        tenant_id: str,
        out: dict[str, list[dict[str, Any]]],
    ) -> None:
        try:
            rows = indexing.index(rtype, stored, hasher)
        except ValueError:
            raise RowRefused(index, "a date element is not a valid FHIR date") from None
        base = {"tenant_id": tenant_id, "resource_type": rtype, "resource_id": rid}
        out["tokens"].extend(
            {**base, "param": p, "system": s[:255], "code": c[:255]} for p, s, c in rows.tokens
        )
        out["dates"].extend({**base, "param": p, "low": lo, "high": hi} for p, lo, hi in rows.dates)
        out["refs"].extend(
            {**base, "param": p, "target_type": t, "target_id": i} for p, t, i in rows.refs
        )
        out["quantities"].extend(
            {**base, "param": p, "system": s[:255], "code": c[:255], "low": lo, "high": hi}
            for p, s, c, lo, hi in rows.quantities
        )
