"""A verified CCPA deletion erases the vendor's own personal information about the person
(Cal. Civ. Code 1798.105): the account's identity and sign-in (address, password, second
factors, passkeys, reset requests), its usage records (sessions, API tokens) and its
marketing contact data (the preference and the marketing sent). It is erased at once, not
inactivated: the answer lists what went and what stayed, and why.

What stays, because a law or the policy requires it: the suppression list's keyed hash
("a record that you asked us not to send you marketing"), the request's own record (kept 24
months, Cal. Code Regs. tit. 11, 7101), the audit trail (ids only; 45 CFR 164.316), a
tombstone of the account (its id, role and creation date, which that trail names), and the
record of notices owed under HIPAA. PHI is never touched: it is the tenant's (router.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select

from carevault.crypto.vault import Vault
from carevault.identity.erasure import delete_usage, erase_identity
from carevault.messaging.models import notification_deliveries, notification_outbox
from carevault.messaging.preferences import (
    SUPPRESSION_DOMAIN,
    communication_preferences,
    suppression_list,
)
from carevault.retention.marketing import marketing_sent_to
from carevault.retention.models import account_inactivations
from carevault.rights.verification import account_address

KEPT_REQUEST = (
    "this request's own record (what was asked, when, how we verified you and what we did), "
    "with the address we answer you at: the law requires it for 24 months "
    "(Cal. Code Regs. tit. 11, 7101)"
)
KEPT_AUDIT = "the audit trail of the account (ids and times only), which the law requires"
KEPT_PHI = (
    "health information (PHI) is your provider's record under HIPAA, not ours to delete: "
    "ask your provider (a HIPAA request)"
)


def erase_account(
    conn: Connection, vault: Vault, tenant_id: str, user_id: str, categories: list[str], now: str
) -> dict[str, Any]:
    """Erase, inside the caller's transaction; returns {"deleted": {...}, "kept": [...]}."""
    deleted: dict[str, int | str] = {}
    kept: list[str] = []
    address = account_address(conn, vault, tenant_id, user_id)
    if "account" in categories:
        deleted |= erase_identity(conn, tenant_id, user_id)
        deleted["account_identity"] = "address, password, second factors, links"
        _mark_erased(conn, tenant_id, user_id, now)
        kept.append(
            "a tombstone of the account (its id, role and creation date) that the audit "
            "trail names, with nothing that identifies you"
        )
        kept.append(
            "the record of service notices sent to the account (template and time, no "
            "address): your provider's documentation of notices it owes (45 CFR 164.530(j))"
        )
    elif "usage" in categories:
        deleted |= delete_usage(conn, tenant_id, user_id)
    if "account" in categories or "marketing-contacts" in categories:
        deleted |= _marketing(conn, tenant_id, user_id)
    if address is not None and _suppressed(conn, vault, tenant_id, address):
        kept.append(
            "your address's keyed hash on the marketing suppression list, only so that no "
            "marketing is ever sent to it again"
        )
    kept += [KEPT_REQUEST, KEPT_AUDIT, KEPT_PHI]
    return {"deleted": deleted, "kept": kept}


def nothing_held(categories: list[str]) -> dict[str, Any]:
    """A person with no account: we hold no account or marketing data under their address."""
    return {
        "deleted": {},
        "held": "no account and no marketing contact data under the address you confirmed",
        "kept": [KEPT_REQUEST, KEPT_AUDIT],
        "categories": categories,
    }


def _marketing(conn: Connection, tenant_id: str, user_id: str) -> dict[str, int | str]:
    o, d, p = notification_outbox.c, notification_deliveries.c, communication_preferences.c
    theirs = marketing_sent_to(tenant_id, user_id)
    messages = select(o.message_id).where(theirs).scalar_subquery()
    deliveries = conn.execute(
        delete(notification_deliveries).where(d.tenant_id == tenant_id, d.message_id.in_(messages))
    ).rowcount
    sent = conn.execute(delete(notification_outbox).where(theirs)).rowcount
    preference = conn.execute(
        delete(communication_preferences).where(p.tenant_id == tenant_id, p.user_id == user_id)
    ).rowcount
    return {
        "marketing_preference": preference,
        "marketing_messages": sent,
        "marketing_deliveries": deliveries,
    }


def _suppressed(conn: Connection, vault: Vault, tenant_id: str, address: str) -> bool:
    digest = vault.hasher(tenant_id).digest(SUPPRESSION_DOMAIN, address.strip().casefold())
    s = suppression_list.c
    found = conn.execute(
        select(s.address_hash).where(s.tenant_id == tenant_id, s.address_hash == digest)
    ).first()
    return found is not None


def _mark_erased(conn: Connection, tenant_id: str, user_id: str, now: str) -> None:
    """The retention job reads this: the account is erased, nothing is left to wait for."""
    a = account_inactivations.c
    conn.execute(
        delete(account_inactivations).where(a.tenant_id == tenant_id, a.user_id == user_id)
    )
    conn.execute(
        insert(account_inactivations).values(
            tenant_id=tenant_id,
            user_id=user_id,
            inactivated_at=now,
            inactivated_by="system:rights",
            keep_until=now,
            erased=True,
        )
    )
