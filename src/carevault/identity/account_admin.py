"""The account administrator's operations (permission identity:user:manage).

The tenant is always the acting administrator's own; every change and every refusal is
audited (Action.ADMIN). The listing shows account information only — the email, role,
status, factors, last sign-in and lock — never anything from a patient record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, delete, func, select, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Conflict, Forbidden, Invalid, NotFound
from carevault.identity import lockout, sessions
from carevault.identity.account_base import AccountDeps, Client, set_factor_fields
from carevault.identity.account_models import (
    account_factors,
    sign_in_throttle,
    webauthn_credentials,
)
from carevault.identity.models import Actor, TenantKind, tenants, users
from carevault.identity.passwords import PasswordRejected, hash_password
from carevault.identity.permissions import Permission, Role
from carevault.identity.service import IdentityService, Tenant
from carevault.identity.tenant_policy import CareRule, TenantPolicy, load_policy, store_policy

GRANTABLE = frozenset(Role) - {Role.VENDOR_OPERATOR}
"""A tenant's administrator cannot make vendor staff: the vendor names its own."""


@dataclass(frozen=True)
class AccountView:
    user_id: str
    email: str
    role: str
    active: bool
    mfa_enrolled: bool
    may_break_glass: bool
    last_sign_in_at: str | None
    locked_until: str | None
    created_at: str


class AccountAdmin:
    def __init__(self, deps: AccountDeps, identity: IdentityService) -> None:
        self.deps = deps
        self.identity = identity

    def list_users(self, actor: Actor, client: Client) -> list[AccountView]:
        self._require(actor, client, "list users")
        d = self.deps
        tid = actor.tenant_id
        now = isoformat(d.now())
        creds = (
            select(
                webauthn_credentials.c.user_id,
                func.count().label("n"),
            )
            .where(webauthn_credentials.c.tenant_id == tid)
            .group_by(webauthn_credentials.c.user_id)
            .subquery()
        )
        query = (
            select(
                users,
                account_factors.c.totp_sealed.is_not(None).label("has_totp"),
                account_factors.c.last_sign_in_at,
                creds.c.n,
                sign_in_throttle.c.locked_until,
            )
            .outerjoin(
                account_factors,
                (account_factors.c.tenant_id == users.c.tenant_id)
                & (account_factors.c.user_id == users.c.user_id),
            )
            .outerjoin(creds, creds.c.user_id == users.c.user_id)
            .outerjoin(
                sign_in_throttle,
                (sign_in_throttle.c.tenant_id == users.c.tenant_id)
                & (sign_in_throttle.c.email_hash == users.c.email_hash),
            )
            .where(users.c.tenant_id == tid)
            .order_by(users.c.created_at, users.c.user_id)
        )
        with d.reader.connect() as conn:
            rows = conn.execute(query).all()
        views = [
            AccountView(
                user_id=r.user_id,
                email=d.vault.open_for(
                    tid, "accounts", r.email_sealed, r.user_id.encode()
                ).decode(),
                role=r.role,
                active=bool(r.active),
                mfa_enrolled=bool(r.has_totp) or bool(r.n),
                may_break_glass=bool(r.may_break_glass),
                last_sign_in_at=r.last_sign_in_at,
                locked_until=r.locked_until if r.locked_until and r.locked_until > now else None,
                created_at=r.created_at,
            )
            for r in rows
        ]
        d.audit.commit(d.committer, tid, self._rec(actor, client, f"listed {len(views)} users"))
        return views

    def create_user(
        self,
        actor: Actor,
        email: str,
        role: str,
        password: str | None,
        client: Client,
        *,
        patient_id: str | None = None,
        admit: Callable[[str], str | None] | None = None,
    ) -> str:
        """A user of the actor's tenant; a patient account may be linked to its Patient, once
        `admit` (privacy/minor_accounts.py) allows it: a minor needs a guardian's permission."""
        self._require(actor, client, "create user")
        granted = self._grantable(actor, role, client)
        try:
            permission = self._portal(granted, patient_id, admit)
            user_id = self.identity.create_user(
                self._tenant(actor.tenant_id), email, granted, password=password,
                patient_id=patient_id, by=actor.user_id,
            )  # fmt: skip
        except CareVaultError as exc:
            self._refuse(actor, client, f"create user refused: {exc.message}", exc.status)
            raise
        if permission is not None:  # whose permission a minor's account rests on
            d = self.deps
            d.audit.commit(d.committer, actor.tenant_id, self._rec(
                actor, client, f"portal account for a minor, with the permission of the "
                f"guardian of representation {permission}", user_id,
            ))  # fmt: skip
        return user_id

    @staticmethod
    def _portal(
        role: Role, patient_id: str | None, admit: Callable[[str], str | None] | None
    ) -> str | None:
        if patient_id is None:
            return None
        if role is not Role.PATIENT:
            # A representative reaches a patient only through a verified representation.
            raise Invalid("only a patient account is linked to a patient")
        if admit is None:  # no path links a Patient without the age check
            raise Forbidden("linking a patient account needs the portal-account check")
        return admit(patient_id)

    def update_user(
        self,
        actor: Actor,
        user_id: str,
        client: Client,
        *,
        role: str | None = None,
        active: bool | None = None,
        may_break_glass: bool | None = None,
        admit: Callable[[str], str | None] | None = None,
    ) -> None:
        """Change role, enable/disable, or name as allowed to break glass. A role change or
        a disable ends every session of the user at once. Enabling a disabled patient
        account passes `admit` again, as its creation did: a minor needs a guardian's
        permission now, not the one given before (it may have been revoked since)."""
        self._require(actor, client, "update user")
        new_role = self._grantable(actor, role, client) if role is not None else None
        if user_id == actor.user_id and (new_role is not None or active is False):
            self._refuse(actor, client, "update refused: own role or status", 409)
            raise Conflict("administrators cannot change their own role or disable themselves")
        permission = None
        if active is True:
            try:
                permission = self._portal_again(actor, user_id, admit)
            except CareVaultError as exc:
                self._refuse(actor, client, f"update user refused: {exc.message}", exc.status)
                raise
        d = self.deps
        now = d.now()
        values: dict[str, Any] = {}
        if new_role is not None:
            values["role"] = new_role.value
        if active is not None:
            values["active"] = active
        if may_break_glass is not None:
            values["may_break_glass"] = may_break_glass
        if not values:
            raise Invalid("nothing to change: give role, active or may_break_glass")

        def work(conn: Connection) -> tuple[None, AuditRecord]:
            self._target(conn, actor, user_id)
            conn.execute(
                update(users)
                .where(users.c.tenant_id == actor.tenant_id, users.c.user_id == user_id)
                .values(**values)
            )
            ended = 0
            if new_role is not None or active is False:
                ended = sessions.end_all(conn, actor.tenant_id, user_id, now, "admin-change")
            changes = ", ".join(f"{k}={v}" for k, v in values.items())
            return None, self._rec(
                actor, client, f"user updated: {changes}; {ended} sessions ended", user_id
            )

        self._commit(actor, client, work, "update user")
        if permission is not None:
            d.audit.commit(d.committer, actor.tenant_id, self._rec(
                actor, client, f"portal account for a minor enabled, with the permission of "
                f"the guardian of representation {permission}", user_id,
            ))  # fmt: skip

    def _portal_again(
        self, actor: Actor, user_id: str, admit: Callable[[str], str | None] | None
    ) -> str | None:
        """The portal-account check for a disabled patient account about to be enabled."""
        with self.deps.reader.connect() as conn:
            row = conn.execute(
                select(users.c.role, users.c.active, users.c.patient_id).where(
                    users.c.tenant_id == actor.tenant_id, users.c.user_id == user_id
                )
            ).first()
        if row is None or row.active or row.patient_id is None:
            return None  # unknown (the update says so) or no portal account being enabled
        return self._portal(Role(row.role), row.patient_id, admit)

    def reset_mfa(self, actor: Actor, user_id: str, client: Client) -> None:
        """Remove every second factor of a user; they must enrol again at next sign-in."""
        self._require(actor, client, "reset mfa")
        d = self.deps
        now = d.now()

        def work(conn: Connection) -> tuple[None, AuditRecord]:
            self._target(conn, actor, user_id)
            set_factor_fields(
                conn,
                actor.tenant_id,
                user_id,
                isoformat(now),
                totp_sealed=None,
                totp_pending_sealed=None,
            )
            conn.execute(
                delete(webauthn_credentials).where(
                    webauthn_credentials.c.tenant_id == actor.tenant_id,
                    webauthn_credentials.c.user_id == user_id,
                )
            )
            ended = sessions.end_all(conn, actor.tenant_id, user_id, now, "mfa-reset")
            d.notify(conn, actor.tenant_id, user_id, "mfa-changed")
            return None, self._rec(
                actor, client, f"second factors reset; {ended} sessions ended", user_id
            )

        self._commit(actor, client, work, "reset mfa")

    def set_password(self, actor: Actor, user_id: str, password: str, client: Client) -> None:
        """Set a user's password (the `carevault user set-password` command): every session
        of the user ends, and the sign-in throttle of their email is cleared."""
        self._require(actor, client, "set password")
        try:
            new_hash = hash_password(password)
        except PasswordRejected as exc:
            self._refuse(actor, client, "set password refused: rejected password", 400)
            raise Invalid(str(exc)) from None
        now = self.deps.now()

        def work(conn: Connection) -> tuple[None, AuditRecord]:
            self._target(conn, actor, user_id)
            email_hash = conn.execute(
                update(users)
                .where(users.c.tenant_id == actor.tenant_id, users.c.user_id == user_id)
                .values(password_hash=new_hash)
                .returning(users.c.email_hash)
            ).scalar_one()
            lockout.clear(conn, actor.tenant_id, email_hash)
            ended = sessions.end_all(conn, actor.tenant_id, user_id, now, "password-set")
            return None, self._rec(actor, client, f"password set; {ended} sessions ended", user_id)

        self._commit(actor, client, work, "set password")

    def policy(self, actor: Actor, client: Client) -> TenantPolicy:
        self._require(actor, client, "read policy")
        with self.deps.reader.connect() as conn:
            return load_policy(conn, actor.tenant_id)

    def set_policy(
        self,
        actor: Actor,
        client: Client,
        *,
        care_rule: str,
        idle_minutes: int,
        absolute_minutes: int,
    ) -> TenantPolicy:
        self._require(actor, client, "set policy")
        try:
            policy = TenantPolicy(
                care_rule=CareRule(care_rule),
                session_idle=timedelta(minutes=idle_minutes),
                session_absolute=timedelta(minutes=absolute_minutes),
            )
        except ValueError as exc:
            message = (
                str(exc)
                if "limit" in str(exc) or "session" in str(exc)
                else "care_rule must be tenant-wide or care-team"
            )
            self._refuse(actor, client, f"policy refused: {message}", 400)
            raise Invalid(message) from None
        now = isoformat(self.deps.now())

        def work(conn: Connection) -> tuple[None, AuditRecord]:
            store_policy(conn, actor.tenant_id, policy, now)
            return None, self._rec(
                actor,
                client,
                f"policy set: {care_rule}, idle "
                f"{idle_minutes} min, absolute {absolute_minutes} min",
            )

        self._commit(actor, client, work, "set policy")
        return policy

    # -- helpers -----------------------------------------------------------------

    def authorize(self, actor: Actor, client: Client, what: str) -> None:
        """Refuse (audited) unless the actor manages accounts; checked before any input."""
        self._require(actor, client, what)

    def _require(self, actor: Actor, client: Client, what: str) -> None:
        if Permission.IDENTITY_USER_MANAGE not in actor.permissions:
            self._refuse(actor, client, f"{what} refused: no permission", 403)
            raise Forbidden("managing accounts needs the account administrator's permission")

    def _grantable(self, actor: Actor, role: str | None, client: Client) -> Role:
        try:
            granted = Role(role or "")
        except ValueError:
            self._refuse(actor, client, "role refused: unknown role", 400)
            raise Invalid("unknown role") from None
        if granted not in GRANTABLE:
            self._refuse(actor, client, f"role refused: {granted.value}", 403)
            raise Forbidden("that role is granted by the vendor, not by a tenant")
        return granted

    @staticmethod
    def _target(conn: Connection, actor: Actor, user_id: str) -> None:
        found = conn.execute(
            select(users.c.user_id).where(
                users.c.tenant_id == actor.tenant_id, users.c.user_id == user_id
            )
        ).first()
        if found is None:  # another tenant's user is exactly as missing as a made-up id
            raise NotFound("no user with that id in this tenant")

    def _commit(self, actor: Actor, client: Client, work: Any, what: str) -> None:
        d = self.deps
        try:
            d.audit.commit_with(d.committer, actor.tenant_id, work)
        except CareVaultError as exc:
            self._refuse(actor, client, f"{what} refused: {exc.message}", exc.status)
            raise

    def _tenant(self, tenant_id: str) -> Tenant:
        with self.deps.reader.connect() as conn:
            row = conn.execute(select(tenants).where(tenants.c.tenant_id == tenant_id)).one()
        return Tenant(row.tenant_id, row.slug, row.name, TenantKind(row.kind))

    def _rec(
        self,
        actor: Actor,
        client: Client,
        detail: str,
        user_id: str | None = None,
        status: int = 200,
    ) -> AuditRecord:
        ok = status < 300
        outcome = (
            Outcome.SUCCESS
            if ok
            else (Outcome.DENIED if status in (401, 403, 404) else Outcome.INVALID)
        )
        return self.deps.record(
            actor_id=actor.user_id,
            role=actor.kind,
            action=Action.ADMIN,
            outcome=outcome,
            status=status,
            detail=detail,
            client=client,
            resource_type="User",
            ids=(user_id,) if user_id else (),
            purpose=actor.purpose.value,
        )

    def _refuse(self, actor: Actor, client: Client, detail: str, status: int) -> None:
        self.deps.refuse(actor.tenant_id, self._rec(actor, client, detail, status=status))
