"""Marketing contacts: what CareVault keeps to market to a person, deleted after the opt-out.

The `marketing-contacts` data of a person are their communication preference row (the choice,
when and how it was made) and the marketing messages queued for or sent to them (outbox rows:
their user id, the template and the unsubscribe link; and those messages' delivery records).
Their purpose is satisfied when the person asks to stop: the opt-out's time, kept on the
preference row, starts the clock (`service.keep_until`), and the retention job deletes them
the policy's `keep_days` later (ihr.health: 15 days, "a short period after this to implement
your requests"; Healthsoft: at the next run). A repeated opt-out does not restart the clock.

What stays: the suppression list's keyed hash of the address (`marketing-suppression`), "a
record of the fact that you have asked us not to send you direct marketing", so marketing is
refused for good; the account's address, which is account data (service messages still use
it) on the `account` schedule; the audit trail.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, delete, select

from carevault.clock import isoformat
from carevault.errors import Conflict
from carevault.messaging.models import (
    MessageState,
    RecipientKind,
    notification_deliveries,
    notification_outbox,
)
from carevault.messaging.outbox import MARKETING_TEMPLATES
from carevault.messaging.preferences import communication_preferences
from carevault.policy import PrivacyPolicy
from carevault.retention.categories import MARKETING_CONTACTS
from carevault.retention.service import keep_until

RESOURCE_TYPE = "CommunicationPreference"
SUPPRESSION_KEPT = "the address's keyed hash on the suppression list: no marketing is sent again"


@dataclass(frozen=True)
class Erased:
    preference: int
    messages: int
    deliveries: int


def cutoff(policy: PrivacyPolicy, now: datetime) -> datetime | None:
    """Opt-outs made at or before this time are due now; None: the policy sets no period."""
    until = keep_until(policy, MARKETING_CONTACTS.category, now)
    return None if until is None else now - (until - now)


def due(
    conn: Connection, policy: PrivacyPolicy, tenant_id: str, now: datetime
) -> list[tuple[str, str]]:
    """(user id, due at) of each opted-out person whose marketing contacts may go now."""
    last = cutoff(policy, now)
    if last is None:
        return []  # no period: kept until the person or the tenant asks
    p = communication_preferences.c
    rows = conn.execute(
        select(p.user_id, p.updated_at)
        .where(
            p.tenant_id == tenant_id,
            p.marketing_opt_out.is_(True),
            p.updated_at <= isoformat(last),
        )
        .order_by(p.user_id)
    )
    period = now - last
    return [
        (str(r.user_id), isoformat(datetime.fromisoformat(r.updated_at) + period)) for r in rows
    ]


def marketing_sent_to(tenant_id: str, user_id: str) -> ColumnElement[bool]:
    """The outbox rows of the marketing queued for one account."""
    o = notification_outbox.c
    return and_(
        o.tenant_id == tenant_id,
        o.recipient_kind == RecipientKind.USER.value,
        o.recipient == user_id,
        o.template.in_(sorted(MARKETING_TEMPLATES)),
    )


def erase(conn: Connection, tenant_id: str, user_id: str, opted_out_by: str) -> Erased:
    """Delete one person's marketing contacts (inside the caller's transaction), if they opted
    out at or before `opted_out_by`.

    Refused (Conflict, nothing changed) while a marketing message queued before the opt-out
    is still being delivered, or when the person changed their choice since the plan."""
    o, d, p = notification_outbox.c, notification_deliveries.c, communication_preferences.c
    theirs = marketing_sent_to(tenant_id, user_id)
    in_flight = select(o.message_id).where(theirs, o.state == MessageState.PENDING.value)
    if conn.execute(in_flight).first() is not None:
        raise Conflict(
            "a marketing message queued before the opt-out is still being delivered: "
            "deleted at a later run"
        )
    gone = conn.execute(
        delete(communication_preferences).where(
            p.tenant_id == tenant_id,
            p.user_id == user_id,
            p.marketing_opt_out.is_(True),
            p.updated_at <= opted_out_by,
        )
    ).rowcount
    if not gone:
        raise Conflict("the person changed their marketing choice since the plan")
    messages = select(o.message_id).where(theirs).scalar_subquery()
    deliveries = conn.execute(
        delete(notification_deliveries).where(d.tenant_id == tenant_id, d.message_id.in_(messages))
    ).rowcount
    sent = conn.execute(delete(notification_outbox).where(theirs)).rowcount
    return Erased(gone, sent, deliveries)
