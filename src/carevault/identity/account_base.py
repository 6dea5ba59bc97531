"""What the account services share: their dependencies, the caller's request facts, the
factor lookup, and audit records (ids and codes only, never an email or a secret)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine, insert, select, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import Vault
from carevault.identity.account_models import account_factors, webauthn_credentials
from carevault.identity.models import users
from carevault.identity.permissions import COMPARTMENT_ROLES, Role
from carevault.identity.webauthn_factor import RelyingParty
from carevault.messaging.models import RecipientKind
from carevault.messaging.outbox import enqueue

ACCOUNTS_KEY = "accounts"
WORKFORCE_ROLES = frozenset(Role) - COMPARTMENT_ROLES
"""Roles that must have a second factor before they get a session."""


@dataclass(frozen=True)
class Client:
    """Facts about the request, for the audit entry (the web layer cleans the user agent)."""

    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class Factors:
    totp_sealed: bytes | None = None
    totp_pending_sealed: bytes | None = None
    totp_last_step: int | None = None
    webauthn_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def kinds(self) -> tuple[str, ...]:
        return (("totp",) if self.totp_sealed else ()) + (
            ("webauthn",) if self.webauthn_ids else ()
        )

    @property
    def any(self) -> bool:
        return bool(self.kinds)


@dataclass(frozen=True)
class AccountDeps:
    reader: Engine
    committer: GroupCommitter
    vault: Vault
    clock: Clock
    audit: AuditRecorder
    relying_party: RelyingParty

    def now(self) -> datetime:
        return self.clock.now()

    def email_hash(self, tenant_id: str, email: str) -> str:
        # The same keyed hash IdentityService stores in users.email_hash.
        return self.vault.hasher(tenant_id).digest("account.email", email.strip().casefold())

    def seal(self, tenant_id: str, user_id: str, what: str, value: str) -> bytes:
        aad = f"{what}:{user_id}".encode()
        return self.vault.seal_for(tenant_id, ACCOUNTS_KEY, value.encode(), aad)

    def unseal(self, tenant_id: str, user_id: str, what: str, blob: bytes) -> str:
        aad = f"{what}:{user_id}".encode()
        return self.vault.open_for(tenant_id, ACCOUNTS_KEY, blob, aad).decode()

    def record(
        self,
        *,
        actor_id: str,
        role: str,
        action: Action,
        outcome: Outcome,
        status: int,
        detail: str,
        client: Client,
        ids: tuple[str, ...] = (),
        resource_type: str | None = "Session",
        purpose: str | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            recorded_at=isoformat(self.clock.now()),
            actor_id=actor_id,
            actor_role=role,
            action=action,
            outcome=outcome,
            status=status,
            purpose=purpose,
            resource_type=resource_type,
            resource_ids=ids,
            request_id=client.request_id,
            source_ip=client.source_ip,
            user_agent=client.user_agent,
            detail=detail,
        )

    def refuse(self, tenant_id: str | None, record: AuditRecord) -> None:
        """Audit a refusal in its own transaction (nothing else was written)."""
        self.audit.commit(self.committer, tenant_id or VENDOR_CHAIN, record)

    def notify(
        self, conn: Connection, tenant_id: str, user_id: str, template: str, **params: str | int
    ) -> None:
        enqueue(
            conn,
            tenant_id,
            kind=RecipientKind.USER,
            recipient=user_id,
            template=template,
            params=params,
            now=isoformat(self.clock.now()),
        )


def load_factors(conn: Connection, tenant_id: str, user_id: str) -> Factors:
    row = conn.execute(
        select(
            account_factors.c.totp_sealed,
            account_factors.c.totp_pending_sealed,
            account_factors.c.totp_last_step,
        ).where(account_factors.c.tenant_id == tenant_id, account_factors.c.user_id == user_id)
    ).one_or_none()
    creds = conn.execute(
        select(webauthn_credentials.c.credential_id)
        .where(
            webauthn_credentials.c.tenant_id == tenant_id,
            webauthn_credentials.c.user_id == user_id,
        )
        .order_by(webauthn_credentials.c.created_at)
    ).scalars()
    ids = tuple(str(c) for c in creds)
    if row is None:
        return Factors(webauthn_ids=ids)
    return Factors(row.totp_sealed, row.totp_pending_sealed, row.totp_last_step, ids)


def set_factor_fields(
    conn: Connection, tenant_id: str, user_id: str, now: str, **values: object
) -> None:
    """Update the user's account_factors row, creating it on first use."""
    key = (account_factors.c.tenant_id == tenant_id) & (account_factors.c.user_id == user_id)
    result = conn.execute(update(account_factors).where(key).values(updated_at=now, **values))
    if result.rowcount == 0:
        conn.execute(
            insert(account_factors).values(
                tenant_id=tenant_id, user_id=user_id, updated_at=now, **values
            )
        )


def user_row(conn: Connection, tenant_id: str, user_id: str) -> object | None:
    return conn.execute(
        select(users).where(users.c.tenant_id == tenant_id, users.c.user_id == user_id)
    ).one_or_none()
