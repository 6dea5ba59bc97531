"""AccountService: sign-in (password, then a second factor), sessions and sign-out.

Every success and every refusal is audited (Action.LOGIN). An unknown tenant or email gets
the same answer, after the same Argon2id work, as a wrong password; throttling is counted
per email hash, so it tells nothing apart either. Factor enrolment, re-authentication,
step-up and sensitive changes are in account_changes.py; administration in
account_admin.py; password reset in password_reset.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select, update

from carevault.clock import isoformat
from carevault.errors import Invalid, Unauthorized
from carevault.identity import lockout, passwords, sessions
from carevault.identity.account_admin import AccountAdmin
from carevault.identity.account_base import WORKFORCE_ROLES, AccountDeps, Client, load_factors
from carevault.identity.account_changes import AccountChanges
from carevault.identity.account_core import (
    WEBAUTHN_AUTH,
    WRONG_CODE,
    WRONG_CREDENTIALS,
    SignIn,
    WhoAmI,
    actor_of,
    allowed_purposes,
    consume_step,
)
from carevault.identity.account_models import webauthn_credentials
from carevault.identity.models import Actor, users
from carevault.identity.password_reset import PasswordResets
from carevault.identity.permissions import Role
from carevault.identity.service import IdentityService
from carevault.identity.sessions import Stage
from carevault.identity.tenant_policy import load_policy
from carevault.identity.webauthn_factor import CeremonyFailed, authentication


class AccountService(AccountChanges, PasswordResets):
    def __init__(self, deps: AccountDeps, identity: IdentityService) -> None:
        super().__init__(deps)
        self.admin = AccountAdmin(deps, identity)

    # -- sign-in ---------------------------------------------------------------

    def sign_in(
        self, tenant_slug: str, email: str, password: str, purpose: str | None, client: Client
    ) -> SignIn:
        d = self.deps
        tenant_id = self._tenant_id(tenant_slug)
        if len(password) > passwords.MAX_LENGTH:  # refused before any hashing
            d.refuse(tenant_id, self._anon(400, "sign-in refused: over-long password", client))
            raise Invalid(f"passwords may have at most {passwords.MAX_LENGTH} characters")
        if tenant_id is None:
            passwords.verify_dummy(password)
            d.refuse(None, self._anon(401, "sign-in refused: unknown tenant", client))
            raise Unauthorized(WRONG_CREDENTIALS)
        email_hash = d.email_hash(tenant_id, email)
        now = d.now()
        with d.reader.connect() as conn:
            wait = lockout.wait_needed(conn, tenant_id, email_hash, now)
            user = conn.execute(
                select(users).where(
                    users.c.tenant_id == tenant_id, users.c.email_hash == email_hash
                )
            ).one_or_none()
            factors = load_factors(conn, tenant_id, user.user_id) if user else None
        who = user.user_id if user else "anonymous"
        role = user.role if user else "none"
        if wait:
            d.refuse(tenant_id, self._rec(who, role, 429, "sign-in throttled", client))
            raise lockout.Throttled(wait)
        if user is not None and user.active and user.password_hash:
            ok = passwords.verify_password(user.password_hash, password)
        else:
            passwords.verify_dummy(password)
            ok = False
        if not ok:
            self._fail(
                tenant_id,
                email_hash,
                user.user_id if user else None,
                role,
                client,
                "sign-in refused: wrong email or password",
            )
            raise Unauthorized(WRONG_CREDENTIALS)
        assert user is not None
        assert factors is not None
        user_role = Role(user.role)
        chosen = self._purpose(user_role, purpose)
        if chosen is None:
            d.refuse(tenant_id, self._rec(who, role, 400, "sign-in refused: purpose", client))
            names = ", ".join(p.value for p in allowed_purposes(user_role))
            raise Invalid(f"this account may claim only these purposes of use: {names}")
        if factors.any:
            stage = Stage.MFA
        elif user_role in WORKFORCE_ROLES:
            stage = Stage.ENROL
        else:
            stage = Stage.ACTIVE

        def work(conn: Connection) -> sessions.Opened:
            lockout.clear(conn, tenant_id, email_hash)
            opened = sessions.open_session(
                conn,
                tenant_id,
                who,
                stage=stage,
                purpose=chosen.value,
                now=now,
                policy=load_policy(conn, tenant_id),
            )
            if stage is Stage.ACTIVE:
                self._signed_in(conn, tenant_id, who, now)
            detail = {
                Stage.ACTIVE: "signed in",
                Stage.MFA: "password accepted; second factor due",
                Stage.ENROL: "password accepted; must enrol a factor",
            }
            d.audit.append(
                conn,
                tenant_id,
                [
                    self._rec(
                        who, role, 200, detail[stage], client, ids=(opened.session_id,), ok=True
                    )
                ],
            )
            return opened

        opened = d.committer.submit(work)
        return SignIn(opened.token, opened.session_id, stage, opened.expires_at, factors.kinds)

    def second_factor(self, token: str | None, code: str, client: Client) -> SignIn:
        """The TOTP step of sign-in: the session becomes active under a new token."""
        d = self.deps
        row = self.session(token, {Stage.MFA}, client)
        now = d.now()
        self._throttle_check(row, client)
        with d.reader.connect() as conn:
            factors = load_factors(conn, row.tenant_id, row.user_id)
        step = self._totp_step(row, factors.totp_sealed, factors.totp_last_step, code, now)
        if step is None:
            self._fail_for(row, client, "second factor refused: wrong or replayed code")
            raise Unauthorized(WRONG_CODE)

        def work(conn: Connection) -> sessions.Opened | None:
            if not consume_step(conn, row.tenant_id, row.user_id, step):
                return None  # a concurrent request used the same code first
            return self._activate(conn, row, now, client, "signed in with an authenticator code")

        opened = d.committer.submit(work)
        if opened is None:
            self._fail_for(row, client, "second factor refused: replayed code")
            raise Unauthorized(WRONG_CODE)
        return SignIn(opened.token, opened.session_id, Stage.ACTIVE, opened.expires_at)

    def webauthn_begin(self, token: str | None, client: Client) -> dict[str, Any]:
        """Start a passkey assertion: for the sign-in step, or to re-authenticate."""
        d = self.deps
        row = self.session(token, {Stage.MFA, Stage.ACTIVE}, client)
        with d.reader.connect() as conn:
            factors = load_factors(conn, row.tenant_id, row.user_id)
        if not factors.webauthn_ids:
            raise Invalid("this account has no passkey")
        ceremony = authentication(d.relying_party, list(factors.webauthn_ids))
        d.committer.submit(
            lambda c: sessions.set_challenge(c, row, ceremony.challenge, WEBAUTHN_AUTH)
        )
        return ceremony.options

    def webauthn_complete(
        self, token: str | None, response: dict[str, Any], password: str | None, client: Client
    ) -> SignIn | str:
        """Finish a passkey assertion. In the "mfa" stage: the new active session. In an
        active session (with the password): re-authentication; returns fresh_until."""
        d = self.deps
        row = self.session(token, {Stage.MFA, Stage.ACTIVE}, client)
        now = d.now()
        self._throttle_check(row, client)
        if row.stage is Stage.ACTIVE:
            self._check_password(row, password, client)
        try:
            new_count = self._verify_assertion(row, response)
        except CeremonyFailed as exc:
            self._fail_for(row, client, f"second factor refused: {exc}")
            raise Unauthorized(str(exc)) from None
        cred_id, count = new_count

        def work(conn: Connection) -> sessions.Opened | str | None:
            if sessions.take_challenge(conn, row, WEBAUTHN_AUTH) is None:
                return None
            conn.execute(
                update(webauthn_credentials)
                .where(
                    webauthn_credentials.c.tenant_id == row.tenant_id,
                    webauthn_credentials.c.credential_id == cred_id,
                )
                .values(sign_count=count, last_used_at=isoformat(now))
            )
            if row.stage is Stage.MFA:
                return self._activate(conn, row, now, client, "signed in with a passkey")
            return self._refresh(conn, row, now, client, "re-authenticated with a passkey")

        result = d.committer.submit(work)
        if result is None:
            self._fail_for(row, client, "second factor refused: no passkey challenge pending")
            raise Unauthorized("start the passkey step again")
        if isinstance(result, str):
            return result
        return SignIn(result.token, result.session_id, Stage.ACTIVE, result.expires_at)

    # -- sessions ---------------------------------------------------------------

    def authenticate_session(self, token: str) -> Actor:
        """The actor an active session stands for (FHIR API, admin API); Unauthorized if none.

        Like IdentityService.authenticate, the caller audits the refusal."""
        d = self.deps
        now = d.now()
        with d.reader.connect() as conn:
            row = sessions.lookup(conn, token)
        if row is None:
            raise Unauthorized("the session is not valid")
        if (reason := sessions.why_not_live(row, now)) is not None:
            raise Unauthorized(reason)
        if row.stage is not Stage.ACTIVE:
            raise Unauthorized("the session has not finished signing in")
        if sessions.needs_touch(row, now):
            d.committer.submit(lambda c: sessions.touch(c, row, now))
        return actor_of(row)

    def whoami(self, token: str | None, client: Client) -> WhoAmI:
        row = self.session(token, set(Stage), client)
        with self.deps.reader.connect() as conn:
            factors = load_factors(conn, row.tenant_id, row.user_id)
        return WhoAmI(
            row.tenant_id,
            row.user_id,
            row.role,
            row.purpose,
            row.stage.value,
            row.expires_at,
            row.fresh_until,
            factors.kinds,
        )

    def sign_out(self, token: str | None, client: Client, *, everywhere: bool = False) -> int:
        d = self.deps
        row = self.session(token, set(Stage), client)
        now = d.now()

        def work(conn: Connection) -> int:
            if everywhere:
                count = sessions.end_all(conn, row.tenant_id, row.user_id, now, "sign-out-all")
            else:
                count = int(sessions.end(conn, row.tenant_id, row.session_id, now, "sign-out"))
            detail = f"signed out everywhere ({count} sessions)" if everywhere else "signed out"
            d.audit.append(
                conn,
                row.tenant_id,
                [
                    self._rec(
                        row.user_id, row.role, 200, detail, client, ids=(row.session_id,), ok=True
                    )
                ],
            )
            return count

        return d.committer.submit(work)
