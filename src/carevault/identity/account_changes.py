"""Second-factor enrolment (TOTP, passkeys), re-authentication, the step-up the consent
workflow asks for, and changes of email and phone.

Changing a factor, the email or the phone needs a "fresh" session (password and second
factor within the last 5 minutes) — except the first enrolment of a workforce user, which
is the "enrol" stage of sign-in itself. Each change notifies the account holder.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, insert, select, update

from carevault.audit.models import Action, Outcome
from carevault.clock import isoformat
from carevault.errors import Conflict, Forbidden, Invalid, Unauthorized
from carevault.identity import sessions, totp
from carevault.identity.account_base import Client, load_factors, set_factor_fields
from carevault.identity.account_core import (
    WRONG_CODE,
    AccountCore,
    SignIn,
    Who,
    consume_step,
)
from carevault.identity.account_models import webauthn_credentials
from carevault.identity.models import Actor, tenants, users
from carevault.identity.sessions import SessionRow, Stage
from carevault.identity.webauthn_factor import CeremonyFailed, registration, verify_registration

WEBAUTHN_REGISTER = "webauthn-reg"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{5,22}$")


class AccountChanges(AccountCore):
    # -- TOTP ------------------------------------------------------------------

    def totp_enrol(self, token: str | None, client: Client) -> str:
        """A new authenticator-app secret, sealed as pending; its otpauth URI, shown once."""
        d = self.deps
        row = self._changing_factors(token, client)
        secret = totp.new_secret()
        sealed = d.seal(row.tenant_id, row.user_id, "totp-pending", secret)
        now = isoformat(d.now())

        def work(conn: Connection) -> str:
            slug = conn.execute(
                select(tenants.c.slug).where(tenants.c.tenant_id == row.tenant_id)
            ).scalar_one()
            set_factor_fields(conn, row.tenant_id, row.user_id, now, totp_pending_sealed=sealed)
            self._audit_change(conn, row, "authenticator app enrolment started", client)
            return str(slug)

        slug = d.committer.submit(work)
        return totp.provisioning_uri(secret, f"{slug}-{row.user_id[:8]}")

    def totp_confirm(self, token: str | None, code: str, client: Client) -> SignIn | None:
        """The first code confirms the pending secret. In the "enrol" stage the session then
        becomes active under a new token (returned)."""
        d = self.deps
        row = self._changing_factors(token, client)
        now = d.now()
        with d.reader.connect() as conn:
            factors = load_factors(conn, row.tenant_id, row.user_id)
        if factors.totp_pending_sealed is None:
            raise Invalid("start the authenticator app enrolment first")
        secret = d.unseal(row.tenant_id, row.user_id, "totp-pending", factors.totp_pending_sealed)
        step = totp.matching_step(secret, code, now, None)
        if step is None:
            d.refuse(row.tenant_id, self._change_rec(row, 400, "code did not match", client))
            raise Invalid("the code does not match the new authenticator; try the next one")
        sealed = d.seal(row.tenant_id, row.user_id, "totp", secret)

        def work(conn: Connection) -> sessions.Opened | None:
            set_factor_fields(
                conn,
                row.tenant_id,
                row.user_id,
                isoformat(now),
                totp_sealed=sealed,
                totp_pending_sealed=None,
                totp_last_step=step,
            )
            d.notify(conn, row.tenant_id, row.user_id, "mfa-changed")
            self._audit_change(conn, row, "authenticator app enrolled", client)
            if row.stage is Stage.ENROL:
                return self._activate(conn, row, now, client, "signed in after enrolling")
            return None

        opened = d.committer.submit(work)
        return _signed_in(opened)

    # -- passkeys --------------------------------------------------------------

    def webauthn_register_begin(self, token: str | None, client: Client) -> dict[str, Any]:
        d = self.deps
        row = self._changing_factors(token, client)
        with d.reader.connect() as conn:
            factors = load_factors(conn, row.tenant_id, row.user_id)
        ceremony = registration(
            d.relying_party, row.user_id, f"user-{row.user_id[:8]}", list(factors.webauthn_ids)
        )
        d.committer.submit(
            lambda c: sessions.set_challenge(c, row, ceremony.challenge, WEBAUTHN_REGISTER)
        )
        return ceremony.options

    def webauthn_register_complete(
        self, token: str | None, response: dict[str, Any], client: Client
    ) -> SignIn | None:
        d = self.deps
        row = self._changing_factors(token, client)
        now = d.now()
        if row.challenge_kind != WEBAUTHN_REGISTER or row.challenge is None:
            raise Invalid("start the passkey registration first")
        try:
            cred = verify_registration(d.relying_party, response, row.challenge)
        except CeremonyFailed as exc:
            d.refuse(row.tenant_id, self._change_rec(row, 400, str(exc), client))
            raise Invalid(str(exc)) from None

        def work(conn: Connection) -> sessions.Opened | bool | None:
            if sessions.take_challenge(conn, row, WEBAUTHN_REGISTER) is None:
                return False
            taken = conn.execute(
                select(webauthn_credentials.c.user_id).where(
                    webauthn_credentials.c.tenant_id == row.tenant_id,
                    webauthn_credentials.c.credential_id == cred.credential_id,
                )
            ).first()
            if taken:
                raise Conflict("that passkey is already registered")
            conn.execute(
                insert(webauthn_credentials).values(
                    tenant_id=row.tenant_id,
                    credential_id=cred.credential_id,
                    user_id=row.user_id,
                    public_key=cred.public_key,
                    sign_count=cred.sign_count,
                    created_at=isoformat(now),
                    last_used_at=None,
                )
            )
            d.notify(conn, row.tenant_id, row.user_id, "mfa-changed")
            self._audit_change(conn, row, "passkey registered", client)
            if row.stage is Stage.ENROL:
                return self._activate(conn, row, now, client, "signed in after enrolling")
            return None

        try:
            result = d.committer.submit(work)
        except Conflict as exc:
            d.refuse(row.tenant_id, self._change_rec(row, 409, exc.message, client))
            raise
        if result is False:
            d.refuse(row.tenant_id, self._change_rec(row, 400, "no registration pending", client))
            raise Invalid("start the passkey registration again")
        return _signed_in(result if isinstance(result, sessions.Opened) else None)

    # -- re-authentication and step-up -------------------------------------------

    def reauthenticate(
        self, token: str | None, password: str, code: str | None, client: Client
    ) -> str:
        """Password and (if the account has an authenticator app) a code; returns until
        when the session is fresh. Passkey-only accounts use webauthn_complete instead."""
        d = self.deps
        row = self.session(token, {Stage.ACTIVE}, client)
        self._throttle_check(row, client)
        self._check_password(row, password, client)
        step = self._second_factor_step(row, code, client, passkey_hint=True)
        now = d.now()

        def work(conn: Connection) -> str | None:
            if step is not None and not consume_step(conn, row.tenant_id, row.user_id, step):
                return None
            return self._refresh(conn, row, now, client, "re-authenticated")

        fresh = d.committer.submit(work)
        if fresh is None:
            self._fail_for(row, client, "re-authentication refused: replayed code")
            raise Unauthorized(WRONG_CODE)
        return fresh

    def step_up(
        self, actor: Actor, password: str, code: str, client: Client, *, reason: str
    ) -> None:
        """Authenticated authorization (consent issue): the actor's password and a current
        TOTP code, whether or not their account needs a second factor to sign in. 403 if the
        account has no authenticator app yet (it must enrol one first); 401 if either is
        wrong. `reason` names what is being signed (no PHI); it goes into the audit entry."""
        who = self._user_ref(actor)
        self._throttle_check(who, client)
        self._check_password(who, password, client)
        self.verify_second_factor(actor, code, client, reason=reason, who=who)

    def verify_second_factor(
        self, actor: Actor, code: str, client: Client, *, reason: str, who: Who | None = None
    ) -> None:
        """Check and consume a TOTP code of the actor's account; audited either way."""
        d = self.deps
        who = who or self._user_ref(actor)
        now = d.now()
        with d.reader.connect() as conn:
            factors = load_factors(conn, who.tenant_id, who.user_id)
        if factors.totp_sealed is None:
            d.refuse(
                who.tenant_id,
                self._rec(
                    who.user_id, who.role, 403, f"step-up refused ({reason}): no factor", client
                ),
            )
            raise Forbidden("enrol an authenticator app before signing this")
        step = self._totp_step(who, factors.totp_sealed, factors.totp_last_step, code, now)

        def work(conn: Connection) -> bool:
            if step is None or not consume_step(conn, who.tenant_id, who.user_id, step):
                return False
            d.audit.append(
                conn,
                who.tenant_id,
                [
                    self._rec(
                        who.user_id,
                        who.role,
                        200,
                        f"step-up passed: {reason}",
                        client,
                        ids=(who.user_id,),
                        ok=True,
                    )
                ],
            )
            return True

        if not d.committer.submit(work):
            self._fail(
                who.tenant_id,
                who.email_hash,
                who.user_id,
                who.role,
                client,
                f"step-up refused ({reason}): wrong or replayed code",
            )
            raise Unauthorized(WRONG_CODE)

    # -- email and phone ---------------------------------------------------------

    def change_email(self, token: str | None, email: str, client: Client) -> None:
        d = self.deps
        row = self._fresh(token, client, "email change")
        email = email.strip()
        if not _EMAIL.match(email) or len(email) > 254:
            raise Invalid("that is not an email address")
        email_hash = d.email_hash(row.tenant_id, email)
        sealed = d.vault.seal_for(row.tenant_id, "accounts", email.encode(), row.user_id.encode())

        def work(conn: Connection) -> None:
            taken = conn.execute(
                select(users.c.user_id).where(
                    users.c.tenant_id == row.tenant_id, users.c.email_hash == email_hash
                )
            ).first()
            if taken:
                raise Conflict("that email is already used by an account in this tenant")
            # Told before the change: the notice is addressed while the old email stands.
            d.notify(conn, row.tenant_id, row.user_id, "email-changed")
            conn.execute(
                update(users)
                .where(users.c.tenant_id == row.tenant_id, users.c.user_id == row.user_id)
                .values(email_hash=email_hash, email_sealed=sealed)
            )
            self._audit_change(conn, row, "sign-in email changed", client)

        try:
            d.committer.submit(work)
        except Conflict as exc:
            d.refuse(row.tenant_id, self._change_rec(row, 409, exc.message, client))
            raise

    def change_phone(self, token: str | None, phone: str, client: Client) -> None:
        d = self.deps
        row = self._fresh(token, client, "phone change")
        phone = phone.strip()
        if not _PHONE.match(phone):
            raise Invalid("that is not a phone number")
        sealed = d.seal(row.tenant_id, row.user_id, "phone", phone)

        def work(conn: Connection) -> None:
            set_factor_fields(
                conn, row.tenant_id, row.user_id, isoformat(d.now()), phone_sealed=sealed
            )
            d.notify(conn, row.tenant_id, row.user_id, "phone-changed")
            self._audit_change(conn, row, "phone number changed", client)

        d.committer.submit(work)

    # -- helpers -------------------------------------------------------------------

    def _changing_factors(self, token: str | None, client: Client) -> SessionRow:
        row = self.session(token, {Stage.ENROL, Stage.ACTIVE}, client)
        if row.stage is Stage.ACTIVE and not sessions.is_fresh(row, self.deps.now()):
            self._refuse_stale(row, client, "factor change")
        return row

    def _fresh(self, token: str | None, client: Client, what: str) -> SessionRow:
        row = self.session(token, {Stage.ACTIVE}, client)
        if not sessions.is_fresh(row, self.deps.now()):
            self._refuse_stale(row, client, what)
        return row

    def _refuse_stale(self, row: SessionRow, client: Client, what: str) -> None:
        self.deps.refuse(
            row.tenant_id,
            self._change_rec(row, 403, f"{what} refused: re-authentication needed", client),
        )
        raise Forbidden("re-authenticate (password and second factor) before this change")

    def _second_factor_step(
        self, row: SessionRow, code: str | None, client: Client, *, passkey_hint: bool
    ) -> int | None:
        d = self.deps
        with d.reader.connect() as conn:
            factors = load_factors(conn, row.tenant_id, row.user_id)
        if factors.totp_sealed is None:
            if factors.webauthn_ids and passkey_hint:
                raise Invalid("this account re-authenticates with its passkey")
            return None
        step = self._totp_step(
            row, factors.totp_sealed, factors.totp_last_step, code or "", d.now()
        )
        if step is None:
            self._fail_for(row, client, "re-authentication refused: wrong or replayed code")
            raise Unauthorized(WRONG_CODE)
        return step

    def _change_rec(self, row: SessionRow, status: int, detail: str, client: Client) -> Any:
        outcome = Outcome.DENIED if status in (401, 403) else Outcome.INVALID
        return self.deps.record(
            actor_id=row.user_id,
            role=row.role,
            action=Action.ADMIN,
            outcome=outcome,
            status=status,
            detail=detail,
            client=client,
            ids=(row.user_id,),
            resource_type="User",
        )

    def _audit_change(self, conn: Connection, row: SessionRow, detail: str, client: Client) -> None:
        rec = self.deps.record(
            actor_id=row.user_id,
            role=row.role,
            action=Action.ADMIN,
            outcome=Outcome.SUCCESS,
            status=200,
            detail=detail,
            client=client,
            ids=(row.user_id,),
            resource_type="User",
        )
        self.deps.audit.append(conn, row.tenant_id, [rec])


def _signed_in(opened: sessions.Opened | None) -> SignIn | None:
    if opened is None:
        return None
    return SignIn(opened.token, opened.session_id, Stage.ACTIVE, opened.expires_at)
