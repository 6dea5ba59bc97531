"""Password reset that never bypasses the second factor.

A request always gets the same answer (202) whether or not the email has an account; if it
has, a single-use random token (30 minutes) is mailed as a link. Confirming needs the
token AND a current second factor when the account has one; it sets the password, ends
every session of the account, and clears the sign-in throttle.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from carevault.audit.models import Action, Outcome
from carevault.clock import isoformat
from carevault.errors import Invalid, Unauthorized
from carevault.identity import lockout, passwords, sessions
from carevault.identity.account_base import Client, load_factors
from carevault.identity.account_core import WRONG_CODE, AccountCore, UserRef, consume_step
from carevault.identity.account_models import password_resets, webauthn_credentials
from carevault.identity.models import users
from carevault.identity.sessions import token_hash
from carevault.identity.webauthn_factor import (
    CeremonyFailed,
    authentication,
    credential_id_of,
    verify_authentication,
)

RESET_LIFETIME = timedelta(minutes=30)
BAD_LINK = "the reset link is not valid, was already used, or has expired"


class PasswordResets(AccountCore):
    def request_password_reset(self, tenant_slug: str, email: str, client: Client) -> None:
        """Always returns (the caller answers 202): nothing tells whether the email exists."""
        d = self.deps
        tenant_id = self._tenant_id(tenant_slug)
        if tenant_id is None:
            d.refuse(None, self._reset_rec("anonymous", "none", "reset asked: no tenant", client))
            return
        email_hash = d.email_hash(tenant_id, email)
        with d.reader.connect() as conn:
            user = conn.execute(
                select(users.c.user_id, users.c.role, users.c.active).where(
                    users.c.tenant_id == tenant_id, users.c.email_hash == email_hash
                )
            ).one_or_none()
        if user is None or not user.active:
            rec = self._reset_rec("anonymous", "none", "reset asked: no active account", client)
            d.refuse(tenant_id, rec)
            return
        secret = secrets.token_urlsafe(32)
        now = d.now()
        link = f"{d.relying_party.origin}/portal/reset-password/{tenant_id}#token={secret}"

        def work(conn: Connection) -> None:
            # A new link replaces any earlier one still unused.
            conn.execute(
                update(password_resets)
                .where(
                    password_resets.c.tenant_id == tenant_id,
                    password_resets.c.user_id == user.user_id,
                    password_resets.c.used_at.is_(None),
                )
                .values(used_at=isoformat(now))
            )
            conn.execute(
                insert(password_resets).values(
                    tenant_id=tenant_id,
                    reset_id=str(uuid.uuid4()),
                    user_id=user.user_id,
                    token_hash=token_hash(secret),
                    created_at=isoformat(now),
                    expires_at=isoformat(now + RESET_LIFETIME),
                    used_at=None,
                    challenge=None,
                )
            )
            d.notify(conn, tenant_id, user.user_id, "password-reset", link=link)
            rec = self._reset_rec(user.user_id, user.role, "password reset link sent", client)
            d.audit.append(conn, tenant_id, [rec])

        d.committer.submit(work)

    def reset_webauthn_begin(self, tenant_id: str, token: str, client: Client) -> dict[str, Any]:
        """For a passkey-only account: the assertion that must accompany the new password."""
        d = self.deps
        reset = self._live_reset(tenant_id, token, client)
        with d.reader.connect() as conn:
            factors = load_factors(conn, tenant_id, reset.user_id)
        if not factors.webauthn_ids:
            raise Invalid("this account has no passkey")
        ceremony = authentication(d.relying_party, list(factors.webauthn_ids))
        d.committer.submit(
            lambda c: c.execute(
                update(password_resets)
                .where(
                    password_resets.c.tenant_id == tenant_id,
                    password_resets.c.reset_id == reset.reset_id,
                )
                .values(challenge=ceremony.challenge)
            )
        )
        return ceremony.options

    def confirm_password_reset(
        self,
        tenant_id: str,
        token: str,
        new_password: str,
        client: Client,
        *,
        code: str | None = None,
        passkey: dict[str, Any] | None = None,
    ) -> None:
        d = self.deps
        if len(new_password) > passwords.MAX_LENGTH:  # refused before any hashing
            d.refuse(
                self._existing_tenant(tenant_id),
                self._reset_rec("anonymous", "none", "reset refused: over-long", client, 400),
            )
            raise Invalid(f"passwords may have at most {passwords.MAX_LENGTH} characters")
        reset = self._live_reset(tenant_id, token, client)
        with d.reader.connect() as conn:
            user = conn.execute(
                select(users.c.role, users.c.email_hash).where(
                    users.c.tenant_id == tenant_id, users.c.user_id == reset.user_id
                )
            ).one()
            factors = load_factors(conn, tenant_id, reset.user_id)
        who = UserRef(tenant_id, reset.user_id, user.role, user.email_hash)
        try:
            new_hash = passwords.hash_password(new_password)
        except passwords.PasswordRejected as exc:
            d.refuse(
                tenant_id,
                self._reset_rec(who.user_id, who.role, "reset refused: weak password", client, 400),
            )
            raise Invalid(str(exc)) from None
        self._throttle_check(who, client)
        step: int | None = None
        passkey_count: tuple[str, int] | None = None
        if factors.any:
            if passkey is not None and factors.webauthn_ids:
                passkey_count = self._reset_passkey(reset, passkey, who, client)
            else:
                step = self._totp_step(
                    who, factors.totp_sealed, factors.totp_last_step, code or "", d.now()
                )
                if step is None:
                    self._fail(
                        tenant_id,
                        who.email_hash,
                        who.user_id,
                        who.role,
                        client,
                        "password reset refused: wrong or missing code",
                    )
                    raise Unauthorized(WRONG_CODE)
        now = d.now()

        def work(conn: Connection) -> bool:
            used = conn.execute(
                update(password_resets)
                .where(
                    password_resets.c.tenant_id == tenant_id,
                    password_resets.c.reset_id == reset.reset_id,
                    password_resets.c.used_at.is_(None),
                )
                .values(used_at=isoformat(now), challenge=None)
            )
            if used.rowcount != 1:
                return False
            if step is not None and not consume_step(conn, tenant_id, who.user_id, step):
                raise Unauthorized(WRONG_CODE)
            if passkey_count is not None:
                conn.execute(
                    update(webauthn_credentials)
                    .where(
                        webauthn_credentials.c.tenant_id == tenant_id,
                        webauthn_credentials.c.credential_id == passkey_count[0],
                    )
                    .values(sign_count=passkey_count[1], last_used_at=isoformat(now))
                )
            conn.execute(
                update(users)
                .where(users.c.tenant_id == tenant_id, users.c.user_id == who.user_id)
                .values(password_hash=new_hash)
            )
            ended = sessions.end_all(conn, tenant_id, who.user_id, now, "password-reset")
            lockout.clear(conn, tenant_id, who.email_hash)
            rec = self._reset_rec(
                who.user_id, who.role, f"password reset; {ended} sessions ended", client
            )
            d.audit.append(conn, tenant_id, [rec])
            return True

        try:
            done = d.committer.submit(work)
        except Unauthorized:
            self._fail(
                tenant_id,
                who.email_hash,
                who.user_id,
                who.role,
                client,
                "password reset refused: replayed code",
            )
            raise
        if not done:
            d.refuse(
                tenant_id,
                self._reset_rec(
                    who.user_id, who.role, "reset refused: link already used", client, 400
                ),
            )
            raise Invalid(BAD_LINK)

    # -- helpers -----------------------------------------------------------------

    def _live_reset(self, tenant_id: str, token: str, client: Client) -> Any:
        d = self.deps
        known = self._existing_tenant(tenant_id if len(tenant_id) <= 36 else None)
        row = None
        if known is not None and 0 < len(token) <= 128:
            with d.reader.connect() as conn:
                row = conn.execute(
                    select(password_resets).where(
                        password_resets.c.tenant_id == known,
                        password_resets.c.token_hash == token_hash(token),
                    )
                ).one_or_none()
        if row is None or row.used_at is not None or row.expires_at <= isoformat(d.now()):
            who = row.user_id if row is not None else "anonymous"
            d.refuse(known, self._reset_rec(who, "none", "reset refused: bad link", client, 400))
            raise Invalid(BAD_LINK)
        return row

    def _reset_passkey(
        self, reset: Any, passkey: dict[str, Any], who: UserRef, client: Client
    ) -> tuple[str, int]:
        d = self.deps
        try:
            if reset.challenge is None:
                raise CeremonyFailed("start the passkey step of the reset first")
            cred_id = credential_id_of(passkey)
            with d.reader.connect() as conn:
                cred = conn.execute(
                    select(webauthn_credentials).where(
                        webauthn_credentials.c.tenant_id == who.tenant_id,
                        webauthn_credentials.c.credential_id == cred_id,
                        webauthn_credentials.c.user_id == who.user_id,
                    )
                ).one_or_none()
            if cred is None:
                raise CeremonyFailed("that passkey is not registered to this account")
            count = verify_authentication(
                d.relying_party, passkey, reset.challenge, cred.public_key, cred.sign_count
            )
        except CeremonyFailed as exc:
            self._fail(
                who.tenant_id,
                who.email_hash,
                who.user_id,
                who.role,
                client,
                f"password reset refused: {exc}",
            )
            raise Unauthorized(str(exc)) from None
        return cred_id, count

    def _reset_rec(
        self, who: str, role: str, detail: str, client: Client, status: int = 202
    ) -> Any:
        ok = status < 300
        return self.deps.record(
            actor_id=who,
            role=role,
            action=Action.LOGIN,
            outcome=Outcome.SUCCESS if ok else Outcome.INVALID,
            status=status,
            detail=detail,
            client=client,
            resource_type="User",
            ids=(who,) if who != "anonymous" else (),
        )
