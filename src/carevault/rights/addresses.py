"""Requesters with no account: "is this address yours?", and the link that reads their case.

A person who is not an account holder (a marketing contact, a site visitor who writes in) is
verified by proving they read the address they give: a check sends a one-use token to it
(sealed, opened only at send time), and the request carries the token back within
`CHECK_DAYS`. The case keeps the address sealed and as a keyed hash; its notices go to that
address with a link whose token is derived from the case id (HMAC under a vendor sub-key),
so a later notice can rebuild it and nothing secret is stored. No address is ever logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Connection, func, select, update

from carevault.clock import isoformat
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import Vault
from carevault.errors import Conflict, Forbidden, Invalid
from carevault.messaging.guard import check_link
from carevault.rights.cases import parse_instant
from carevault.rights.models import rights_email_checks

CHECK_DAYS = 3
"""A check's token is good until this many days after it was sent (inclusive)."""
MAX_OPEN_CHECKS = 3
"""Live, unused checks per address: no one can flood an address with our emails."""
CHECK_LINK = "/rights/email/confirm?token={token}"
CASE_LINK = "/rights/requests/{request_id}?token={token}"
ADDRESS_DOMAIN = "rights.requester-address"
_TOKEN_DOMAIN = "rights.email-check-token"  # noqa: S105 (a hash domain, not a secret)
_LINK_KEY = "rights-case-link"
_ADDRESS = re.compile(r"^[^\s@<>,;:\"]{1,64}@[A-Za-z0-9.-]{1,190}\.[A-Za-z]{2,24}$")
_DRAWS = 64


@dataclass(frozen=True)
class Confirmed:
    check_id: str
    address: str
    address_hash: str


def normalized(value: object) -> str:
    if not isinstance(value, str) or not _ADDRESS.match(value.strip()):
        raise Invalid("email must be an email address you can read (name@example.org)")
    return value.strip().casefold()


def address_hash(vault: Vault, address: str) -> str:
    return vault.hasher(VENDOR_CHAIN).digest(ADDRESS_DOMAIN, address)


def seal_address(vault: Vault, request_id: str, address: str) -> bytes:
    return vault.seal_for(VENDOR_CHAIN, "rights", address.encode(), _aad(request_id))


def open_address(vault: Vault, request_id: str, sealed: bytes) -> str:
    return vault.open_for(VENDOR_CHAIN, "rights", sealed, _aad(request_id)).decode()


def _aad(request_id: str) -> bytes:
    return f"{VENDOR_CHAIN}|rights|address|{request_id}".encode()


# -- the check ---------------------------------------------------------------------------


def new_token() -> str:
    """A random token the PHI guard takes for an opaque id (redrawn if it looks like a date)."""
    for _ in range(_DRAWS):
        token = secrets.token_urlsafe(24)
        try:
            check_link(CHECK_LINK.format(token=token))
        except Invalid:
            continue
        return token
    raise Invalid("could not make a confirmation link the PHI guard accepts")


def check_values(vault: Vault, address: str, token: str, now: str) -> tuple[str, dict[str, object]]:
    """(check id, the row to insert) for a check sent now to `address`."""
    check_id = str(uuid.uuid4())
    sealed = vault.seal_for(VENDOR_CHAIN, "rights", address.encode(), f"check|{check_id}".encode())
    row: dict[str, object] = {
        "tenant_id": VENDOR_CHAIN,
        "check_id": check_id,
        "address_hash": address_hash(vault, address),
        "address_sealed": sealed,
        "token_hash": vault.hasher(VENDOR_CHAIN).digest(_TOKEN_DOMAIN, token),
        "created_at": now,
        "expires_at": isoformat(parse_instant(now) + timedelta(days=CHECK_DAYS)),
    }
    return check_id, row


def within_open_checks(conn: Connection, vault: Vault, address: str, now: str) -> None:
    c = rights_email_checks.c
    live = conn.execute(
        select(func.count()).where(
            c.tenant_id == VENDOR_CHAIN,
            c.address_hash == address_hash(vault, address),
            c.used_at.is_(None),
            c.expires_at >= now,
        )
    ).scalar_one()
    if live >= MAX_OPEN_CHECKS:
        raise Conflict(
            f"{MAX_OPEN_CHECKS} confirmation emails to this address are still unused: use the "
            f"token of one of them, or ask again once they lapse ({CHECK_DAYS} days)"
        )


def confirmed(conn: Connection, vault: Vault, given: object, now: str) -> Confirmed:
    """The address a request's `email_check` ({"token"}, from the email's link) proves;
    refuses (403) a wrong, used or expired token without saying which."""
    token = given.get("token") if isinstance(given, dict) else None
    if not isinstance(token, str) or not 0 < len(token) <= 128:
        raise Invalid('email_check must hold the token from the email we sent: {"token": ...}')
    c = rights_email_checks.c
    digest = vault.hasher(VENDOR_CHAIN).digest(_TOKEN_DOMAIN, token)
    row = conn.execute(
        select(rights_email_checks).where(c.tenant_id == VENDOR_CHAIN, c.token_hash == digest)
    ).first()
    if row is None or row.used_at is not None or now > row.expires_at:
        raise Forbidden(
            "we could not verify that the address is yours: the token is wrong, was used "
            f"already, or is older than {CHECK_DAYS} days; ask for a new one "
            "(POST /rights/email-checks); nothing was disclosed"
        )
    aad = f"check|{row.check_id}".encode()
    plain = vault.open_for(VENDOR_CHAIN, "rights", row.address_sealed, aad)
    return Confirmed(row.check_id, plain.decode(), row.address_hash)


def use(conn: Connection, check_id: str, request_id: str, now: str) -> None:
    """Spend the check in the request's own transaction (compare-and-set: used once)."""
    c = rights_email_checks.c
    taken = conn.execute(
        update(rights_email_checks)
        .where(c.tenant_id == VENDOR_CHAIN, c.check_id == check_id, c.used_at.is_(None))
        .values(used_at=now, request_id=request_id)
    ).rowcount
    if taken != 1:
        raise Conflict("this confirmation token was used already; ask for a new one")


# -- the case's reading link ----------------------------------------------------------------


def case_token(vault: Vault, request_id: str) -> str:
    """The token in the case's link: derived, so every notice can rebuild it."""
    for draw in range(_DRAWS):
        token = _derived(vault, request_id, draw)
        try:
            check_link(CASE_LINK.format(request_id=request_id, token=token))
        except Invalid:
            continue
        return token
    raise Invalid("could not make a case link the PHI guard accepts")


def case_link(vault: Vault, request_id: str) -> str:
    return CASE_LINK.format(request_id=request_id, token=case_token(vault, request_id))


def token_opens(vault: Vault, request_id: str, token: object) -> bool:
    if not isinstance(token, str) or len(token) > 128:
        return False
    return any(
        hmac.compare_digest(token, _derived(vault, request_id, draw)) for draw in range(_DRAWS)
    )


def _derived(vault: Vault, request_id: str, draw: int) -> str:
    key = vault.subkey(VENDOR_CHAIN, _LINK_KEY)
    tag = hmac.new(key, f"{request_id}|{draw}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(tag).rstrip(b"=").decode()
