"""Legal holds: per patient or for the whole tenant, filed and lifted by the privacy officer.

A live hold stops every deletion it covers (permanent deletion, the retention job, a patient's
own deletion, offboarding) with a reason a person can act on. The note is sealed at rest;
what is audited is the hold id and the patient.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, insert, or_, select, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Conflict, Forbidden, Invalid, NotFound
from carevault.identity.models import Actor
from carevault.identity.permissions import Role
from carevault.privacy.services import GateServices
from carevault.retention.models import legal_holds

_PURPOSE = "legal-holds"
MAX_REASON = 500


@dataclass(frozen=True)
class Hold:
    hold_id: str
    patient_id: str | None
    filed_at: str
    filed_by: str
    lifted_at: str | None


class UnderLegalHold(Conflict):
    """Deletion refused: a legal hold covers the data."""


def require_officer(actor: Actor, what: str) -> None:
    if actor.role is not None and actor.role is not Role.PRIVACY_OFFICER:
        raise Forbidden(f"only the privacy officer may {what}")


class LegalHolds:
    def __init__(self, services: GateServices) -> None:
        self._s = services

    def file(self, actor: Actor, patient_id: str | None, reason: str) -> Hold:
        try:
            require_officer(actor, "file a legal hold")
            if not reason.strip() or len(reason) > MAX_REASON:
                raise Invalid(f"a legal hold needs a reason of 1-{MAX_REASON} characters")
        except CareVaultError as exc:
            self._refuse(actor, patient_id, exc, "legal hold refused")
            raise
        hold_id, now = str(uuid.uuid4()), isoformat(self._s.clock.now())
        sealed = self._s.vault.seal_for(
            actor.tenant_id, _PURPOSE, reason.encode(), hold_id.encode()
        )

        def job(conn: Connection) -> tuple[Hold, AuditRecord]:
            conn.execute(
                insert(legal_holds).values(
                    tenant_id=actor.tenant_id,
                    hold_id=hold_id,
                    patient_id=patient_id,
                    reason_sealed=sealed,
                    filed_by=actor.user_id,
                    filed_at=now,
                )
            )
            hold = Hold(hold_id, patient_id, now, actor.user_id, None)
            return hold, self._entry(actor, patient_id, hold_id, "legal hold filed")

        return self._s.audit.commit_with(self._s.committer, actor.tenant_id, job)

    def lift(self, actor: Actor, hold_id: str) -> None:
        now = isoformat(self._s.clock.now())
        h = legal_holds.c

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            row = conn.execute(
                select(legal_holds).where(h.tenant_id == actor.tenant_id, h.hold_id == hold_id)
            ).one_or_none()
            if row is None or row.lifted_at is not None:
                raise NotFound("no live legal hold with that id")
            conn.execute(
                update(legal_holds)
                .where(h.tenant_id == actor.tenant_id, h.hold_id == hold_id)
                .values(lifted_by=actor.user_id, lifted_at=now)
            )
            return None, self._entry(actor, row.patient_id, hold_id, "legal hold lifted")

        try:
            require_officer(actor, "lift a legal hold")
            self._s.audit.commit_with(self._s.committer, actor.tenant_id, job)
        except CareVaultError as exc:
            self._refuse(actor, None, exc, "legal hold lift refused")
            raise

    def listed(self, actor: Actor, *, live_only: bool = True) -> list[Hold]:
        require_officer(actor, "list legal holds")
        h = legal_holds.c
        query = select(legal_holds).where(h.tenant_id == actor.tenant_id)
        if live_only:
            query = query.where(h.lifted_at.is_(None))
        with self._s.reader.connect() as conn:
            rows = conn.execute(query.order_by(h.filed_at, h.hold_id)).all()
        return [Hold(r.hold_id, r.patient_id, r.filed_at, r.filed_by, r.lifted_at) for r in rows]

    def reason(self, actor: Actor, hold_id: str) -> str:
        """The sealed note, for the officer."""
        require_officer(actor, "read a legal hold")
        h = legal_holds.c
        with self._s.reader.connect() as conn:
            row = conn.execute(
                select(legal_holds.c.reason_sealed).where(
                    h.tenant_id == actor.tenant_id, h.hold_id == hold_id
                )
            ).one_or_none()
        if row is None:
            raise NotFound("no legal hold with that id")
        opened = self._s.vault.open_for(
            actor.tenant_id, _PURPOSE, row.reason_sealed, hold_id.encode()
        )
        return opened.decode()

    def live_for(self, conn: Connection, tenant_id: str, patient_id: str | None) -> list[str]:
        """Ids of the live holds covering this patient (or the tenant): empty when free."""
        h = legal_holds.c
        covers: ColumnElement[bool] = h.patient_id.is_(None)
        if patient_id is not None:
            covers = or_(covers, h.patient_id == patient_id)
        rows = conn.execute(
            select(h.hold_id)
            .where(h.tenant_id == tenant_id, h.lifted_at.is_(None), covers)
            .order_by(h.hold_id)
        )
        return [str(r.hold_id) for r in rows]

    def held_patients(self, conn: Connection, tenant_id: str) -> tuple[bool, set[str]]:
        """(the whole tenant is held, the patients held one by one)."""
        h = legal_holds.c
        rows = conn.execute(
            select(h.patient_id).where(h.tenant_id == tenant_id, h.lifted_at.is_(None))
        ).all()
        return any(r.patient_id is None for r in rows), {
            str(r.patient_id) for r in rows if r.patient_id is not None
        }

    def check_free(self, tenant_id: str, patient_id: str | None) -> None:
        """Raise UnderLegalHold, naming the holds, if any live hold covers the data."""
        with self._s.reader.connect() as conn:
            holds = self.live_for(conn, tenant_id, patient_id)
            conn.rollback()
        if holds:
            raise UnderLegalHold(
                f"the data is under legal hold {', '.join(holds)}: the privacy officer must "
                "lift the hold before anything covered by it can be deleted"
            )

    def _entry(
        self,
        actor: Actor,
        patient_id: str | None,
        hold_id: str,
        detail: str,
        outcome: Outcome = Outcome.SUCCESS,
        status: int = 200,
    ) -> AuditRecord:
        return AuditRecord.by(
            actor,
            isoformat(self._s.clock.now()),
            Action.ADMIN,
            outcome=outcome,
            status=status,
            resource_type="LegalHold",
            resource_ids=(hold_id,) if hold_id else (),
            patient_ids=(patient_id,) if patient_id else (),
            detail=detail,
        )

    def _refuse(self, actor: Actor, patient_id: str | None, exc: CareVaultError, why: str) -> None:
        outcome = Outcome.DENIED if exc.status == 403 else Outcome.INVALID
        if exc.status == 404:
            outcome = Outcome.NOT_FOUND
        record = self._entry(actor, patient_id, "", why, outcome, exc.status)
        self._s.audit.commit(self._s.committer, actor.tenant_id, record)
