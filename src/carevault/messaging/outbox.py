"""Enqueue a notification inside the caller's transaction: it is sent only if the event commits."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import orjson
from sqlalchemy import Connection, delete, insert

from carevault.crypto.vault import Vault
from carevault.errors import Invalid
from carevault.identity.permissions import Role
from carevault.messaging.models import (
    MessageState,
    RecipientKind,
    notification_addresses,
    notification_outbox,
)
from carevault.messaging.recipients import ADDRESS_KEY, address_aad
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
    """Queue one message (to a user id, every active user of a role, or a kept address id);
    returns its id.

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


def keep_address(conn: Connection, vault: Vault, tenant_id: str, address: str, now: str) -> str:
    """Seal an address that belongs to no account, for `enqueue(kind=ADDRESS)`; returns its id.
    The row holds ciphertext only; `forget_address` erases it."""
    address_id = str(uuid.uuid4())
    sealed = vault.seal_for(
        tenant_id, ADDRESS_KEY, address.encode(), address_aad(tenant_id, address_id)
    )
    conn.execute(
        insert(notification_addresses).values(
            tenant_id=tenant_id, address_id=address_id, address_sealed=sealed, created_at=now
        )
    )
    return address_id


def forget_address(conn: Connection, tenant_id: str, address_id: str) -> None:
    """The address is gone; a message still queued for it fails as "no-recipient"."""
    a = notification_addresses.c
    conn.execute(
        delete(notification_addresses).where(a.tenant_id == tenant_id, a.address_id == address_id)
    )


def _check_recipient(kind: RecipientKind | str, recipient: str) -> RecipientKind:
    try:
        kind = RecipientKind(kind)
    except ValueError:
        raise Invalid("the recipient kind must be 'user', 'role' or 'address'") from None
    if kind is RecipientKind.ROLE:
        if recipient not in {role.value for role in Role}:
            raise Invalid("a role recipient must be one of the roles")
        return kind
    try:
        uuid.UUID(recipient)
    except ValueError:
        raise Invalid(f"a {kind.value} recipient must be an id") from None
    return kind
