"""Enqueue a notification inside the caller's transaction: it is sent only if the event commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import orjson
from sqlalchemy import Connection, insert

from carevault.errors import Invalid
from carevault.identity.permissions import Role
from carevault.messaging.models import MessageState, RecipientKind, notification_outbox
from carevault.messaging.templates import template as find_template

MARKETING_TEMPLATES = frozenset({"marketing-update"})
"""Templates that are marketing (templates.toml): only these honour the opt-out, and only
`Preferences.send_marketing` may queue them."""


def enqueue(
    conn: Connection,
    tenant_id: str,
    *,
    kind: RecipientKind,
    recipient: str,
    template: str,
    params: Mapping[str, str | int] | None = None,
    now: str,
    marketing_checked: bool = False,
) -> str:
    """Queue one message (to a user id, or to every active user of a role); returns its id.

    The PHI guard runs first: an unknown template, a missing, extra or mistyped parameter, or a
    link that is not made of route words and opaque ids raises Invalid and writes nothing.
    A marketing template is queued only by `Preferences.send_marketing`, which checked the
    opt-out and the suppression list (`marketing_checked`): no other path can skip them.
    """
    if template in MARKETING_TEMPLATES and not marketing_checked:
        raise Invalid(f"'{template}' is marketing: send it with send_marketing")
    find_template(template).check(dict(params or {}))
    kind = _check_recipient(kind, recipient)
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


def _check_recipient(kind: RecipientKind | str, recipient: str) -> RecipientKind:
    try:
        kind = RecipientKind(kind)
    except ValueError:
        raise Invalid("the recipient kind must be 'user' or 'role'") from None
    if kind is RecipientKind.ROLE:
        if recipient not in {role.value for role in Role}:
            raise Invalid("a role recipient must be one of the roles")
        return kind
    try:
        uuid.UUID(recipient)
    except ValueError:
        raise Invalid("a user recipient must be a user id") from None
    return kind
