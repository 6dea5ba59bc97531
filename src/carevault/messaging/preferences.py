"""Communication preferences: marketing opt-out (one click or settings) and the suppression list.

- Every marketing email carries an unsubscribe link with a signed token: the tenant and user
  ids and a nonce, with an HMAC-SHA256 tag under a sub-key derived from the key store
  (`Vault.subkey(tenant, "unsubscribe-link")`). Opening it opts out with no sign-in; a token
  that does not verify is refused (400 malformed, 403 forged) and changes nothing. The token
  names no person: it is ids and a tag, so it may sit in a URL.
- Opting out also puts the address on the **suppression list**, kept only as a keyed hash
  (domain "marketing.suppression") "only to make sure no marketing is sent again": the hash
  outlives the account and its address.
- The preference row and the marketing sent to the person are their `marketing-contacts`
  data: once they opt out, the retention job deletes them after the policy's period from the
  opt-out (retention/marketing.py); a repeated opt-out does not restart that clock. The
  suppression hash stays, so the person still reads as opted out and marketing stays refused.
- Service messages (sign-in alerts, resets, "you have a new message") cannot be opted out of:
  they tell of the person's own account and record.
- `send_marketing` is the only way a marketing template is queued: it refuses (audited) a
  user who opted out or whose address is suppressed, then enqueues with the link.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    String,
    Table,
    delete,
    insert,
    select,
    update,
)

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.vault import Vault
from carevault.database import metadata
from carevault.errors import CareVaultError, Forbidden, Invalid, NotFound
from carevault.identity.models import Actor, tenants, users
from carevault.messaging import outbox
from carevault.messaging.guard import check_link
from carevault.messaging.models import RecipientKind

communication_preferences = Table(
    "communication_preferences",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("user_id", String(36), primary_key=True),
    Column("marketing_opt_out", Boolean, nullable=False),
    Column("updated_at", String(32), nullable=False),
    Column("source", String(16), nullable=False),  # "link" | "settings"
)

suppression_list = Table(
    "suppression_list",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("address_hash", String(64), primary_key=True),
    Column("added_at", String(32), nullable=False),
)

TOKEN_PURPOSE = "unsubscribe-link"  # noqa: S105 (a key-derivation label, not a secret)
SUPPRESSION_DOMAIN = "marketing.suppression"
LINK_PATH = "/unsubscribe"
"""Served by web/preferences_api.py; made of the guard's route words."""
_VERSION = b"unsub1"
_TAG_BYTES = 16


class MarketingRefused(Forbidden):
    """The recipient opted out of marketing, or their address is on the suppression list."""


@dataclass(frozen=True)
class PreferenceView:
    marketing: bool
    service: bool = True  # always: service messages cannot be turned off


class Preferences:
    def __init__(
        self,
        reader: Engine,
        committer: GroupCommitter,
        vault: Vault,
        clock: Clock,
        audit: AuditRecorder,
    ) -> None:
        self._reader, self._committer, self._vault = reader, committer, vault
        self._clock, self._audit = clock, audit

    # -- tokens ------------------------------------------------------------------------

    def token_for(self, tenant_id: str, user_id: str) -> str:
        """A fresh unsubscribe token; one that the PHI guard takes for an opaque id."""
        for _ in range(64):  # a few draws at most in practice; never loop forever
            ids = uuid.UUID(tenant_id).bytes + uuid.UUID(user_id).bytes
            body = ids + secrets.token_bytes(4)
            token = _b64(body + self._tag(tenant_id, body))
            try:
                check_link(f"{LINK_PATH}?token={token}")
            except Invalid:
                continue  # a random run looked like a date or a phone number: draw again
            return token
        raise Invalid("could not make an unsubscribe link the PHI guard accepts")

    def parse_token(self, token: str) -> tuple[str, str]:
        """(tenant id, user id) of a genuine token; Invalid if malformed, Forbidden if forged."""
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise Invalid("this unsubscribe link is malformed") from None
        if len(raw) != 36 + _TAG_BYTES:
            raise Invalid("this unsubscribe link is malformed")
        body, tag = raw[:36], raw[36:]
        tenant_id, user_id = str(uuid.UUID(bytes=body[:16])), str(uuid.UUID(bytes=body[16:32]))
        # An unknown tenant is forged too, and must not get a key made for it on first use.
        with self._reader.connect() as conn:
            known = conn.execute(
                select(tenants.c.tenant_id).where(tenants.c.tenant_id == tenant_id)
            ).first()
        if known is None or not hmac.compare_digest(tag, self._tag(tenant_id, body)):
            raise Forbidden("this unsubscribe link is not one we sent")
        return tenant_id, user_id

    def _tag(self, tenant_id: str, body: bytes) -> bytes:
        key = self._vault.subkey(tenant_id, TOKEN_PURPOSE)
        return hmac.new(key, _VERSION + body, hashlib.sha256).digest()[:_TAG_BYTES]

    # -- opting out ----------------------------------------------------------------------

    def unsubscribe(self, token: str) -> None:
        """One click, no sign-in: opt out of marketing and suppress the address."""
        try:
            tenant_id, user_id = self.parse_token(token)
        except CareVaultError as exc:
            self._commit_refusal(VENDOR_CHAIN, "link", "unsubscribe link refused", exc)
            raise
        try:
            self._set(tenant_id, user_id, user_id, "link", opt_out=True)
        except CareVaultError as exc:
            self._commit_refusal(tenant_id, user_id, "unsubscribe refused", exc)
            raise

    def update(
        self, actor: Actor, *, marketing: bool | None, service: bool | None
    ) -> PreferenceView:
        """From settings (signed in). Turning service messages off is refused."""
        try:
            if service is False:
                raise Invalid(
                    "service messages (sign-in alerts, password resets, new-message notices) "
                    "cannot be turned off; marketing can"
                )
            if marketing is None:
                raise Invalid("give marketing: true or false")
        except CareVaultError as exc:
            self._commit_refusal(actor.tenant_id, actor.user_id, "preferences refused", exc)
            raise
        self._set(actor.tenant_id, actor.user_id, actor.user_id, "settings", opt_out=not marketing)
        return self.view(actor)

    def view(self, actor: Actor) -> PreferenceView:
        with self._reader.connect() as conn:
            off = self._opted_out(conn, actor.tenant_id, actor.user_id) or self._suppressed(
                conn, actor.tenant_id, actor.user_id
            )
        return PreferenceView(not off)

    def _set(self, tenant_id: str, user_id: str, by: str, source: str, *, opt_out: bool) -> None:
        now = isoformat(self._clock.now())

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            address = self._address(conn, tenant_id, user_id)
            if address is None:
                raise NotFound("no such account")
            p = communication_preferences.c
            key = (p.tenant_id == tenant_id, p.user_id == user_id)
            values = {"marketing_opt_out": opt_out, "updated_at": now, "source": source}
            found = conn.execute(select(p.marketing_opt_out).where(*key)).first()
            if found is None:
                conn.execute(
                    insert(communication_preferences).values(
                        tenant_id=tenant_id, user_id=user_id, **values
                    )
                )
            elif not (opt_out and found.marketing_opt_out):
                # an opt-out again keeps the first one's time: the deletion clock runs from it
                conn.execute(update(communication_preferences).where(*key).values(**values))
            digest = self._suppression_hash(tenant_id, address)
            s = suppression_list.c
            if not opt_out:  # an explicit opt-in from settings takes the address off the list
                conn.execute(
                    delete(suppression_list).where(
                        s.tenant_id == tenant_id, s.address_hash == digest
                    )
                )
            else:
                if (
                    conn.execute(
                        select(s.address_hash).where(
                            s.tenant_id == tenant_id, s.address_hash == digest
                        )
                    ).first()
                    is None
                ):
                    conn.execute(
                        insert(suppression_list).values(
                            tenant_id=tenant_id, address_hash=digest, added_at=now
                        )
                    )
            what = "opted out of marketing" if opt_out else "opted in to marketing"
            return None, self._record(
                by, source, f"{what} ({source})", Outcome.SUCCESS, 200, user_id
            )

        self._audit.commit_with(self._committer, tenant_id, job)

    # -- sending -------------------------------------------------------------------------

    def send_marketing(self, tenant_id: str, user_id: str, template: str) -> str:
        """Queue one marketing message, unless the user opted out or is suppressed."""
        now = isoformat(self._clock.now())
        try:
            if template not in outbox.MARKETING_TEMPLATES:
                raise Invalid(f"'{template}' is not a marketing template")
        except CareVaultError as exc:
            self._commit_refusal(tenant_id, "marketing", "marketing send refused", exc)
            raise
        link = f"{LINK_PATH}?token={self.token_for(tenant_id, user_id)}"

        def job(conn: Connection) -> tuple[str, AuditRecord]:
            address = self._address(conn, tenant_id, user_id)
            if address is None:
                raise NotFound("no such account")
            if self._opted_out(conn, tenant_id, user_id):
                raise MarketingRefused("the recipient opted out of marketing")
            if self._suppressed(conn, tenant_id, user_id):
                raise MarketingRefused("the address is on the suppression list")
            message_id = outbox.enqueue(
                conn,
                tenant_id,
                kind=RecipientKind.USER,
                recipient=user_id,
                template=template,
                params={"link": link},
                now=now,
                marketing_checked=True,
            )
            return message_id, self._record(
                "marketing",
                "system",
                f"marketing queued: {template}",
                Outcome.SUCCESS,
                201,
                user_id,
            )

        try:
            return self._audit.commit_with(self._committer, tenant_id, job)
        except CareVaultError as exc:
            self._commit_refusal(tenant_id, "marketing", "marketing send refused", exc, user_id)
            raise

    # -- internals -----------------------------------------------------------------------

    def _opted_out(self, conn: Connection, tenant_id: str, user_id: str) -> bool:
        p = communication_preferences.c
        found = conn.execute(
            select(p.marketing_opt_out).where(p.tenant_id == tenant_id, p.user_id == user_id)
        ).scalar()
        return bool(found)

    def _suppressed(self, conn: Connection, tenant_id: str, user_id: str) -> bool:
        """The account's address is on the suppression list (False once it is erased)."""
        address = self._address(conn, tenant_id, user_id)
        if address is None:
            return False
        s = suppression_list.c
        digest = self._suppression_hash(tenant_id, address)
        found = conn.execute(
            select(s.address_hash).where(s.tenant_id == tenant_id, s.address_hash == digest)
        ).first()
        return found is not None

    def _address(self, conn: Connection, tenant_id: str, user_id: str) -> str | None:
        row = conn.execute(
            select(users.c.email_sealed).where(
                users.c.tenant_id == tenant_id, users.c.user_id == user_id
            )
        ).one_or_none()
        if row is None or not row.email_sealed:
            return None
        return self._vault.open_for(
            tenant_id, "accounts", row.email_sealed, user_id.encode()
        ).decode()

    def _suppression_hash(self, tenant_id: str, address: str) -> str:
        return self._vault.hasher(tenant_id).digest(SUPPRESSION_DOMAIN, address.strip().casefold())

    def _record(
        self,
        actor_id: str,
        role: str,
        detail: str,
        outcome: Outcome,
        status: int,
        user_id: str | None = None,
    ) -> AuditRecord:
        return AuditRecord(
            recorded_at=isoformat(self._clock.now()),
            actor_id=actor_id,
            actor_role=role,
            action=Action.ADMIN,
            outcome=outcome,
            status=status,
            resource_type="CommunicationPreference",
            resource_ids=(user_id,) if user_id else (),
            detail=detail,
        )

    def _commit_refusal(
        self, chain: str, actor_id: str, why: str, exc: CareVaultError, user_id: str | None = None
    ) -> None:
        outcome = {403: Outcome.DENIED, 404: Outcome.NOT_FOUND}.get(exc.status, Outcome.INVALID)
        record = self._record(
            actor_id,
            "link" if actor_id == "link" else "system",
            f"{why}: {type(exc).__name__}",
            outcome,
            exc.status,
            user_id,
        )
        self._audit.commit(self._committer, chain, record)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")
