"""What the account services share: the session check, failure counting (lockout.py),
second-factor checks and audit records (Action.LOGIN, ids and codes only)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, select, update

from carevault.audit.models import Action, Outcome
from carevault.clock import isoformat
from carevault.errors import Invalid, Unauthorized
from carevault.identity import lockout, passwords, sessions, totp
from carevault.identity.account_base import (
    AccountDeps,
    Client,
    set_factor_fields,
)
from carevault.identity.account_models import account_factors, webauthn_credentials
from carevault.identity.models import Actor, WorkforceFacts, tenants, users
from carevault.identity.permissions import (
    ROLE_PERMISSIONS,
    ROLE_PURPOSES,
    STANDING_PURPOSE_EXCLUDED,
    Purpose,
    Role,
)
from carevault.identity.sessions import SessionRow, Stage
from carevault.identity.webauthn_factor import CeremonyFailed, verify_authentication


class Who(Protocol):
    """The account a check is about: a session, or an actor's user (UserRef)."""

    @property
    def tenant_id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def email_hash(self) -> str: ...


@dataclass(frozen=True)
class UserRef:
    tenant_id: str
    user_id: str
    role: str
    email_hash: str


WRONG_CREDENTIALS = "the email or password is not right"
WRONG_CODE = "the code is not valid, or was already used"
WEBAUTHN_AUTH = "webauthn-auth"


@dataclass(frozen=True)
class SignIn:
    token: str
    session_id: str
    stage: Stage
    expires_at: str
    factors: tuple[str, ...] = ()
    """For the "mfa" stage: the kinds of second factor the account can give."""


@dataclass(frozen=True)
class WhoAmI:
    tenant_id: str
    user_id: str
    role: str
    purpose: str
    stage: str
    expires_at: str
    fresh_until: str | None
    factors: tuple[str, ...]


def allowed_purposes(role: Role) -> list[Purpose]:
    return [p for p in ROLE_PURPOSES[role] if p not in STANDING_PURPOSE_EXCLUDED]


class AccountCore:
    def __init__(self, deps: AccountDeps) -> None:
        self.deps = deps

    # -- sessions --------------------------------------------------------------

    def session(
        self, token: str | None, stages: set[Stage] | frozenset[Stage], client: Client
    ) -> SessionRow:
        """The live session behind a token, in one of the stages; else audited 401."""
        d = self.deps
        now = d.now()
        with d.reader.connect() as conn:
            row = sessions.lookup(conn, token)
        reason = "no such session" if row is None else sessions.why_not_live(row, now)
        if reason is None and row is not None and row.stage not in stages:
            reason = (
                "the session has not finished signing in"
                if row.stage is not Stage.ACTIVE
                else "the session is already signed in"
            )
        if reason is not None or row is None:
            tenant_id = self._existing_tenant(sessions.tenant_of(token))
            who = row.user_id if row else "anonymous"
            role = row.role if row else "none"
            d.refuse(tenant_id, self._rec(who, role, 401, f"session refused: {reason}", client))
            raise Unauthorized(f"sign in again: {reason}")
        if sessions.needs_touch(row, now):
            d.committer.submit(lambda c: sessions.touch(c, row, now))
        return row

    # -- helpers ----------------------------------------------------------------

    def _activate(
        self, conn: Connection, row: SessionRow, now: datetime, client: Client, detail: str
    ) -> sessions.Opened:
        opened = sessions.activate(conn, row, now)
        lockout.clear(conn, row.tenant_id, row.email_hash)
        self._signed_in(conn, row.tenant_id, row.user_id, now)
        self.deps.audit.append(
            conn,
            row.tenant_id,
            [self._rec(row.user_id, row.role, 200, detail, client, ids=(row.session_id,), ok=True)],
        )
        return opened

    def _refresh(
        self, conn: Connection, row: SessionRow, now: datetime, client: Client, detail: str
    ) -> str:
        """Mark the session freshly re-authenticated (audited); returns until when."""
        fresh = sessions.mark_fresh(conn, row, now)
        self.deps.audit.append(
            conn,
            row.tenant_id,
            [self._rec(row.user_id, row.role, 200, detail, client, ids=(row.session_id,), ok=True)],
        )
        return fresh

    def _signed_in(self, conn: Connection, tenant_id: str, user_id: str, now: datetime) -> None:
        set_factor_fields(conn, tenant_id, user_id, isoformat(now), last_sign_in_at=isoformat(now))
        self.deps.notify(conn, tenant_id, user_id, "new-sign-in")

    def _fail_for(self, row: Who, client: Client, detail: str) -> None:
        """A failed step of a known session's account: counted, throttled and audited."""
        self._fail(row.tenant_id, row.email_hash, row.user_id, row.role, client, detail)

    def _fail(
        self,
        tenant_id: str,
        email_hash: str,
        user_id: str | None,
        role: str,
        client: Client,
        detail: str,
    ) -> None:
        """Count a failure and audit it in one transaction; tell the holder when it escalates."""
        d = self.deps
        now = d.now()

        def work(conn: Connection) -> None:
            result = lockout.record_failure(conn, tenant_id, email_hash, now)
            if user_id is not None and result.escalation is lockout.Escalation.SLOWED:
                d.notify(conn, tenant_id, user_id, "sign-in-failures", count=result.failures)
            if user_id is not None and result.escalation is lockout.Escalation.LOCKED:
                minutes = int(lockout.LOCK_FOR.total_seconds() // 60)
                d.notify(conn, tenant_id, user_id, "account-locked", minutes=minutes)
            rec = self._rec(
                user_id or "anonymous",
                role,
                401,
                f"{detail} (failure {result.failures}, {result.escalation.value})",
                client,
            )
            d.audit.append(conn, tenant_id, [rec])

        d.committer.submit(work)

    def _throttle_check(self, row: Who, client: Client) -> None:
        d = self.deps
        with d.reader.connect() as conn:
            wait = lockout.wait_needed(conn, row.tenant_id, row.email_hash, d.now())
        if wait:
            d.refuse(
                row.tenant_id,
                self._rec(row.user_id, row.role, 429, "second factor throttled", client),
            )
            raise lockout.Throttled(wait)

    def _check_password(self, row: Who, password: str | None, client: Client) -> None:
        d = self.deps
        if password is not None and len(password) > passwords.MAX_LENGTH:
            d.refuse(
                row.tenant_id,
                self._rec(
                    row.user_id,
                    row.role,
                    400,
                    "re-authentication refused: over-long password",
                    client,
                ),
            )
            raise Invalid(f"passwords may have at most {passwords.MAX_LENGTH} characters")
        with d.reader.connect() as conn:
            stored = conn.execute(
                select(users.c.password_hash).where(
                    users.c.tenant_id == row.tenant_id, users.c.user_id == row.user_id
                )
            ).scalar_one_or_none()
        if not password or not stored or not passwords.verify_password(stored, password):
            self._fail_for(row, client, "re-authentication refused: wrong password")
            raise Unauthorized("the password is not right")

    def _totp_step(
        self, row: Who, sealed: bytes | None, last_step: int | None, code: str, now: datetime
    ) -> int | None:
        if sealed is None:
            raise Invalid("this account has no authenticator app; use a passkey")
        secret = self.deps.unseal(row.tenant_id, row.user_id, "totp", sealed)
        return totp.matching_step(secret, code, now, last_step)

    def _verify_assertion(self, row: SessionRow, response: dict[str, Any]) -> tuple[str, int]:
        from carevault.identity.webauthn_factor import credential_id_of

        if row.challenge_kind != WEBAUTHN_AUTH or row.challenge is None:
            raise CeremonyFailed("no passkey challenge is pending; start again")
        cred_id = credential_id_of(response)
        with self.deps.reader.connect() as conn:
            cred = conn.execute(
                select(webauthn_credentials).where(
                    webauthn_credentials.c.tenant_id == row.tenant_id,
                    webauthn_credentials.c.credential_id == cred_id,
                    webauthn_credentials.c.user_id == row.user_id,
                )
            ).one_or_none()
        if cred is None:
            raise CeremonyFailed("that passkey is not registered to this account")
        count = verify_authentication(
            self.deps.relying_party, response, row.challenge, cred.public_key, cred.sign_count
        )
        return cred_id, count

    def _user_ref(self, actor: Actor) -> UserRef:
        with self.deps.reader.connect() as conn:
            row = conn.execute(
                select(users.c.role, users.c.email_hash, users.c.active).where(
                    users.c.tenant_id == actor.tenant_id, users.c.user_id == actor.user_id
                )
            ).one_or_none()
        if row is None or not row.active:
            raise Unauthorized("no active account behind this actor")
        return UserRef(actor.tenant_id, actor.user_id, row.role, row.email_hash)

    @staticmethod
    def _purpose(role: Role, requested: str | None) -> Purpose | None:
        allowed = allowed_purposes(role)
        if requested is None:
            return allowed[0]
        return next((p for p in allowed if p.value == requested), None)

    def _tenant_id(self, slug: str) -> str | None:
        with self.deps.reader.connect() as conn:
            found = conn.execute(select(tenants.c.tenant_id).where(tenants.c.slug == slug)).first()
        return str(found.tenant_id) if found else None

    def _existing_tenant(self, tenant_id: str | None) -> str | None:
        if tenant_id is None:
            return None
        with self.deps.reader.connect() as conn:
            found = conn.execute(
                select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)
            ).first()
        return tenant_id if found else None

    def _rec(
        self,
        who: str,
        role: str,
        status: int,
        detail: str,
        client: Client,
        *,
        ids: tuple[str, ...] = (),
        ok: bool = False,
    ) -> Any:
        outcome = Outcome.SUCCESS if ok else (Outcome.INVALID if status == 400 else Outcome.DENIED)
        return self.deps.record(
            actor_id=who,
            role=role,
            action=Action.LOGIN,
            outcome=outcome,
            status=status,
            detail=detail,
            client=client,
            ids=ids,
        )

    def _anon(self, status: int, detail: str, client: Client) -> Any:
        return self._rec("anonymous", "none", status, detail, client)


def consume_step(conn: Connection, tenant_id: str, user_id: str, step: int) -> bool:
    """Record the accepted time-step, only if it is newer than the last (compare-and-set)."""
    result = conn.execute(
        update(account_factors)
        .where(
            account_factors.c.tenant_id == tenant_id,
            account_factors.c.user_id == user_id,
            (account_factors.c.totp_last_step.is_(None))
            | (account_factors.c.totp_last_step < step),
        )
        .values(totp_last_step=step)
    )
    return result.rowcount == 1


def actor_of(row: SessionRow) -> Actor:
    role = Role(row.role)
    return Actor(
        tenant_id=row.tenant_id,
        user_id=row.user_id,
        role=role,
        purpose=Purpose(row.purpose),
        permissions=ROLE_PERMISSIONS[role],
        patient_ids=frozenset({row.patient_id}) if row.patient_id else frozenset(),
        token_id=f"session:{row.session_id}",
        workforce=WorkforceFacts(
            row.practitioner_id, row.may_break_glass, row.policy.care_rule.value
        ),
    )
