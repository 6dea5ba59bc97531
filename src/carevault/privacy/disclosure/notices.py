"""The patient's notice of a disclosure: queued with the disclosure, or held while an order
forbids it and released when the gag ends (by date, or when lifted).

A notice names no PHI: the templates say only that a disclosure was made or is coming, and
to sign in. It goes to the patient's own active accounts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, and_, or_, select, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.identity.models import users
from carevault.identity.permissions import Role
from carevault.messaging.models import RecipientKind
from carevault.messaging.outbox import enqueue
from carevault.privacy.disclosure.facts import Order
from carevault.privacy.disclosure.models import held_notices, legal_orders
from carevault.privacy.services import GateServices

UPCOMING = "disclosure-upcoming"  # before the release
MADE = "disclosure-made"  # after it, or once a held notice may go
RELEASER = "system:held notice release"


def notify_patient(conn: Connection, tenant_id: str, patient_id: str, template: str,
                   now: str) -> int:  # fmt: skip
    """Queue the notice to each active account of the patient; how many were queued."""
    rows = conn.execute(
        select(users.c.user_id).where(
            users.c.tenant_id == tenant_id, users.c.patient_id == patient_id,
            users.c.role == Role.PATIENT.value, users.c.active.is_(True),
        )
    ).all()  # fmt: skip
    for row in rows:
        enqueue(conn, tenant_id, kind=RecipientKind.USER, recipient=row.user_id,
                template=template, now=now)  # fmt: skip
    return len(rows)


def hold(conn: Connection, tenant_id: str, disclosure_id: str, order: Order, patient_id: str,
         now: str) -> str:  # fmt: skip
    notice_id = str(uuid.uuid4())
    conn.execute(
        held_notices.insert().values(
            tenant_id=tenant_id, notice_id=notice_id, disclosure_id=disclosure_id,
            order_id=order.order_id, patient_id=patient_id, held_at=now,
            release_at=order.gag_until if order.gag_lifted_at is None else now,
            released_at=None,
        )
    )  # fmt: skip
    return notice_id


def release_held(
    conn: Connection, tenant_id: str, now: str, order_id: str | None = None
) -> list[str]:
    """Send the held notices that may go now (or every one of an order whose gag was lifted),
    in the caller's transaction; the patients notified."""
    h, o = held_notices, legal_orders
    due = or_(and_(h.c.release_at.is_not(None), h.c.release_at <= now),
              o.c.gag_lifted_at.is_not(None))  # fmt: skip
    query = (
        select(h.c.notice_id, h.c.patient_id)
        .join(o, and_(o.c.tenant_id == h.c.tenant_id, o.c.order_id == h.c.order_id))
        .where(h.c.tenant_id == tenant_id, h.c.released_at.is_(None), due)
    )
    if order_id is not None:
        query = query.where(h.c.order_id == order_id)
    patients: list[str] = []
    for row in conn.execute(query.order_by(h.c.held_at, h.c.notice_id)).all():
        notify_patient(conn, tenant_id, row.patient_id, MADE, now)
        conn.execute(
            update(h)
            .where(h.c.tenant_id == tenant_id, h.c.notice_id == row.notice_id)
            .values(released_at=now)
        )
        patients.append(row.patient_id)
    return patients


@dataclass(frozen=True)
class ReleaseReport:
    tenants: int
    notices: int


def release_due_notices(services: GateServices, now: str) -> ReleaseReport:
    """Every tenant's held notices whose gag has ended; each tenant's batch audited with it."""
    h = held_notices
    with services.reader.connect() as conn:
        tenants = [r.tenant_id for r in conn.execute(
            select(h.c.tenant_id).distinct().where(
                h.c.released_at.is_(None), h.c.release_at.is_not(None), h.c.release_at <= now
            )
        )]  # fmt: skip
        conn.rollback()
    total = 0
    for tenant_id in tenants:

        def job(conn: Connection, tenant_id: str = tenant_id) -> tuple[int, AuditRecord]:
            patients = release_held(conn, tenant_id, now)
            return len(patients), AuditRecord(
                recorded_at=now, actor_id=RELEASER, actor_role="system", action=Action.ADMIN,
                outcome=Outcome.SUCCESS, status=200, purpose="HOPERAT",
                resource_type="HeldNotice", patient_ids=tuple(dict.fromkeys(patients)),
                detail=f"held disclosure notices released: {len(patients)}",
            )  # fmt: skip

        total += services.audit.commit_with(services.committer, tenant_id, job)
    return ReleaseReport(len(tenants), total)
