"""The encrypted, versioned FHIR store. Every query carries the tenant and the scope.

Called only by the gate (privacy/), which decides first and audits after.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, select

from carevault.crypto.vault import Vault
from carevault.errors import Conflict, Invalid, PreconditionFailed, Unprocessable
from carevault.records import indexing, sealing, search, searching, statements
from carevault.records.models import resources
from carevault.records.params import COMPARTMENT_PATHS, IN_COMPARTMENT, SUPPORTED_TYPES
from carevault.records.sealing import Version as Version  # the store's unit, re-exported
from carevault.records.searching import Cursor, Page

MAX_ID_LENGTH = 64
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.")


@dataclass(frozen=True)
class Scope:
    """Where an actor may reach: a tenant, and optionally only some patients' compartments."""

    tenant_id: str
    patient_ids: frozenset[str] | None = None  # None: the whole tenant

    def admits(self, resource_type: str, patient_id: str | None) -> bool:
        if self.patient_ids is None or resource_type not in IN_COMPARTMENT:
            return True
        return patient_id in self.patient_ids


def valid_id(resource_id: str) -> bool:
    return 0 < len(resource_id) <= MAX_ID_LENGTH and set(resource_id) <= _ID_CHARS


class RecordStore:
    def __init__(self, vault: Vault) -> None:
        self._vault = vault

    # -- reads -----------------------------------------------------------------

    def read(self, conn: Connection, scope: Scope, rtype: str, rid: str) -> Version | None:
        statement, params = self._keyed(statements.READ, scope, rtype, rid)
        row = conn.execute(statement, params).one_or_none()
        return self.open_row(scope.tenant_id, row) if row is not None else None

    def vread(
        self, conn: Connection, scope: Scope, rtype: str, rid: str, vid: int
    ) -> Version | None:
        statement, params = self._keyed(statements.VREAD, scope, rtype, rid)
        row = conn.execute(statement, {**params, "version_id": vid}).one_or_none()
        return self.open_row(scope.tenant_id, row) if row is not None else None

    def history(self, conn: Connection, scope: Scope, rtype: str, rid: str) -> list[Version]:
        statement, params = self._keyed(statements.HISTORY, scope, rtype, rid)
        return [self.open_row(scope.tenant_id, row) for row in conn.execute(statement, params)]

    def search(
        self,
        conn: Connection,
        scope: Scope,
        rtype: str,
        params: Sequence[tuple[str, str]],
        *,
        after: str | None,
        default_count: int,
        max_count: int,
        lenient: bool,
        cursor: Cursor | None = None,
        readable: Collection[str] | None = None,
    ) -> Page:
        """One page of a search (records/searching.py); `readable`: types the actor may read,
        for includes and chains (None: all)."""
        request = searching.Request(
            params, after, cursor, default_count, max_count, lenient, readable
        )

        def opener(row: Row[Any]) -> Version:
            return self.open_row(scope.tenant_id, row)

        return searching.run(conn, self._vault, scope, rtype, request, opener)

    def match_ids(
        self,
        conn: Connection,
        scope: Scope,
        rtype: str,
        params: Sequence[tuple[str, str]],
        *,
        limit: int,
    ) -> list[str]:
        """Ids of live resources a search matches (no decryption): conditional interactions."""
        criteria = search.build(
            scope.tenant_id,
            rtype,
            params,
            self._vault.hasher(scope.tenant_id),
            default_count=limit,
            max_count=limit,
            lenient=False,
        )
        rows = conn.execute(
            select(resources.c.resource_id)
            .where(
                resources.c.tenant_id == scope.tenant_id,
                resources.c.resource_type == rtype,
                resources.c.deleted.is_(False),
                *self._current_scope(scope, rtype),
                *criteria.conditions,
            )
            .order_by(resources.c.resource_id)
            .limit(limit)
        )
        return [row.resource_id for row in rows]

    # -- writes ----------------------------------------------------------------

    def create(
        self, conn: Connection, scope: Scope, rtype: str, body: dict[str, Any], now: str
    ) -> Version:
        rid = str(uuid.uuid4())
        return self._write(conn, scope, rtype, rid, body, now, version_id=1)

    def update(
        self,
        conn: Connection,
        scope: Scope,
        rtype: str,
        rid: str,
        body: dict[str, Any],
        now: str,
        *,
        if_match: int | None,
    ) -> tuple[Version, bool]:
        """Write a new version; returns it and whether this created the resource."""
        if not valid_id(rid):
            raise Invalid("resource ids are 1-64 characters of A-Z, a-z, 0-9, '-' and '.'")
        if body.get("id") != rid:
            raise Invalid("the resource's id must match the id in the URL")
        current = self._current(conn, scope, rtype, rid)
        if if_match is not None and (current is None or current.version_id != if_match):
            raise PreconditionFailed("the resource has changed since that version (If-Match)")
        if current is None:
            if self._exists_anywhere(conn, scope.tenant_id, rtype, rid):
                # it exists but this actor may not see it: refuse without saying so
                raise Conflict("that id cannot be used")
            return self._write(conn, scope, rtype, rid, body, now, version_id=1), True
        return self._write(
            conn, scope, rtype, rid, body, now, version_id=current.version_id + 1
        ), False

    def delete(
        self, conn: Connection, scope: Scope, rtype: str, rid: str, now: str
    ) -> Version | None:
        """Write a tombstone version; None if there was nothing (visible) to delete."""
        current = self._current(conn, scope, rtype, rid)
        if current is None or current.deleted:
            return None
        vid = current.version_id + 1
        conn.execute(
            statements.INSERT_VERSION,
            {
                "tenant_id": scope.tenant_id, "resource_type": rtype, "resource_id": rid,
                "version_id": vid, "last_updated": now, "deleted": True,
                "patient_id": current.patient_id, "key_name": sealing.key_name(current.patient_id),
                "sealed": None,
            },
        )  # fmt: skip
        conn.execute(
            statements.UPDATE_CURRENT,
            {"key_tenant_id": scope.tenant_id, "key_rtype": rtype, "key_rid": rid,
             "new_version_id": vid, "new_last_updated": now, "new_deleted": True,
             "new_patient_id": current.patient_id},
        )  # fmt: skip
        self._clear_index(conn, scope.tenant_id, rtype, rid)
        return Version(rtype, rid, vid, now, True, current.patient_id, None)

    # -- internals -------------------------------------------------------------

    def _write(
        self,
        conn: Connection,
        scope: Scope,
        rtype: str,
        rid: str,
        body: dict[str, Any],
        now: str,
        *,
        version_id: int,
    ) -> Version:
        patient_id = compartment_of(rtype, rid, body)
        if not scope.admits(rtype, patient_id):
            raise Unprocessable("the resource must belong to a patient you may act for")
        self._check_references(conn, scope.tenant_id, body)
        kept = sealing.seal(
            self._vault, scope.tenant_id, rtype, rid, version_id, patient_id, body, now
        )
        row = {"tenant_id": scope.tenant_id, "resource_type": rtype, "resource_id": rid,
               "version_id": version_id, "last_updated": now, "deleted": False,
               "patient_id": patient_id}  # fmt: skip
        conn.execute(
            statements.INSERT_VERSION, {**row, "key_name": kept.key_name, "sealed": kept.sealed}
        )
        if version_id == 1:
            conn.execute(statements.INSERT_CURRENT, row)
        else:
            conn.execute(
                statements.UPDATE_CURRENT,
                {"key_tenant_id": scope.tenant_id, "key_rtype": rtype, "key_rid": rid,
                 "new_version_id": version_id, "new_last_updated": now, "new_deleted": False,
                 "new_patient_id": patient_id},
            )  # fmt: skip
            self._clear_index(conn, scope.tenant_id, rtype, rid)
        self._write_index(conn, scope.tenant_id, rtype, rid, body)
        return Version(rtype, rid, version_id, now, False, patient_id, kept.plaintext)

    def _write_index(
        self, conn: Connection, tenant_id: str, rtype: str, rid: str, body: dict[str, Any]
    ) -> None:
        try:
            rows = indexing.index(rtype, body, self._vault.hasher(tenant_id))
        except ValueError:
            raise Unprocessable("a date element is not a valid FHIR date") from None
        base = {"tenant_id": tenant_id, "resource_type": rtype, "resource_id": rid}
        if rows.tokens:
            conn.execute(
                statements.INSERT_INDEX["tokens"],
                [
                    {**base, "param": p, "system": s[:255], "code": c[:255]}
                    for p, s, c in rows.tokens
                ],
            )
        if rows.dates:
            conn.execute(
                statements.INSERT_INDEX["dates"],
                [{**base, "param": p, "low": lo, "high": hi} for p, lo, hi in rows.dates],
            )
        if rows.refs:
            conn.execute(
                statements.INSERT_INDEX["refs"],
                [{**base, "param": p, "target_type": t, "target_id": i} for p, t, i in rows.refs],
            )
        if rows.quantities:
            conn.execute(
                statements.INSERT_INDEX["quantities"],
                [
                    {**base, "param": p, "system": s[:255], "code": c[:255], "low": lo, "high": hi}
                    for p, s, c, lo, hi in rows.quantities
                ],
            )

    def _clear_index(self, conn: Connection, tenant_id: str, rtype: str, rid: str) -> None:
        for statement in statements.CLEAR_INDEX:
            conn.execute(statement, {"tenant_id": tenant_id, "rtype": rtype, "rid": rid})

    def _check_references(self, conn: Connection, tenant_id: str, body: dict[str, Any]) -> None:
        """Every relative reference to a type we serve must resolve inside this tenant."""
        wanted = {ref for ref in indexing.references(body) if ref[0] in SUPPORTED_TYPES}
        for rtype, rid in wanted:
            key = {"tenant_id": tenant_id, "rtype": rtype, "rid": rid}
            if conn.execute(statements.LIVE, key).first() is None:
                raise Unprocessable(f"a reference to {rtype} does not resolve to a resource here")

    def _current(self, conn: Connection, scope: Scope, rtype: str, rid: str) -> Row[Any] | None:
        statement, params = self._keyed(statements.CURRENT, scope, rtype, rid)
        return conn.execute(statement, params).one_or_none()

    def _exists_anywhere(self, conn: Connection, tenant_id: str, rtype: str, rid: str) -> bool:
        key = {"tenant_id": tenant_id, "rtype": rtype, "rid": rid}
        return conn.execute(statements.EXISTS, key).first() is not None

    def open_row(self, tenant_id: str, row: Row[Any]) -> Version:
        """A stored version row, decrypted (for the store's sibling modules)."""
        return sealing.open_version(self._vault, tenant_id, row)

    @staticmethod
    def _keyed(
        pair: tuple[Any, Any], scope: Scope, rtype: str, rid: str
    ) -> tuple[Any, dict[str, Any]]:
        """The statement for this actor's reach (tenant-wide or some compartments) and its key."""
        params: dict[str, Any] = {"tenant_id": scope.tenant_id, "rtype": rtype, "rid": rid}
        if scope.patient_ids is None or rtype not in IN_COMPARTMENT:
            return pair[0], params
        return pair[1], {**params, "patient_ids": sorted(scope.patient_ids)}

    @staticmethod
    def _current_scope(scope: Scope, rtype: str) -> list[Any]:
        if scope.patient_ids is None or rtype not in IN_COMPARTMENT:
            return []
        return [resources.c.patient_id.in_(sorted(scope.patient_ids))]


def compartment_of(rtype: str, rid: str, body: dict[str, Any]) -> str | None:
    """The patient whose compartment holds this resource.

    The element naming the patient must be a local reference (`Patient/id`): an absolute
    or logical reference there would file a patient's data outside their compartment,
    beyond their key and beyond the tenant wall's reference check. A resource belongs to
    one compartment at most, so naming two patients there is refused.
    """
    if rtype == "Patient":
        return rid
    path = COMPARTMENT_PATHS.get(rtype)
    if path is None:
        return None
    patients: set[str] = set()
    for value in indexing.walk(body, path):
        ref = indexing.relative_reference(value)
        if ref is None:
            if isinstance(value, dict) and "reference" not in value:
                continue  # a participant named only by display or identifier
            raise Unprocessable(f"{rtype}.{path} must be a local reference such as Patient/<id>")
        if ref[0] == "Patient":
            patients.add(ref[1])
    if len(patients) > 1:
        raise Unprocessable(f"{rtype}.{path} names more than one patient")
    return next(iter(patients), None)
