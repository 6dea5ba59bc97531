"""Delivering the outbox: claim due messages, render, send over SMTP, record every attempt.

A round runs in three steps. (1) Claim: in one writer transaction, each due PENDING row gets
its attempt counted and its next_attempt_at pushed a lease ahead, with a compare-and-set on
the old due time, so two workers (threads or processes, SQLite or PostgreSQL) never take the
same row. (2) Send, outside any transaction: one email per recipient. (3) Record: in one
writer transaction per message, a delivery record per recipient, the new state (sent, retry
later with backoff, failed) and a tenant audit entry. A worker that dies between (2) and (3)
leaves the row to be taken again when the lease lapses: delivery is at least once.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import orjson
from sqlalchemy import Connection, Engine, func, insert, select, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.crypto.vault import Vault
from carevault.errors import Invalid
from carevault.messaging.models import (
    DeliveryOutcome,
    MessageState,
    RecipientKind,
    notification_deliveries,
    notification_outbox,
)
from carevault.messaging.recipients import Resolution, resolve
from carevault.messaging.smtp import SendResult, SmtpConfig, SmtpSession, build_message
from carevault.messaging.templates import Rendered, template
from carevault.settings import Settings

log = logging.getLogger("carevault.notifications")

BACKOFF = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=12),
)
"""Wait after failed attempt n (1-based); the attempt after the last wait is the last one."""
MAX_ATTEMPTS = len(BACKOFF) + 1
LEASE = timedelta(minutes=10)
"""How long a claimed row stays out of other workers' reach while it is being sent."""
ACTOR = "system:notifications"
_DONE = (DeliveryOutcome.SENT.value, DeliveryOutcome.PERMANENT_FAILURE.value)


@dataclass(frozen=True)
class Claimed:
    tenant_id: str
    message_id: str
    kind: RecipientKind
    recipient: str
    template: str
    params: str
    attempt: int


@dataclass
class RoundReport:
    """What one round did; counts only."""

    configured: bool = True
    messages: int = 0
    sent: int = 0
    temporary: int = 0
    permanent: int = 0
    pending: int = 0
    """Due messages left untouched because no SMTP server is configured."""


@dataclass(frozen=True)
class MessageSummary:
    message_id: str
    created_at: str
    template: str
    recipient_kind: str
    recipient: str
    state: str
    attempts: int
    next_attempt_at: str


@dataclass
class _Attempt:
    records: list[tuple[str | None, SendResult]] = field(default_factory=list)


class NotificationService:
    def __init__(
        self,
        reader: Engine,
        committer: GroupCommitter,
        vault: Vault,
        clock: Clock,
        audit: AuditRecorder,
        settings: Settings,
    ) -> None:
        self._reader = reader
        self._committer = committer
        self._vault = vault
        self._clock = clock
        self._audit = audit
        self._settings = settings
        self._warned_unconfigured = False

    @property
    def configured(self) -> bool:
        return SmtpConfig.from_settings(self._settings) is not None

    def deliver_due(self, limit: int = 100) -> RoundReport:
        """Send every due message (up to limit); return the counts."""
        config = SmtpConfig.from_settings(self._settings)
        if config is None:
            pending = self._count_due()
            if not self._warned_unconfigured:
                self._warned_unconfigured = True
                log.warning("no SMTP server configured; notifications stay pending")
            return RoundReport(configured=False, pending=pending)
        report = RoundReport()
        claimed = self._committer.submit(lambda conn: self._claim(conn, limit))
        with SmtpSession(config) as session:
            for message in claimed:
                attempt = self._attempt(message, session, config)
                self._committer.submit(partial(self._record, message=message, attempt=attempt))
                report.messages += 1
                for _, result in attempt.records:
                    if result.outcome is DeliveryOutcome.SENT:
                        report.sent += 1
                    elif result.outcome is DeliveryOutcome.TEMPORARY_FAILURE:
                        report.temporary += 1
                    else:
                        report.permanent += 1
        if claimed:
            log.info(
                "notification round",
                extra={"messages": report.messages, "sent": report.sent,
                       "temporary": report.temporary, "permanent": report.permanent},
            )  # fmt: skip
        return report

    def list_messages(
        self, tenant_id: str, state: MessageState | None = None, limit: int = 200
    ) -> list[MessageSummary]:
        t = notification_outbox
        query = select(t).where(t.c.tenant_id == tenant_id)
        if state is not None:
            query = query.where(t.c.state == state.value)
        query = query.order_by(t.c.created_at.desc(), t.c.message_id).limit(limit)
        with self._reader.connect() as conn:
            rows = conn.execute(query).all()
        return [
            MessageSummary(
                r.message_id, r.created_at, r.template, r.recipient_kind, r.recipient,
                r.state, r.attempts, r.next_attempt_at,
            )
            for r in rows
        ]  # fmt: skip

    # -- the three steps ------------------------------------------------------

    def _claim(self, conn: Connection, limit: int) -> list[Claimed]:
        now = self._clock.now()
        t = notification_outbox
        rows = conn.execute(
            select(t)
            .where(t.c.state == MessageState.PENDING.value, t.c.next_attempt_at <= isoformat(now))
            .order_by(t.c.next_attempt_at)
            .limit(limit)
        ).all()
        claimed = []
        for row in rows:
            taken = conn.execute(
                update(t)
                .where(
                    t.c.tenant_id == row.tenant_id,
                    t.c.message_id == row.message_id,
                    t.c.state == MessageState.PENDING.value,
                    t.c.next_attempt_at == row.next_attempt_at,  # compare-and-set
                )
                .values(attempts=row.attempts + 1, next_attempt_at=isoformat(now + LEASE))
            )
            if taken.rowcount == 1:
                claimed.append(
                    Claimed(
                        row.tenant_id, row.message_id, RecipientKind(row.recipient_kind),
                        row.recipient, row.template, row.params, row.attempts + 1,
                    )
                )  # fmt: skip
        return claimed

    def _attempt(self, message: Claimed, session: SmtpSession, config: SmtpConfig) -> _Attempt:
        attempt = _Attempt()
        with self._reader.connect() as conn:
            resolution = resolve(
                conn, self._vault, message.tenant_id, message.kind, message.recipient
            )
            done = set(
                conn.execute(
                    select(notification_deliveries.c.recipient_user_id).where(
                        notification_deliveries.c.tenant_id == message.tenant_id,
                        notification_deliveries.c.message_id == message.message_id,
                        notification_deliveries.c.outcome.in_(_DONE),
                    )
                ).scalars()
            )
        todo = [r for r in resolution.recipients if r.user_id not in done]
        if not resolution.recipients:
            failure = SendResult(DeliveryOutcome.PERMANENT_FAILURE, None, resolution.missing or "")
            attempt.records.append((None, failure))
            return attempt
        rendered = self._render(message, resolution)
        if isinstance(rendered, SendResult):
            attempt.records.extend((r.user_id, rendered) for r in todo)
            return attempt
        sent_at = self._clock.now()
        for recipient in todo:
            try:
                email = build_message(
                    rendered, to=recipient.address, sender=config.sender,
                    display_name=resolution.tenant_name, sent_at=sent_at,
                )  # fmt: skip
            except (Invalid, ValueError):
                # CR/LF in a header value (the email module refuses them too): never sent.
                result = SendResult(DeliveryOutcome.PERMANENT_FAILURE, None, "header")
            else:
                result = session.send(email, recipient.address)
            attempt.records.append((recipient.user_id, result))
        return attempt

    def _render(self, message: Claimed, resolution: Resolution) -> Rendered | SendResult:
        try:
            params = orjson.loads(message.params)
            return template(message.template).render(
                params, tenant=resolution.tenant_name, origin=self._settings.public_origin
            )
        except (Invalid, ValueError):
            # Queued before a template changed, or written around enqueue: the guard holds.
            return SendResult(DeliveryOutcome.PERMANENT_FAILURE, None, "phi-guard")

    def _record(self, conn: Connection, message: Claimed, attempt: _Attempt) -> None:
        now_dt = self._clock.now()
        now = isoformat(now_dt)
        for user_id, result in attempt.records:
            conn.execute(
                insert(notification_deliveries).values(
                    tenant_id=message.tenant_id, delivery_id=str(uuid.uuid4()),
                    message_id=message.message_id, recipient_user_id=user_id,
                    attempt=message.attempt, at=now, outcome=result.outcome.value,
                    smtp_code=result.code, reason=result.reason[:32] or None,
                )
            )  # fmt: skip
        state, next_at = self._next_state(conn, message, attempt, now_dt)
        conn.execute(
            update(notification_outbox)
            .where(
                notification_outbox.c.tenant_id == message.tenant_id,
                notification_outbox.c.message_id == message.message_id,
            )
            .values(state=state.value, next_attempt_at=next_at)
        )
        self._audit.append(conn, message.tenant_id, [self._audit_record(message, attempt, state)])

    @staticmethod
    def _next_state(
        conn: Connection, message: Claimed, attempt: _Attempt, now: datetime
    ) -> tuple[MessageState, str]:
        temporary = any(r.outcome is DeliveryOutcome.TEMPORARY_FAILURE for _, r in attempt.records)
        if temporary and message.attempt < MAX_ATTEMPTS:
            return MessageState.PENDING, isoformat(now + BACKOFF[message.attempt - 1])
        if temporary:
            return MessageState.FAILED, isoformat(now)
        d = notification_deliveries
        sent = conn.execute(
            select(func.count()).where(
                d.c.tenant_id == message.tenant_id,
                d.c.message_id == message.message_id,
                d.c.outcome == DeliveryOutcome.SENT.value,
            )
        ).scalar_one()
        return (MessageState.SENT if sent else MessageState.FAILED), isoformat(now)

    def _audit_record(
        self, message: Claimed, attempt: _Attempt, state: MessageState
    ) -> AuditRecord:
        counts = {o: 0 for o in DeliveryOutcome}
        for _, result in attempt.records:
            counts[result.outcome] += 1
        users = tuple(u for u, _ in attempt.records if u is not None)
        return AuditRecord(
            recorded_at=isoformat(self._clock.now()),
            actor_id=ACTOR,
            actor_role="system",
            action=Action.ADMIN,
            outcome=Outcome.SUCCESS if state is not MessageState.FAILED else Outcome.FAILED,
            resource_type="Notification",
            resource_ids=(message.message_id, *users),
            detail=(
                f"notification {message.template} attempt {message.attempt}: "
                f"{counts[DeliveryOutcome.SENT]} sent, "
                f"{counts[DeliveryOutcome.TEMPORARY_FAILURE]} to retry, "
                f"{counts[DeliveryOutcome.PERMANENT_FAILURE]} refused; now {state.value}"
            ),
        )

    def _count_due(self) -> int:
        t = notification_outbox
        with self._reader.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        t.c.state == MessageState.PENDING.value,
                        t.c.next_attempt_at <= isoformat(self._clock.now()),
                    )
                ).scalar_one()
            )
