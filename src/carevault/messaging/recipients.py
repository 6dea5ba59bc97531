"""Who a message goes to: a user's address if the account is active, every active user of a
role in the tenant, or one sealed address that belongs to no account (a person who wrote in).
Addresses are opened from the sealed columns only here, at send time."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, select

from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import Vault
from carevault.identity.models import tenants, users
from carevault.messaging.models import RecipientKind, notification_addresses

ADDRESS_KEY = "message-addresses"
VENDOR_NAME = "CareVault"  # the sender's name on the vendor's own messages


def address_aad(tenant_id: str, address_id: str) -> bytes:
    return f"{tenant_id}|address|{address_id}".encode()


@dataclass(frozen=True)
class Recipient:
    user_id: str  # for a sealed address: its address id (delivery records name ids only)
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
    if kind is RecipientKind.ADDRESS:
        return _sealed_address(conn, vault, tenant_id, recipient)
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


def _sealed_address(conn: Connection, vault: Vault, tenant_id: str, address_id: str) -> Resolution:
    a = notification_addresses.c
    sealed = conn.execute(
        select(a.address_sealed).where(a.tenant_id == tenant_id, a.address_id == address_id)
    ).scalar()
    if tenant_id == VENDOR_CHAIN:
        name = VENDOR_NAME
    else:
        found = conn.execute(select(tenants.c.name).where(tenants.c.tenant_id == tenant_id))
        name = str(found.scalar() or "")
    if not sealed:  # erased since it was queued: nobody to write to
        return Resolution(name, (), "no-recipient")
    plain = vault.open_for(tenant_id, ADDRESS_KEY, sealed, address_aad(tenant_id, address_id))
    return Resolution(name, (Recipient(address_id, plain.decode()),))
