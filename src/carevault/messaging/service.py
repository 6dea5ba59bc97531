"""Delivering the outbox: claim due messages, render, send over SMTP, record every attempt.

A round runs in three steps. (1) Claim: in one writer transaction, each due PENDING row gets
its attempt counted and its next_attempt_at pushed a lease ahead, with a compare-and-set on
the old due time, so two workers (threads or processes, SQLite or PostgreSQL) never take the
same row. (2) Send, outside any transaction: one email per recipient. (3) Record: in one
writer transaction per message, a delivery record per recipient, the new state (sent, retry
later with backoff, failed) and a tenant audit entry. A worker that dies between (2) and (3)
leaves the row to be taken again when the lease lapses: delivery is at least once.

A message sent on behalf of a user (a `from_user` template, e.g. `message_notice`: a
practitioner's secure message to a patient) is From that user: their name is sealed into the
row when it is queued and opened only to write the From header; it is never logged, audited
or put in the text.
"""

from __future__ import annotations

import base64
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial

import orjson
from sqlalchemy import Connection, Engine, func, insert, select, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.crypto.envelope import DecryptionError
from carevault.crypto.vault import Vault
from carevault.errors import CareVaultError, Forbidden, Invalid, Unprocessable
from carevault.identity.models import Actor, users
from carevault.identity.permissions import Role
from carevault.messaging.models import (
    DeliveryOutcome,
    MessageState,
    RecipientKind,
    notification_deliveries,
    notification_outbox,
)
from carevault.messaging.outbox import enqueue
from carevault.messaging.recipients import Resolution, resolve
from carevault.messaging.smtp import (
    SendResult,
    SmtpConfig,
    SmtpSession,
    build_message,
    user_display_name,
)
from carevault.messaging.templates import (
    FROM_NAME,
    FROM_USER,
    Rendered,
    check_from_user,
    template,
)
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
NAME_KEY = "message-senders"
"""The tenant sub-key that seals the name a message is sent for (one key, one job)."""
MESSAGE_TEMPLATE = "message-from-user"
MESSAGE_SENDERS = frozenset({Role.PRACTITIONER, Role.STAFF})
"""The workforce roles whose secure messages to a patient are announced as from them."""
_PATIENT_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
NameOf = Callable[[str], str | None]
"""practitioner_id → the practitioner's display name, read by the caller through the gate
(messaging does not reach the records: see web/practitioner_names.py), or None."""


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
    on_behalf_of: str | None = None
    """The user id a `from_user` message was sent for (audited; never their name)."""


@dataclass(frozen=True)
class MessageNotice:
    """What `message_notice` queued: one message per active account of the patient."""

    message_ids: tuple[str, ...]


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

    # -- sent on behalf of a user -----------------------------------------------

    def from_user_params(self, tenant_id: str, user_id: str, name: str) -> dict[str, str]:
        """The reserved parameters that make a `from_user` message From this user: their id,
        and their name sealed under the tenant key (bound to the id), for the outbox row."""
        shown = user_display_name(name)
        if not shown:
            raise Unprocessable("a message sent for a user needs the user's name")
        aad = _name_aad(tenant_id, user_id)
        blob = self._vault.seal_for(tenant_id, NAME_KEY, shown.encode(), aad)
        return {FROM_USER: user_id, FROM_NAME: base64.urlsafe_b64encode(blob).decode()}

    def practitioner_of(self, actor: Actor) -> str | None:
        """The id of the Practitioner resource the actor's account is linked to, if any: the
        one person a message from this account may be sent as."""
        with self._reader.connect() as conn:
            found = conn.execute(
                select(users.c.practitioner_id).where(
                    users.c.tenant_id == actor.tenant_id, users.c.user_id == actor.user_id
                )
            ).scalar()
        return str(found) if found else None

    def message_notice(
        self, actor: Actor, patient_id: str, name_of: NameOf, link: str | None = None
    ) -> MessageNotice:
        """A practitioner's (or staff member's) secure message to a patient: each of the
        patient's active accounts is told "you have a new secure message", From the actor.

        Called once the message itself was written through the gate (which decided that the
        actor may reach the patient). The actor's name is their Practitioner's
        (users.practitioner_id), opened by `name_of`; an account without one is refused rather
        than sent as the tenant's own notice. Nothing of the message is in the email. Queued
        with its audit entry (the patient, the message ids); refusals are audited too.
        """
        try:
            if actor.role not in MESSAGE_SENDERS:
                raise Forbidden("secure messages to patients are sent by the practice's workforce")
            if not isinstance(patient_id, str) or not _PATIENT_ID.match(patient_id):
                raise Invalid("the recipient is a patient id")
            practitioner_id = self.practitioner_of(actor)
            name = name_of(practitioner_id) if practitioner_id else None
            reserved = self.from_user_params(actor.tenant_id, actor.user_id, name or "")
            params: dict[str, str | int] = {**reserved, **({"link": link} if link else {})}
            template(MESSAGE_TEMPLATE).check(params)  # a bad link is refused before anything
        except CareVaultError as exc:
            self._audit.commit(self._committer, actor.tenant_id, self._notice_record(
                actor, patient_id, f"message notice refused: {type(exc).__name__}",
                Outcome.DENIED if exc.status == 403 else Outcome.INVALID, exc.status,
            ))  # fmt: skip
            raise
        now = isoformat(self._clock.now())

        def job(conn: Connection) -> tuple[MessageNotice, AuditRecord]:
            accounts = conn.execute(
                select(users.c.user_id)
                .where(
                    users.c.tenant_id == actor.tenant_id,
                    users.c.patient_id == patient_id,
                    users.c.role == Role.PATIENT.value,
                    users.c.active.is_(True),
                )
                .order_by(users.c.user_id)
            ).scalars()
            ids = tuple(
                enqueue(conn, actor.tenant_id, kind=RecipientKind.USER, recipient=str(user_id),
                        template=MESSAGE_TEMPLATE, params=params, now=now)
                for user_id in accounts
            )  # fmt: skip
            detail = f"message notice queued for {len(ids)} accounts, from the sender"
            return MessageNotice(ids), self._notice_record(actor, patient_id, detail, ids=ids)

        return self._audit.commit_with(self._committer, actor.tenant_id, job)

    def _notice_record(
        self,
        actor: Actor,
        patient_id: str,
        detail: str,
        outcome: Outcome = Outcome.SUCCESS,
        status: int = 201,
        ids: tuple[str, ...] = (),
    ) -> AuditRecord:
        ok = isinstance(patient_id, str) and bool(_PATIENT_ID.match(patient_id))
        return AuditRecord.by(
            actor,
            isoformat(self._clock.now()),
            Action.ADMIN,
            outcome=outcome,
            status=status,
            resource_type="Notification",
            resource_ids=ids,
            patient_ids=(patient_id,) if ok else (),
            detail=detail,
        )

    def _sent_for(self, message: Claimed) -> tuple[str, str] | SendResult | None:
        """A `from_user` message: (its user's id, their name opened from the row); None: a
        system notice. A row without a good seal is refused: it must not go out as the
        tenant's own notice."""
        try:
            if not template(message.template).from_user:
                return None
            params = orjson.loads(message.params)
            check_from_user(params, message.template)
            user_id, blob = str(params[FROM_USER]), base64.urlsafe_b64decode(params[FROM_NAME])
            aad = _name_aad(message.tenant_id, user_id)
            return user_id, self._vault.open_for(message.tenant_id, NAME_KEY, blob, aad).decode()
        except (Invalid, ValueError, DecryptionError):
            return SendResult(DeliveryOutcome.PERMANENT_FAILURE, None, "from-user")

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
        sent_for = self._sent_for(message)
        name = None
        if isinstance(sent_for, SendResult):
            rendered = sent_for
        elif sent_for is not None:
            attempt.on_behalf_of, name = sent_for
        if isinstance(rendered, SendResult):
            attempt.records.extend((r.user_id, rendered) for r in todo)
            return attempt
        sent_at = self._clock.now()
        for recipient in todo:
            try:
                email = build_message(
                    rendered, to=recipient.address, sender=config.sender,
                    display_name=resolution.tenant_name, sent_at=sent_at,
                    on_behalf_of=name,
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
            on_behalf_of=attempt.on_behalf_of,
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


def _name_aad(tenant_id: str, user_id: str) -> bytes:
    # Binds the sealed name to its user: a seal moved to another row's user does not open.
    return f"{tenant_id}|from-user|{user_id}".encode()
