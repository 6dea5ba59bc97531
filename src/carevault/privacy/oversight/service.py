"""The privacy officer's side: list, open and close alerts; flag and unflag restricted patients.

Every call is audited, refusals included; answers carry ids, codes and times, never PHI.
The closing note is free text, so it is sealed at rest and shown back only to the officer.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar

import orjson
from sqlalchemy import Connection, Engine, insert, select, update

from carevault.audit.models import Action, AuditRecord, Outcome, audit_entries
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.crypto.vault import Vault
from carevault.errors import CareVaultError, Conflict, Forbidden, Invalid, NotFound
from carevault.identity.models import Actor
from carevault.identity.permissions import Permission
from carevault.privacy.gate_hooks import refusal_outcome
from carevault.privacy.oversight_models import (
    AlertKind,
    AlertState,
    RestrictionReason,
    restricted_patients,
    snooping_alert_entries,
    snooping_alerts,
)
from carevault.records.models import resources

T = TypeVar("T")
NOTE_PURPOSE = "oversight-notes"
MAX_NOTE = 4000
MAX_LIST = 500
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_ID = re.compile(r"^[A-Za-z0-9\-.:]{1,128}$")


@dataclass(frozen=True)
class AlertFilter:
    state: AlertState | None = None
    kind: AlertKind | None = None
    user_id: str | None = None
    day: str | None = None  # YYYY-MM-DD

    def __post_init__(self) -> None:
        if self.day is not None and not _DAY.match(self.day):
            raise Invalid("date must be YYYY-MM-DD")
        if self.user_id is not None and not _ID.match(self.user_id):
            raise Invalid("user is not a valid user id")


@dataclass(frozen=True)
class LinkedEntry:
    seq: int
    recorded_at: str
    actor_id: str
    actor_role: str
    action: str
    outcome: str
    purpose: str | None
    resource_type: str | None
    resource_ids: tuple[str, ...]


@dataclass(frozen=True)
class Alert:
    alert_id: str
    kind: str
    state: str
    user_id: str
    patient_id: str | None
    day: str
    raised_at: str
    opened_count: int | None
    threshold: int | None
    closed_at: str | None
    closed_by: str | None
    note: str | None = None
    entries: tuple[LinkedEntry, ...] = ()


@dataclass(frozen=True)
class Restriction:
    patient_id: str
    reason: str
    flagged_at: str
    flagged_by: str


class OversightService:
    def __init__(
        self,
        reader: Engine,
        committer: GroupCommitter,
        vault: Vault,
        clock: Clock,
        audit: AuditRecorder,
    ) -> None:
        self._reader = reader
        self._committer = committer
        self._vault = vault
        self._clock = clock
        self._audit = audit

    # -- alerts ----------------------------------------------------------------

    def list_alerts(self, actor: Actor, where: AlertFilter) -> list[Alert]:
        def read(conn: Connection) -> list[Alert]:
            query = select(snooping_alerts).where(snooping_alerts.c.tenant_id == actor.tenant_id)
            for column, value in (
                (snooping_alerts.c.state, where.state),
                (snooping_alerts.c.kind, where.kind),
                (snooping_alerts.c.user_id, where.user_id),
                (snooping_alerts.c.day, where.day),
            ):
                if value is not None:
                    query = query.where(column == str(value))
            query = query.order_by(snooping_alerts.c.raised_at.desc(), snooping_alerts.c.alert_id)
            return [_alert(r) for r in conn.execute(query.limit(MAX_LIST))]

        return self._reading(actor, Permission.PRIVACY_ALERT_MANAGE, "alerts listed", (), read)

    def alert(self, actor: Actor, alert_id: str) -> Alert:
        def read(conn: Connection) -> Alert:
            row = _alert_row(conn, actor.tenant_id, alert_id)
            seqs = select(snooping_alert_entries.c.seq).where(
                snooping_alert_entries.c.tenant_id == actor.tenant_id,
                snooping_alert_entries.c.alert_id == alert_id,
            )
            entries = conn.execute(
                select(audit_entries)
                .where(audit_entries.c.tenant_id == actor.tenant_id, audit_entries.c.seq.in_(seqs))
                .order_by(audit_entries.c.seq)
            )
            note = None
            if row.note_sealed is not None:
                note = self._vault.open_for(
                    actor.tenant_id, NOTE_PURPOSE, row.note_sealed, alert_id.encode()
                ).decode()
            linked = tuple(_linked(e) for e in entries)
            found = _alert(row)
            return Alert(**{**found.__dict__, "note": note, "entries": linked})

        ids = (alert_id,)
        return self._reading(actor, Permission.PRIVACY_ALERT_MANAGE, "alert read", ids, read)

    def close(self, actor: Actor, alert_id: str, note: object) -> Alert:
        self._authorize(actor, Permission.PRIVACY_ALERT_MANAGE, "alert close", (alert_id,))
        if not isinstance(note, str) or not note.strip() or len(note) > MAX_NOTE:
            return self._refuse(
                actor, "alert close", (alert_id,), Invalid(f"a note of 1 to {MAX_NOTE} characters")
            )
        sealed = self._vault.seal_for(
            actor.tenant_id, NOTE_PURPOSE, note.encode(), alert_id.encode()
        )

        def change(conn: Connection, now: str) -> Alert:
            row = _alert_row(conn, actor.tenant_id, alert_id)
            if row.state == AlertState.CLOSED.value:
                raise Conflict("the alert is already closed")
            conn.execute(
                update(snooping_alerts)
                .where(
                    snooping_alerts.c.tenant_id == actor.tenant_id,
                    snooping_alerts.c.alert_id == alert_id,
                )
                .values(
                    state=AlertState.CLOSED.value,
                    closed_at=now,
                    closed_by=actor.user_id,
                    note_sealed=sealed,
                )
            )
            return _alert(_alert_row(conn, actor.tenant_id, alert_id))

        perm = Permission.PRIVACY_ALERT_MANAGE
        return self._changing(actor, perm, "alert closed", (alert_id,), change)

    # -- restricted patients ----------------------------------------------------

    def restricted(self, actor: Actor) -> list[Restriction]:
        def read(conn: Connection) -> list[Restriction]:
            rows = conn.execute(
                select(restricted_patients)
                .where(
                    restricted_patients.c.tenant_id == actor.tenant_id,
                    restricted_patients.c.unflagged_at.is_(None),
                )
                .order_by(restricted_patients.c.flagged_at)
            )
            return [Restriction(r.patient_id, r.reason, r.flagged_at, r.flagged_by) for r in rows]

        perm = Permission.PRIVACY_RESTRICTION_MANAGE
        return self._reading(actor, perm, "restricted patients listed", (), read)

    def flag(self, actor: Actor, patient_id: str, reason: object) -> Restriction:
        ids = (patient_id,)
        self._authorize(actor, Permission.PRIVACY_RESTRICTION_MANAGE, "restrict", ids)
        try:
            why = RestrictionReason(reason if isinstance(reason, str) else "")
        except ValueError:
            allowed = ", ".join(r.value for r in RestrictionReason)
            return self._refuse(actor, "restrict", ids, Invalid(f"reason must be one of {allowed}"))

        def change(conn: Connection, now: str) -> Restriction:
            _patient_exists(conn, actor.tenant_id, patient_id)
            if _current_flag(conn, actor.tenant_id, patient_id) is not None:
                raise Conflict("the patient is already flagged as restricted")
            conn.execute(
                insert(restricted_patients).values(
                    tenant_id=actor.tenant_id,
                    patient_id=patient_id,
                    flagged_at=now,
                    reason=why.value,
                    flagged_by=actor.user_id,
                )
            )
            return Restriction(patient_id, why.value, now, actor.user_id)

        perm = Permission.PRIVACY_RESTRICTION_MANAGE
        return self._changing(actor, perm, f"patient restricted: {why.value}", ids, change)

    def unflag(self, actor: Actor, patient_id: str) -> None:
        def change(conn: Connection, now: str) -> None:
            flagged_at = _current_flag(conn, actor.tenant_id, patient_id)
            if flagged_at is None:
                raise NotFound("the patient is not flagged as restricted")
            conn.execute(
                update(restricted_patients)
                .where(
                    restricted_patients.c.tenant_id == actor.tenant_id,
                    restricted_patients.c.patient_id == patient_id,
                    restricted_patients.c.flagged_at == flagged_at,
                )
                .values(unflagged_at=now, unflagged_by=actor.user_id)
            )

        perm = Permission.PRIVACY_RESTRICTION_MANAGE
        self._changing(actor, perm, "patient unrestricted", (patient_id,), change)

    # -- the flow: permission, work, audit ---------------------------------------

    def _reading(
        self,
        actor: Actor,
        permission: Permission,
        what: str,
        ids: tuple[str, ...],
        read: Callable[[Connection], T],
    ) -> T:
        try:
            _require(actor, permission)
            with self._reader.connect() as conn:
                result = read(conn)
                conn.rollback()
        except CareVaultError as exc:
            return self._refuse(actor, what, ids, exc)
        self._audit.commit(self._committer, actor.tenant_id, self._record(actor, what, ids))
        return result

    def _changing(
        self,
        actor: Actor,
        permission: Permission,
        what: str,
        ids: tuple[str, ...],
        change: Callable[[Connection, str], T],
    ) -> T:
        def job(conn: Connection) -> tuple[T, AuditRecord]:
            now = isoformat(self._clock.now())
            return change(conn, now), self._record(actor, what, ids, now=now)

        try:
            _require(actor, permission)
            return self._audit.commit_with(self._committer, actor.tenant_id, job)
        except CareVaultError as exc:
            return self._refuse(actor, what, ids, exc)

    def _authorize(
        self, actor: Actor, permission: Permission, what: str, ids: tuple[str, ...]
    ) -> None:
        """The permission first (audited when refused), so bad input never outranks a 403."""
        try:
            _require(actor, permission)
        except CareVaultError as exc:
            self._refuse(actor, what, ids, exc)

    def _refuse(
        self, actor: Actor, what: str, ids: tuple[str, ...], exc: CareVaultError
    ) -> NoReturn:
        record = self._record(actor, what, ids, outcome=refusal_outcome(exc.status), exc=exc)
        self._audit.commit(self._committer, actor.tenant_id, record)
        raise exc

    def _record(
        self,
        actor: Actor,
        what: str,
        ids: tuple[str, ...],
        *,
        now: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        exc: CareVaultError | None = None,
    ) -> AuditRecord:
        return AuditRecord.by(
            actor,
            now or isoformat(self._clock.now()),
            Action.ADMIN,
            outcome=outcome,
            status=exc.status if exc else 200,
            resource_type="SnoopingAlert" if "alert" in what else "Patient",
            resource_ids=ids,
            detail=f"{what}; {type(exc).__name__}" if exc else what,
        )


def holds(actor: Actor, permission: Permission) -> bool:
    return permission in actor.permissions


def _require(actor: Actor, permission: Permission) -> None:
    if not holds(actor, permission):
        raise Forbidden("your role does not allow this")


def _alert_row(conn: Connection, tenant_id: str, alert_id: str) -> Any:
    row = conn.execute(
        select(snooping_alerts).where(
            snooping_alerts.c.tenant_id == tenant_id, snooping_alerts.c.alert_id == alert_id
        )
    ).one_or_none()
    if row is None:
        raise NotFound("no such alert")
    return row


def _alert(r: Any) -> Alert:
    return Alert(
        alert_id=r.alert_id,
        kind=r.kind,
        state=r.state,
        user_id=r.user_id,
        patient_id=r.patient_id or None,
        day=r.day,
        raised_at=r.raised_at,
        opened_count=r.opened_count,
        threshold=r.threshold,
        closed_at=r.closed_at,
        closed_by=r.closed_by,
    )


def _linked(e: Any) -> LinkedEntry:
    return LinkedEntry(
        seq=int(e.seq),
        recorded_at=e.recorded_at,
        actor_id=e.actor_id,
        actor_role=e.actor_role,
        action=e.action,
        outcome=e.outcome,
        purpose=e.purpose,
        resource_type=e.resource_type,
        resource_ids=tuple(orjson.loads(e.resource_ids)),
    )


def _patient_exists(conn: Connection, tenant_id: str, patient_id: str) -> None:
    found = conn.execute(
        select(resources.c.deleted).where(
            resources.c.tenant_id == tenant_id,
            resources.c.resource_type == "Patient",
            resources.c.resource_id == patient_id,
        )
    ).one_or_none()
    if found is None or found.deleted:
        raise NotFound("no such patient")


def _current_flag(conn: Connection, tenant_id: str, patient_id: str) -> str | None:
    found = conn.execute(
        select(restricted_patients.c.flagged_at).where(
            restricted_patients.c.tenant_id == tenant_id,
            restricted_patients.c.patient_id == patient_id,
            restricted_patients.c.unflagged_at.is_(None),
        )
    ).scalar()
    return str(found) if found is not None else None
