"""Reading cases back: one row, who may see it, and its view (with its written notices)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, Row, select

from carevault.clock import isoformat
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.errors import Forbidden, NotFound
from carevault.identity.models import Actor
from carevault.identity.permissions import Role
from carevault.rights.base import RightsBase
from carevault.rights.models import (
    OPEN_STATUSES,
    NoticeView,
    RequestView,
    Rulebook,
    rights_copies,
    rights_notices,
    rights_requests,
)


def parse_instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def plus_days(instant: str, days: int) -> str:
    return isoformat(parse_instant(instant) + timedelta(days=days))


def officer_chain(actor: Actor) -> str:
    """The queue an actor works: a tenant's privacy officer the tenant's (HIPAA) cases, the
    vendor's operators the vendor's (CCPA) cases; a named system actor its own chain's."""
    if actor.role is Role.PRIVACY_OFFICER:
        return actor.tenant_id
    if actor.role is Role.VENDOR_OPERATOR:
        return VENDOR_CHAIN
    if actor.role is None:
        return actor.tenant_id
    raise Forbidden("only the privacy officer works the requests queue")


def decider_name(row: Row[Any], tenant_name: str | None) -> str:
    if row.rulebook == Rulebook.CCPA.value:
        return "CareVault (the vendor)"
    return tenant_name or "your health-care provider"


class Cases(RightsBase):
    def row(self, conn: Connection, chain: str, request_id: str) -> Row[Any]:
        r = rights_requests
        found = conn.execute(
            select(r).where(r.c.tenant_id == chain, r.c.request_id == request_id)
        ).first()
        if found is None:
            raise NotFound("no such request")
        return found

    def requester_row(self, conn: Connection, actor: Actor, request_id: str) -> Row[Any]:
        """The requester's own case (theirs, or about their account); else 404."""
        r = rights_requests
        for chain in (actor.tenant_id, VENDOR_CHAIN):
            row = conn.execute(
                select(r).where(r.c.tenant_id == chain, r.c.request_id == request_id)
            ).first()
            if row is None:
                continue
            mine = row.requester_user_id == actor.user_id and (
                chain == actor.tenant_id or row.subject_tenant_id == actor.tenant_id
            )
            subject = row.subject_tenant_id == actor.tenant_id and row.subject_user_id == (
                actor.user_id
            )
            if mine or subject:
                return row
        raise NotFound("no such request")

    def stored_copy(self, conn: Connection, row: Row[Any], form: str) -> tuple[str, bytes]:
        """A case's copy in one form, opened: (media type, bytes)."""
        c = rights_copies.c
        found = conn.execute(
            select(rights_copies).where(
                c.tenant_id == row.tenant_id, c.request_id == row.request_id, c.form == form
            )
        ).first()
        if found is None:
            raise NotFound("no such copy for this request")
        what = f"copy|{row.request_id}|{form}"
        plain = self.open_text(row.tenant_id, row.patient_id, what, found.body_sealed)
        if plain is None:
            raise Forbidden("this copy can no longer be opened: its key was destroyed")
        return str(found.media_type), plain

    def late(self, row: Row[Any]) -> bool:
        return row.status in OPEN_STATUSES and self.now() > row.due_at

    def view(self, conn: Connection, row: Row[Any], tenant_name: str | None) -> RequestView:
        n = rights_notices
        notices = conn.execute(
            select(n)
            .where(n.c.tenant_id == row.tenant_id, n.c.request_id == row.request_id)
            .order_by(n.c.sent_at, n.c.notice_id)
        ).all()
        forms = conn.execute(
            select(rights_copies.c.form).where(
                rights_copies.c.tenant_id == row.tenant_id,
                rights_copies.c.request_id == row.request_id,
            )
        ).scalars()
        shown = []
        for notice in notices:
            plain = self.open_text(
                row.tenant_id, row.patient_id, f"notice|{notice.notice_id}", notice.body_sealed
            )
            shown.append(
                NoticeView(
                    notice.kind,
                    notice.sent_at,
                    plain.decode() if plain is not None else None,
                    notice.recipient_ref,
                )
            )
        return RequestView(
            request_id=row.request_id,
            right=row.right_name,
            rulebook=row.rulebook,
            decides=decider_name(row, tenant_name),
            status=row.status,
            channel=row.channel,
            requester_kind=row.requester_kind,
            verification=row.verification,
            received_at=row.received_at,
            due_at=row.due_at,
            extended_at=row.extended_at,
            decided_at=row.decided_at,
            denial_basis=row.denial_basis,
            fulfilled_at=row.fulfilled_at,
            fulfilment=orjson.loads(row.fulfilment) if row.fulfilment else None,
            late=self.late(row),
            notices=shown,
            copies=sorted(forms),
        )

    def notify_target(self, row: Row[Any]) -> tuple[str, str] | None:
        """Whom the emails about a case go to: the requester's (or subject's) account."""
        if row.rulebook == Rulebook.CCPA.value:
            if row.subject_tenant_id and row.subject_user_id:
                return row.subject_tenant_id, row.subject_user_id
            return None
        return (row.tenant_id, row.requester_user_id) if row.requester_user_id else None
