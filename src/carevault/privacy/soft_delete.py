"""Soft delete: a patient (or one resource) hidden from every screen and function, but kept.

How it is honoured, in two places that together cover every path out of the gate:

- sets (search, `_include`, `$everything`, exports, conditional matches, care-team reach,
  reference checks) already keep to live rows in SQL (`resources.deleted = false`): hiding
  marks the current rows deleted *without* writing a tombstone version, so the sealed
  versions stay as they were and undoing it is a flag flip;
- keyed access (read, vread, history, update, delete by id) goes through `HidingStore`,
  which answers "not found" for a hidden resource: a soft-deleted patient is a plain 404,
  exactly like one that never existed. The gate installs it once (`honour`, called from
  `Gate.__init__`): the one gate change.

The flag itself is `hidden_resources` (one row per hidden resource, so undoing a patient's
hiding restores exactly what was hidden). Only the privacy officer and named system actors
hide and restore; both are audited in the same transaction as the change, refusals after.
Known gap: type-level history (`GET /fhir/{type}/_history`) reads versions without the
current row, so it still lists a hidden resource's versions to tenant-wide users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    and_,
    bindparam,
    delete,
    insert,
    select,
    update,
)

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Forbidden, NotFound
from carevault.identity.models import Actor
from carevault.identity.permissions import Role
from carevault.privacy.services import GateServices
from carevault.records.models import hidden_resources, resources
from carevault.records.store import RecordStore, Scope, Version, valid_id

_HIDDEN = select(hidden_resources.c.resource_id).where(
    hidden_resources.c.tenant_id == bindparam("tenant_id"),
    hidden_resources.c.resource_type == bindparam("rtype"),
    hidden_resources.c.resource_id == bindparam("rid"),
)
"""Built once: a keyed read of a live resource pays one primary-key lookup for it."""


def _is_hidden(conn: Connection, tenant_id: str, rtype: str, rid: str) -> bool:
    key = {"tenant_id": tenant_id, "rtype": rtype, "rid": rid}
    return conn.execute(_HIDDEN, key).first() is not None


class HidingStore(RecordStore):
    """The record store, with hidden resources answering "not found" to keyed access."""

    def read(self, conn: Connection, scope: Scope, rtype: str, rid: str) -> Version | None:
        found = super().read(conn, scope, rtype, rid)
        # Only a live version can be a hidden one: tombstones and misses cost no lookup.
        if found is None or found.deleted or not _is_hidden(conn, scope.tenant_id, rtype, rid):
            return found
        return None

    def vread(
        self, conn: Connection, scope: Scope, rtype: str, rid: str, vid: int
    ) -> Version | None:
        found = super().vread(conn, scope, rtype, rid, vid)
        if found is None or not _is_hidden(conn, scope.tenant_id, rtype, rid):
            return found
        return None

    def history(self, conn: Connection, scope: Scope, rtype: str, rid: str) -> list[Version]:
        found = super().history(conn, scope, rtype, rid)
        if not found or not _is_hidden(conn, scope.tenant_id, rtype, rid):
            return found
        return []

    def _current(self, conn: Connection, scope: Scope, rtype: str, rid: str) -> Row[Any] | None:
        # update/delete of a hidden resource: as if it were not there (update then refuses
        # the id, since it exists, and delete has nothing to do).
        found = super()._current(conn, scope, rtype, rid)
        if found is None or not _is_hidden(conn, scope.tenant_id, rtype, rid):
            return found
        return None


def honour(services: GateServices) -> None:
    """Install the hiding store once per process (an isinstance check per gate after that)."""
    if not isinstance(services.store, HidingStore):
        services.store = HidingStore(services.vault)


@dataclass(frozen=True)
class Hidden:
    resource_type: str
    resource_id: str
    patient_id: str | None
    hidden_at: str
    hidden_by: str


def _may_hide(actor: Actor) -> None:
    if actor.role is not None and actor.role is not Role.PRIVACY_OFFICER:
        raise Forbidden("only the privacy officer or a named system actor may soft-delete")


class SoftDeletes:
    """Hide, list and restore; every change audited in its own transaction."""

    def __init__(self, services: GateServices) -> None:
        self._s = services

    def hide_patient(self, actor: Actor, patient_id: str) -> int:
        """Hide the patient's whole compartment; returns how many resources were hidden."""
        r = resources.c
        where = and_(r.tenant_id == actor.tenant_id, r.patient_id == patient_id)
        return self._hide(actor, "Patient", patient_id, patient_id, where)

    def hide_resource(self, actor: Actor, rtype: str, rid: str) -> int:
        r = resources.c
        where = and_(r.tenant_id == actor.tenant_id, r.resource_type == rtype, r.resource_id == rid)
        return self._hide(actor, rtype, rid, None, where)

    def restore_patient(self, actor: Actor, patient_id: str) -> int:
        h = hidden_resources.c
        where = and_(h.tenant_id == actor.tenant_id, h.patient_id == patient_id)
        return self._restore(actor, "Patient", patient_id, where)

    def restore_resource(self, actor: Actor, rtype: str, rid: str) -> int:
        h = hidden_resources.c
        where = and_(h.tenant_id == actor.tenant_id, h.resource_type == rtype, h.resource_id == rid)
        return self._restore(actor, rtype, rid, where)

    def list_hidden(self, actor: Actor, patient_id: str | None = None) -> list[Hidden]:
        try:
            _may_hide(actor)
        except CareVaultError as exc:
            self._refuse(actor, "Patient", patient_id or "", exc, "soft delete: list refused")
            raise
        h = hidden_resources.c
        query = select(hidden_resources).where(h.tenant_id == actor.tenant_id)
        if patient_id is not None:
            query = query.where(h.patient_id == patient_id)
        with self._s.reader.connect() as conn:
            rows = conn.execute(query.order_by(h.hidden_at, h.resource_type, h.resource_id))
            return [
                Hidden(r.resource_type, r.resource_id, r.patient_id, r.hidden_at, r.hidden_by)
                for r in rows
            ]

    def hidden_patients_of(self, tenant_id: str) -> set[str]:
        """Patients with hidden resources (ids only: for offboarding and the officer's list)."""
        h = hidden_resources.c
        with self._s.reader.connect() as conn:
            rows = conn.execute(
                select(h.patient_id)
                .distinct()
                .where(h.tenant_id == tenant_id, h.patient_id.is_not(None))
            ).all()
            conn.rollback()
        return {str(row.patient_id) for row in rows}

    def forget_patient(self, tenant_id: str, patient_id: str) -> None:
        """After a crypto-shred: the patient's flags point at nothing any more."""
        h = hidden_resources.c

        def work(conn: Connection) -> None:
            conn.execute(
                delete(hidden_resources).where(h.tenant_id == tenant_id, h.patient_id == patient_id)
            )

        self._s.committer.submit(work)

    # -- internals ---------------------------------------------------------------------

    def _hide(self, actor: Actor, rtype: str, rid: str, patient: str | None, where: Any) -> int:
        try:
            _may_hide(actor)
            if not valid_id(rid):
                raise NotFound("no such record")
        except CareVaultError as exc:
            self._refuse(actor, rtype, rid, exc, "soft delete refused")
            raise
        now = isoformat(self._s.clock.now())
        r = resources.c

        def job(conn: Connection) -> tuple[int, AuditRecord]:
            rows = conn.execute(
                select(r.resource_type, r.resource_id, r.patient_id).where(
                    where, r.deleted.is_(False)
                )
            ).all()
            if not rows:
                raise NotFound("nothing live to hide there")
            conn.execute(
                insert(hidden_resources),
                [
                    {
                        "tenant_id": actor.tenant_id,
                        "resource_type": row.resource_type,
                        "resource_id": row.resource_id,
                        "patient_id": row.patient_id,
                        "hidden_at": now,
                        "hidden_by": actor.user_id,
                    }
                    for row in rows
                ],
            )
            conn.execute(update(resources).where(where, r.deleted.is_(False)).values(deleted=True))
            patients = {str(row.patient_id) for row in rows if row.patient_id}
            detail = f"soft delete: {len(rows)} resources hidden, kept"
            return len(rows), self._entry(actor, Action.DELETE, rtype, rid, patients, detail)

        try:
            return self._s.audit.commit_with(self._s.committer, actor.tenant_id, job)
        except CareVaultError as exc:
            self._refuse(actor, rtype, rid, exc, "soft delete refused")
            raise

    def _restore(self, actor: Actor, rtype: str, rid: str, where: Any) -> int:
        try:
            _may_hide(actor)
        except CareVaultError as exc:
            self._refuse(actor, rtype, rid, exc, "soft delete undo refused")
            raise
        r = resources.c

        def job(conn: Connection) -> tuple[int, AuditRecord]:
            rows = conn.execute(select(hidden_resources).where(where)).all()
            if not rows:
                raise NotFound("nothing hidden there")
            for row in rows:
                conn.execute(
                    update(resources)
                    .where(
                        r.tenant_id == actor.tenant_id,
                        r.resource_type == row.resource_type,
                        r.resource_id == row.resource_id,
                    )
                    .values(deleted=False)
                )
            conn.execute(delete(hidden_resources).where(where))
            patients = {str(row.patient_id) for row in rows if row.patient_id}
            detail = f"soft delete undone: {len(rows)} resources shown again"
            return len(rows), self._entry(actor, Action.UPDATE, rtype, rid, patients, detail)

        try:
            return self._s.audit.commit_with(self._s.committer, actor.tenant_id, job)
        except CareVaultError as exc:
            self._refuse(actor, rtype, rid, exc, "soft delete undo refused")
            raise

    def _entry(
        self,
        actor: Actor,
        action: Action,
        rtype: str,
        rid: str,
        patients: set[str],
        detail: str,
        outcome: Outcome = Outcome.SUCCESS,
        status: int = 200,
    ) -> AuditRecord:
        return AuditRecord.by(
            actor,
            isoformat(self._s.clock.now()),
            action,
            outcome=outcome,
            status=status,
            resource_type=rtype,
            resource_ids=(rid,) if valid_id(rid) else (),
            patient_ids=tuple(sorted(patients)),
            detail=detail if actor.system_reason is None else f"{actor.system_reason}; {detail}",
        )

    def _refuse(self, actor: Actor, rtype: str, rid: str, exc: CareVaultError, why: str) -> None:
        outcome = Outcome.DENIED if exc.status == 403 else Outcome.NOT_FOUND
        record = self._entry(actor, Action.DELETE, rtype, rid, set(), why, outcome, exc.status)
        self._s.audit.commit(self._s.committer, actor.tenant_id, record)
