"""The faces of a request made with no account: the email check that verifies the address,
and reading the case (and its copy) through the link its notices carry. Every step audited
on the vendor's chain by ids only: the address never enters a log, a URL or an audit entry.
Also the adapters' side of the deletion directions to service providers (directions.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, insert

from carevault.audit.models import Action as AuditAction
from carevault.audit.models import AuditRecord, RequestInfo
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.errors import CareVaultError, Forbidden, Invalid, NotFound
from carevault.identity.models import Actor
from carevault.messaging.outbox import keep_address
from carevault.rights import addresses, directions, notices
from carevault.rights.cases import officer_chain
from carevault.rights.models import RequestView, rights_email_checks
from carevault.rights.workflow import Workflow


class AddressRequests(Workflow):
    def send_email_check(self, body: object, who: RequestInfo) -> dict[str, str]:
        """Send a one-use token to the address given; the answer is the check's id and when
        it lapses (never whether we know the address)."""
        refusal: dict[str, Any] = {
            "action": AuditAction.CREATE,
            "resource_type": "RightsEmailCheck",
            "detail": "email check refused",
        }
        facts: dict[str, str] = {}

        def check() -> None:
            facts["address"] = addresses.normalized(
                body.get("email") if isinstance(body, dict) else None
            )

        def job(conn: Connection) -> tuple[dict[str, str], AuditRecord]:
            now, vault = self.now(), self._s.vault
            addresses.within_open_checks(conn, vault, facts["address"], now)
            token = addresses.new_token()
            check_id, values = addresses.check_values(vault, facts["address"], token, now)
            conn.execute(insert(rights_email_checks).values(**values))
            address_id = keep_address(conn, vault, VENDOR_CHAIN, facts["address"], now)
            notices.send_check(conn, address_id, addresses.CHECK_LINK.format(token=token), now)
            record = self.entry(
                None,
                who,
                action=AuditAction.CREATE,
                status=202,
                resource_type="RightsEmailCheck",
                resource_ids=(check_id,),
                detail=f"email check sent, good for {addresses.CHECK_DAYS} days",
            )
            return {"check_id": check_id, "expires_at": str(values["expires_at"])}, record

        return self.run(VENDOR_CHAIN, None, who, refusal, check, job)

    def get_by_link(self, request_id: str, token: object, who: RequestInfo) -> RequestView:
        """The case of a requester with no account, opened by its notices' link."""
        fields = self._link_fields(request_id, "rights request read by link")
        try:
            with self._s.reader.connect() as conn:
                row = self._linked_row(conn, request_id, token)
                view = self.view(conn, row, None)
                conn.rollback()
        except CareVaultError as exc:
            self.refused(VENDOR_CHAIN, None, who, exc, fields)
            raise
        self._s.audit.commit(self._s.committer, VENDOR_CHAIN, self.entry(None, who, **fields))
        return view

    def copy_by_link(
        self, request_id: str, token: object, form: str, who: RequestInfo
    ) -> tuple[str, bytes]:
        fields = self._link_fields(request_id, f"rights copy downloaded by link: {form[:16]}")
        try:
            with self._s.reader.connect() as conn:
                row = self._linked_row(conn, request_id, token)
                media_type, plain = self.stored_copy(conn, row, form)
                conn.rollback()
        except CareVaultError as exc:
            self.refused(VENDOR_CHAIN, None, who, exc, fields)
            raise
        self._s.audit.commit(self._s.committer, VENDOR_CHAIN, self.entry(None, who, **fields))
        return media_type, plain

    def _linked_row(self, conn: Connection, request_id: str, token: object) -> Any:
        """A wrong token reads exactly like a missing case (404)."""
        try:
            row = self.row(conn, VENDOR_CHAIN, request_id)
        except NotFound:
            raise NotFound("no such request") from None
        if row.requester_address_sealed is None or not addresses.token_opens(
            self._s.vault, request_id, token
        ):
            raise NotFound("no such request")
        return row

    @staticmethod
    def _link_fields(request_id: str, detail: str) -> dict[str, Any]:
        return {"action": AuditAction.READ, "resource_ids": (request_id,), "detail": detail}

    # -- the deletion directions, for the adapters that carry them to each provider -----

    def pending_directions(
        self, actor: Actor, recipient: str | None, who: RequestInfo
    ) -> list[dict[str, Any]]:
        """What is still to be sent (the vendor's operators, or a named system actor)."""
        fields: dict[str, Any] = {
            "action": AuditAction.SEARCH,
            "resource_type": "DeletionDirection",
            "detail": "deletion directions listed",
        }
        try:
            if officer_chain(actor) != VENDOR_CHAIN:
                raise Forbidden("deletion directions are the vendor's to send")
            with self._s.reader.connect() as conn:
                found = directions.pending(conn, recipient)
                conn.rollback()
        except CareVaultError as exc:
            self.refused(VENDOR_CHAIN, actor, who, exc, fields)
            raise
        fields["resource_ids"] = tuple(d["direction_id"] for d in found)
        self._s.audit.commit(self._s.committer, VENDOR_CHAIN, self.entry(actor, who, **fields))
        return found

    def mark_direction(self, actor: Actor, direction_id: str, state: str, who: RequestInfo) -> None:
        """An adapter's report: the direction was sent, or the provider confirmed deletion."""
        refusal: dict[str, Any] = {
            "resource_type": "DeletionDirection",
            "resource_ids": (direction_id,),
            "detail": "deletion direction report refused",
        }

        def check() -> None:
            if officer_chain(actor) != VENDOR_CHAIN:
                raise Forbidden("deletion directions are the vendor's to send")
            if state not in (directions.SENT, directions.CONFIRMED):
                raise Invalid("a direction is reported 'sent' or 'confirmed'")

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            directions.mark(conn, direction_id, state, self.now())
            record = self.entry(
                actor,
                who,
                resource_type="DeletionDirection",
                resource_ids=(direction_id,),
                detail=f"deletion direction {state}",
            )
            return None, record

        self.run(VENDOR_CHAIN, actor, who, refusal, check, job)
