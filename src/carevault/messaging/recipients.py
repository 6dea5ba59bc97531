"""Who a message goes to: a user's address if the account is active, or every active user of a
role in the tenant. Addresses are opened from the sealed column only here, at send time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from carevault.crypto.vault import Vault
from carevault.identity.models import tenants, users
from carevault.messaging.models import RecipientKind


@dataclass(frozen=True)
class Recipient:
    user_id: str
    address: str


@dataclass(frozen=True)
class Resolution:
    tenant_name: str
    recipients: tuple[Recipient, ...]
    missing: str | None = None
    """Why nobody could be reached (a reason code), when recipients is empty."""


def resolve(
    conn: Connection, vault: Vault, tenant_id: str, kind: RecipientKind, recipient: str
) -> Resolution:
    name = conn.execute(select(tenants.c.name).where(tenants.c.tenant_id == tenant_id)).scalar()
    query = select(users.c.user_id, users.c.email_sealed, users.c.active).where(
        users.c.tenant_id == tenant_id
    )
    if kind is RecipientKind.USER:
        query = query.where(users.c.user_id == recipient)
    else:
        query = query.where(users.c.role == recipient).order_by(users.c.user_id)
    rows = conn.execute(query).all()
    found = tuple(
        Recipient(
            row.user_id,
            vault.open_for(tenant_id, "accounts", row.email_sealed, row.user_id.encode()).decode(),
        )
        for row in rows
        if row.active
    )
    missing = None
    if not found:
        missing = "inactive" if rows else "no-recipient"
    return Resolution(str(name or ""), found, missing)
