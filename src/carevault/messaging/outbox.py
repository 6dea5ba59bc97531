"""Enqueue a notification inside the caller's transaction: it is sent only if the event commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import orjson
from sqlalchemy import Connection, insert

from carevault.messaging.models import MessageState, RecipientKind, notification_outbox


def enqueue(
    conn: Connection,
    tenant_id: str,
    *,
    kind: RecipientKind,
    recipient: str,
    template: str,
    params: Mapping[str, str | int] | None = None,
    now: str,
) -> str:
    """Queue one message (to a user id, or to every active user of a role); returns its id."""
    message_id = str(uuid.uuid4())
    conn.execute(
        insert(notification_outbox).values(
            tenant_id=tenant_id,
            message_id=message_id,
            created_at=now,
            recipient_kind=kind.value,
            recipient=recipient,
            template=template,
            params=orjson.dumps(dict(params or {})).decode(),
            state=MessageState.PENDING.value,
            attempts=0,
            next_attempt_at=now,
        )
    )
    return message_id
