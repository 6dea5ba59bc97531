"""What the vendor holds about one account holder, for a CCPA request to know or for a
portable copy: the specific pieces collected in the 12 months before the request (Cal. Civ.
Code 1798.110, 1798.130(a)(2)(B)), and, for a request to know, the categories, purposes and
recipients the policy names. Health information (PHI) is the practice's and is not here.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select

from carevault.clock import isoformat
from carevault.crypto.vault import Vault
from carevault.identity.account_base import ACCOUNTS_KEY
from carevault.identity.account_models import account_factors, sessions, webauthn_credentials
from carevault.identity.models import api_tokens, users
from carevault.messaging.models import notification_outbox
from carevault.policy import PrivacyPolicy
from carevault.policy.schema import CategoryKind
from carevault.rights.cases import parse_instant

LOOKBACK = timedelta(days=365)


def personal_information(
    conn: Connection, vault: Vault, tenant_id: str, user_id: str, received_at: str
) -> dict[str, Any]:
    since = isoformat(parse_instant(received_at) - LOOKBACK)
    user = conn.execute(
        select(users).where(users.c.tenant_id == tenant_id, users.c.user_id == user_id)
    ).first()
    if user is None:  # no account (a person who confirmed an address), or an erased one
        return {
            "period": {"from": since, "to": received_at},
            "account": None,
            "held": "no account and no marketing contact data under this request's address",
        }
    email = vault.open_for(tenant_id, ACCOUNTS_KEY, user.email_sealed, user_id.encode()).decode()
    factors = conn.execute(
        select(account_factors).where(
            account_factors.c.tenant_id == tenant_id, account_factors.c.user_id == user_id
        )
    ).first()
    phone = None
    if factors is not None and factors.phone_sealed is not None:
        phone = vault.open_for(
            tenant_id, ACCOUNTS_KEY, factors.phone_sealed, f"phone:{user_id}".encode()
        ).decode()
    passkeys = (
        conn.execute(
            select(webauthn_credentials.c.created_at).where(
                webauthn_credentials.c.tenant_id == tenant_id,
                webauthn_credentials.c.user_id == user_id,
            )
        )
        .scalars()
        .all()
    )
    s = sessions
    signed_in = conn.execute(
        select(s.c.created_at, s.c.ended_at, s.c.ended_reason)
        .where(s.c.tenant_id == tenant_id, s.c.user_id == user_id, s.c.created_at >= since)
        .order_by(s.c.created_at)
    ).all()
    tokens = conn.execute(
        select(api_tokens.c.created_at, api_tokens.c.expires_at, api_tokens.c.purpose).where(
            api_tokens.c.tenant_id == tenant_id,
            api_tokens.c.user_id == user_id,
            api_tokens.c.created_at >= since,
        )
    ).all()
    o = notification_outbox
    mails = conn.execute(
        select(o.c.created_at, o.c.template)
        .where(o.c.tenant_id == tenant_id, o.c.recipient == user_id, o.c.created_at >= since)
        .order_by(o.c.created_at)
    ).all()
    return {
        "period": {"from": since, "to": received_at},
        "account": {
            "user_id": user_id,
            "email": email,
            "role": user.role,
            "active": bool(user.active),
            "created_at": user.created_at,
        },
        "sign_in": {
            "phone": phone,
            "authenticator_app": bool(factors is not None and factors.totp_sealed),
            "passkeys_added": list(passkeys),
            "last_sign_in_at": factors.last_sign_in_at if factors is not None else None,
        },
        "sessions": [
            {"started": r.created_at, "ended": r.ended_at, "why": r.ended_reason} for r in signed_in
        ],
        "api_tokens": [
            {"created": r.created_at, "expires": r.expires_at, "purpose": r.purpose} for r in tokens
        ],
        "emails_sent": [{"at": r.created_at, "template": r.template} for r in mails],
    }


def categories_disclosure(policy: PrivacyPolicy) -> dict[str, Any]:
    """The categories, purposes and recipients, from the policy (the engine's only source)."""
    doc = policy.document
    personal = {k for k, c in doc.categories.items() if c.kind is CategoryKind.PERSONAL}
    return {
        "categories": {k: doc.categories[k].description for k in sorted(personal)},
        "purposes": {
            k: p.description for k, p in doc.purposes.items() if personal & set(p.categories)
        },
        "recipients": {
            k: r.description for k, r in doc.recipients.items() if personal & set(r.shares)
        },
        "sold": doc.sells_personal_information,
    }
