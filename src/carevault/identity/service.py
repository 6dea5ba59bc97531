"""Tenants, users and bearer tokens: create, authenticate, revoke. Every change is audited."""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, bindparam, insert, select, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import Vault
from carevault.errors import Conflict, Invalid, NotFound, Unauthorized
from carevault.identity.models import (
    Actor,
    TenantKind,
    WorkforceFacts,
    api_tokens,
    tenants,
    users,
)
from carevault.identity.passwords import PasswordRejected, hash_password
from carevault.identity.permissions import (
    COMPARTMENT_ROLES,
    ROLE_PURPOSES,
    STANDING_PURPOSE_EXCLUDED,
    Purpose,
    Role,
    token_permissions,
)
from carevault.identity.scopes import DEFAULT_SCOPES, ScopeError, permissions_for
from carevault.identity.tenant_policy import tenant_policies

CLI_ACTOR = "system:cli"
"""Who administration is recorded as when it comes from the command line."""
SESSION_PREFIX = "cvs1"  # sign-in sessions (identity/sessions.py)
TOKEN_PREFIX = "cv1"  # noqa: S105 (a format marker, not a secret)
MAX_TOKEN_LIFETIME = timedelta(days=366)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DURATION = re.compile(r"^(\d+)([mhd])$")


@dataclass(frozen=True)
class Tenant:
    tenant_id: str
    slug: str
    name: str
    kind: TenantKind


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    expires_at: str


def token_hash(token: str) -> str:
    # Tokens carry 256 random bits: a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(token.encode()).hexdigest()


def parse_expiry(text: str, now: datetime) -> datetime:
    """'90m', '12h', '30d' or an ISO date-time; at most a year ahead."""
    if match := _DURATION.match(text.strip()):
        amount, unit = int(match[1]), match[2]
        delta = {
            "m": timedelta(minutes=amount),
            "h": timedelta(hours=amount),
            "d": timedelta(days=amount),
        }[unit]
        expires = now + delta
    else:
        try:
            expires = datetime.fromisoformat(text)
        except ValueError:
            raise Invalid("expiry must look like 90m, 12h, 30d or an ISO date-time") from None
        if expires.tzinfo is None:
            raise Invalid("an ISO expiry needs a timezone (e.g. 2027-01-01T00:00:00+00:00)")
    if expires <= now:
        raise Invalid("the expiry must be in the future")
    if expires - now > MAX_TOKEN_LIFETIME:
        raise Invalid("tokens live at most a year")
    return expires


_TOKEN_LOOKUP = (
    select(
        api_tokens,
        users.c.role,
        users.c.active,
        users.c.patient_id,
        users.c.practitioner_id,
        users.c.may_break_glass,
        tenant_policies.c.care_rule,
    )
    .join(
        users,
        (users.c.tenant_id == api_tokens.c.tenant_id) & (users.c.user_id == api_tokens.c.user_id),
    )
    .outerjoin(tenant_policies, tenant_policies.c.tenant_id == api_tokens.c.tenant_id)
    .where(
        api_tokens.c.tenant_id == bindparam("tenant_id"),
        api_tokens.c.token_hash == bindparam("token_hash"),
    )
)
"""Built once: every API request runs it."""


class IdentityService:
    def __init__(
        self,
        reader: Engine,
        committer: GroupCommitter,
        vault: Vault,
        clock: Clock,
        audit: AuditRecorder,
    ) -> None:
        self._reader = reader
        self._committer = committer
        self._vault = vault
        self._clock = clock
        self._audit = audit
        self.session_authenticator: Callable[[str], Actor] | None = None
        """Set by Runtime: resolves `cvs1.` sign-in session tokens (identity/accounts.py)."""

    # -- tenants -------------------------------------------------------------

    def create_tenant(
        self, slug: str, name: str, kind: TenantKind, *, by: str = CLI_ACTOR
    ) -> Tenant:
        if not _SLUG.match(slug):
            raise Invalid(
                "a slug is 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit"
            )
        if not name.strip():
            raise Invalid("a tenant needs a name")
        tenant = Tenant(str(uuid.uuid4()), slug, name.strip(), kind)
        now = isoformat(self._clock.now())

        def work(conn: Connection) -> None:
            if conn.execute(select(tenants.c.tenant_id).where(tenants.c.slug == slug)).first():
                raise Conflict(f"a tenant with slug '{slug}' exists")
            conn.execute(
                insert(tenants).values(
                    tenant_id=tenant.tenant_id,
                    slug=slug,
                    name=tenant.name,
                    kind=kind.value,
                    created_at=now,
                )
            )
            self._audit.start_chain(conn, tenant.tenant_id)
            record = self._admin_record(by, now, "tenant created", (tenant.tenant_id,), "Tenant")
            self._audit.append(conn, tenant.tenant_id, [record])
            self._audit.append(conn, VENDOR_CHAIN, [record])

        self._committer.submit(work)
        return tenant

    def tenant_by_slug(self, slug: str) -> Tenant:
        with self._reader.connect() as conn:
            row = conn.execute(select(tenants).where(tenants.c.slug == slug)).one_or_none()
        if row is None:
            raise NotFound(f"no tenant with slug '{slug}'")
        return Tenant(row.tenant_id, row.slug, row.name, TenantKind(row.kind))

    def tenant(self, tenant_id: str) -> Tenant:
        with self._reader.connect() as conn:
            row = conn.execute(
                select(tenants).where(tenants.c.tenant_id == tenant_id)
            ).one_or_none()
        if row is None:
            raise NotFound("no such tenant")
        return Tenant(row.tenant_id, row.slug, row.name, TenantKind(row.kind))

    def list_tenants(self) -> list[Tenant]:
        with self._reader.connect() as conn:
            rows = conn.execute(select(tenants).order_by(tenants.c.slug)).all()
        return [Tenant(r.tenant_id, r.slug, r.name, TenantKind(r.kind)) for r in rows]

    # -- users ---------------------------------------------------------------

    def create_user(
        self,
        tenant: Tenant,
        email: str,
        role: Role,
        *,
        password: str | None = None,
        patient_id: str | None = None,
        by: str = CLI_ACTOR,
    ) -> str:
        email = email.strip()
        if not _EMAIL.match(email):
            raise Invalid("that is not an email address")
        if patient_id is not None and role not in COMPARTMENT_ROLES:
            raise Invalid("only patient and representative users are linked to a patient")
        try:
            password_hash = hash_password(password) if password is not None else None
        except PasswordRejected as exc:
            raise Invalid(str(exc)) from None
        user_id = str(uuid.uuid4())
        now = isoformat(self._clock.now())
        email_hash = self._email_hash(tenant.tenant_id, email)
        sealed = self._vault.seal_for(
            tenant.tenant_id, "accounts", email.encode(), user_id.encode()
        )

        def work(conn: Connection) -> None:
            taken = conn.execute(
                select(users.c.user_id).where(
                    users.c.tenant_id == tenant.tenant_id, users.c.email_hash == email_hash
                )
            ).first()
            if taken:
                raise Conflict("a user with that email exists in this tenant")
            conn.execute(
                insert(users).values(
                    tenant_id=tenant.tenant_id,
                    user_id=user_id,
                    email_hash=email_hash,
                    email_sealed=sealed,
                    role=role.value,
                    password_hash=password_hash,
                    patient_id=patient_id,
                    active=True,
                    created_at=now,
                )
            )
            record = self._admin_record(
                by, now, f"user created, role {role.value}", (user_id,), "User"
            )
            self._audit.append(conn, tenant.tenant_id, [record])

        self._committer.submit(work)
        return user_id

    def user_id_by_email(self, tenant: Tenant, email: str) -> str:
        email_hash = self._email_hash(tenant.tenant_id, email.strip())
        with self._reader.connect() as conn:
            row = conn.execute(
                select(users.c.user_id).where(
                    users.c.tenant_id == tenant.tenant_id, users.c.email_hash == email_hash
                )
            ).first()
        if row is None:
            raise NotFound("no user with that email in this tenant")
        return str(row.user_id)

    # -- tokens --------------------------------------------------------------

    def create_token(
        self,
        tenant: Tenant,
        user_id: str,
        *,
        scopes: tuple[str, ...] = (),
        purpose: Purpose | None = None,
        expires: str = "30d",
        by: str = CLI_ACTOR,
    ) -> IssuedToken:
        now_dt = self._clock.now()
        expires_at = isoformat(parse_expiry(expires, now_dt))
        scopes = scopes or DEFAULT_SCOPES
        try:
            permissions_for(scopes)
        except ScopeError as exc:
            raise Invalid(str(exc)) from None
        with self._reader.connect() as conn:
            row = conn.execute(
                select(users.c.role, users.c.active).where(
                    users.c.tenant_id == tenant.tenant_id, users.c.user_id == user_id
                )
            ).one_or_none()
        if row is None or not row.active:
            raise NotFound("no active user with that id in this tenant")
        role = Role(row.role)
        allowed = [p for p in ROLE_PURPOSES[role] if p not in STANDING_PURPOSE_EXCLUDED]
        purpose = purpose or allowed[0]
        if purpose not in allowed:
            names = ", ".join(p.value for p in allowed)
            raise Invalid(f"a {role.value} may claim only these purposes of use: {names}")
        token_id = str(uuid.uuid4())
        token = f"{TOKEN_PREFIX}.{tenant.tenant_id}.{secrets.token_urlsafe(32)}"
        now = isoformat(now_dt)

        def work(conn: Connection) -> None:
            conn.execute(
                insert(api_tokens).values(
                    tenant_id=tenant.tenant_id,
                    token_id=token_id,
                    user_id=user_id,
                    token_hash=token_hash(token),
                    scopes=" ".join(scopes),
                    purpose=purpose.value,
                    created_at=now,
                    expires_at=expires_at,
                    revoked_at=None,
                )
            )
            record = self._admin_record(
                by, now, f"token created for user {user_id}", (token_id,), "ApiToken"
            )
            self._audit.append(conn, tenant.tenant_id, [record])

        self._committer.submit(work)
        return IssuedToken(token, token_id, expires_at)

    def revoke_token(self, tenant: Tenant, token_id: str, *, by: str = CLI_ACTOR) -> None:
        now = isoformat(self._clock.now())

        def work(conn: Connection) -> None:
            result = conn.execute(
                update(api_tokens)
                .where(
                    api_tokens.c.tenant_id == tenant.tenant_id,
                    api_tokens.c.token_id == token_id,
                    api_tokens.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            if result.rowcount == 0:
                raise NotFound("no live token with that id in this tenant")
            record = self._admin_record(by, now, "token revoked", (token_id,), "ApiToken")
            self._audit.append(conn, tenant.tenant_id, [record])

        self._committer.submit(work)

    def authenticate(self, token: str | None) -> Actor:
        """The actor a bearer token stands for; Unauthorized for anything else.

        The refusal is raised here; the caller audits it (it knows the request).
        """
        if not token:
            raise Unauthorized("a bearer token is required")
        if token.startswith(SESSION_PREFIX + ".") and self.session_authenticator is not None:
            return self.session_authenticator(token)
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != TOKEN_PREFIX:
            raise Unauthorized("the bearer token is not valid")
        tenant_id = parts[1]
        with self._reader.connect() as conn:
            key = {"tenant_id": tenant_id, "token_hash": token_hash(token)}
            row = conn.execute(_TOKEN_LOOKUP, key).one_or_none()
        if row is None:
            raise Unauthorized("the bearer token is not valid")
        if row.revoked_at is not None:
            raise Unauthorized("the bearer token was revoked")
        if row.expires_at <= isoformat(self._clock.now()):
            raise Unauthorized("the bearer token has expired")
        if not row.active:
            raise Unauthorized("the account behind this token is disabled")
        role = Role(row.role)
        purpose = Purpose(row.purpose)
        if purpose not in ROLE_PURPOSES[role]:
            raise Unauthorized("the token's purpose of use is no longer allowed for its role")
        permissions = token_permissions(role, permissions_for(tuple(row.scopes.split())))
        patients = frozenset({row.patient_id}) if row.patient_id else frozenset()
        return Actor(
            tenant_id=tenant_id,
            user_id=row.user_id,
            role=role,
            purpose=purpose,
            permissions=permissions,
            patient_ids=patients,
            token_id=row.token_id,
            workforce=WorkforceFacts(row.practitioner_id, bool(row.may_break_glass), row.care_rule),
        )

    def tenant_of_token(self, token: str | None) -> str:
        """The tenant a (possibly bad) token names, if that tenant exists; else the vendor chain."""
        parts = (token or "").split(".")
        if len(parts) == 3 and parts[0] in (TOKEN_PREFIX, SESSION_PREFIX):
            with self._reader.connect() as conn:
                found = conn.execute(
                    select(tenants.c.tenant_id).where(tenants.c.tenant_id == parts[1])
                ).first()
            if found is not None:
                return parts[1]
        return VENDOR_CHAIN

    def audit_refusal(self, tenant_id: str, record: AuditRecord) -> None:
        self._audit.commit(self._committer, tenant_id, record)

    # -- helpers -------------------------------------------------------------

    def _email_hash(self, tenant_id: str, email: str) -> str:
        return self._vault.hasher(tenant_id).digest("account.email", email.casefold())

    @staticmethod
    def _admin_record(
        by: str, now: str, detail: str, ids: tuple[str, ...], resource_type: str
    ) -> AuditRecord:
        return AuditRecord(
            recorded_at=now,
            actor_id=by,
            actor_role="system",
            action=Action.ADMIN,
            outcome=Outcome.SUCCESS,
            resource_type=resource_type,
            resource_ids=ids,
            detail=detail,
        )
