"""Breach notices: the privacy officer names the patients a security breach affected, and
each one's own active accounts get the `breach-notice` email through the notification
service (to the address in their account), in the same transaction as the audit entry.

The email carries no PHI and nothing of the breach (that stays behind the sign-in and with
the practice); it says that an incident may involve the person's information and whom to
ask. A patient with no active account cannot be emailed: they are listed back so that the
practice notifies them otherwise (HIPAA 164.404(d): first-class mail).

    BreachNotices(reader, committer, audit, clock).notify(officer, ["pid", ...]) -> BreachReport
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine, select

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.errors import CareVaultError, Forbidden, Invalid
from carevault.identity.models import Actor, users
from carevault.identity.permissions import Role
from carevault.messaging.models import RecipientKind
from carevault.messaging.outbox import enqueue

TEMPLATE = "breach-notice"
RESOURCE_TYPE = "BreachNotice"
MAX_PATIENTS = 10_000
_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")


@dataclass(frozen=True)
class BreachReport:
    breach_id: str
    patients: int
    notices_queued: int
    without_account: tuple[str, ...]
    """Patients with no active account: the practice must notify them another way."""


class BreachNotices:
    def __init__(
        self, reader: Engine, committer: GroupCommitter, audit: AuditRecorder, clock: Clock
    ) -> None:
        self._reader, self._committer, self._audit, self._clock = reader, committer, audit, clock

    def notify(self, actor: Actor, patient_ids: Sequence[str]) -> BreachReport:
        """Queue the notice to every active account of each affected patient."""
        breach_id = str(uuid.uuid4())
        try:
            if actor.role is not Role.PRIVACY_OFFICER:
                raise Forbidden("breach notices are sent by the tenant's privacy officer")
            wanted = tuple(dict.fromkeys(patient_ids))
            if not wanted or len(wanted) > MAX_PATIENTS:
                raise Invalid(f"name the affected patients: 1 to {MAX_PATIENTS} patient ids")
            if any(not isinstance(p, str) or not _ID.match(p) for p in wanted):
                raise Invalid("each affected patient is a patient id")
        except CareVaultError as exc:
            self._refuse(actor, breach_id, exc)
            raise
        now = isoformat(self._clock.now())

        def job(conn: Connection) -> tuple[BreachReport, AuditRecord]:
            queued = 0
            missing: list[str] = []
            for patient_id in wanted:
                accounts = _accounts(conn, actor.tenant_id, patient_id)
                if not accounts:
                    missing.append(patient_id)
                for user_id in accounts:
                    enqueue(conn, actor.tenant_id, kind=RecipientKind.USER, recipient=user_id,
                            template=TEMPLATE, now=now)  # fmt: skip
                    queued += 1
            report = BreachReport(breach_id, len(wanted), queued, tuple(missing))
            detail = (
                f"breach notices queued: {queued} accounts of {len(wanted)} patients; "
                f"{len(missing)} without an active account (notify them by mail)"
            )
            return report, self._record(actor, breach_id, detail, wanted)

        return self._audit.commit_with(self._committer, actor.tenant_id, job)

    def _record(
        self,
        actor: Actor,
        breach_id: str,
        detail: str,
        patients: tuple[str, ...] = (),
        outcome: Outcome = Outcome.SUCCESS,
        status: int = 201,
    ) -> AuditRecord:
        return AuditRecord.by(
            actor,
            isoformat(self._clock.now()),
            Action.ADMIN,
            outcome=outcome,
            status=status,
            resource_type=RESOURCE_TYPE,
            resource_ids=(breach_id,),
            patient_ids=patients,
            detail=detail,
        )

    def _refuse(self, actor: Actor, breach_id: str, exc: CareVaultError) -> None:
        outcome = Outcome.DENIED if exc.status == 403 else Outcome.INVALID
        record = self._record(
            actor, breach_id, f"breach notice refused: {type(exc).__name__}",
            outcome=outcome, status=exc.status,
        )  # fmt: skip
        self._audit.commit(self._committer, actor.tenant_id, record)


def _accounts(conn: Connection, tenant_id: str, patient_id: str) -> list[str]:
    rows = conn.execute(
        select(users.c.user_id)
        .where(
            users.c.tenant_id == tenant_id,
            users.c.patient_id == patient_id,
            users.c.role == Role.PATIENT.value,
            users.c.active.is_(True),
        )
        .order_by(users.c.user_id)
    )
    return [str(r.user_id) for r in rows]
