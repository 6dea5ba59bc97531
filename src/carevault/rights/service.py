"""Rights requests as tracked cases: received → verified → (extended) → decided → fulfilled,
each step audited in the transaction that takes it and told to the requester in writing.

The router names the rulebook (HIPAA: the tenant decides; CCPA: the vendor decides); the
policy's right gives the clock (deadline, one extension, how many per 12 months). Time is
the injected clock's, so every deadline is tested by moving it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update

from carevault.audit.models import Action as AuditAction
from carevault.audit.models import AuditRecord, RequestInfo
from carevault.clock import isoformat
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.errors import CareVaultError, Conflict, Forbidden, Invalid, Unprocessable
from carevault.identity.models import Actor, tenants
from carevault.messaging.outbox import keep_address
from carevault.policy import PrivacyPolicy
from carevault.privacy.gate import Gate
from carevault.privacy.services import GateServices
from carevault.rights import addresses, intake, notices, verification
from carevault.rights.amendment import check_amendable
from carevault.rights.cases import Cases, officer_chain, parse_instant, plus_days
from carevault.rights.models import (
    OPEN_STATUSES,
    NoticeKind,
    QueueItem,
    RequestView,
    Route,
    Rulebook,
    Status,
    rights_requests,
)
from carevault.rights.router import route
from carevault.rights.verification import account_address

PolicySource = Callable[[], PrivacyPolicy]
PORTABILITY_FAMILY = (
    "ccpa-know",
    "ccpa-access",
    "ccpa-portability",
)  # the "twice in 12 months" limit is shared
LIMITED = {
    **dict.fromkeys(PORTABILITY_FAMILY, PORTABILITY_FAMILY),
    "ca-shine-the-light": ("ca-shine-the-light",),  # once a year (Cal. Civ. Code 1798.83)
}
"""Rights whose `max_per_12_months` counts, and the rights counted with each."""
LOOKBACK = timedelta(days=365)


def b2b_excluded(policy: PrivacyPolicy) -> bool:
    """Whether the policy withholds CCPA rights from business contacts (B2B). The policy
    schema has no such field yet; a profile that adds `rights_b2b_excluded` is honoured."""
    return bool(getattr(policy.document, "rights_b2b_excluded", False))


class RightsCore(Cases):
    def __init__(
        self,
        services: GateServices,
        gate: Callable[[Actor], Gate],
        policy: PolicySource,
        *,
        b2b: Callable[[PrivacyPolicy], bool] = b2b_excluded,
    ) -> None:
        super().__init__(services)
        self._gate = gate
        self._policy = policy
        self._b2b = b2b

    # -- intake -------------------------------------------------------------------

    def receive(
        self, actor: Actor | None, body: object, who: RequestInfo
    ) -> tuple[RequestView, Route]:
        """Route, verify and open a case; the answer names the rulebook and who decides."""
        request_id = str(uuid.uuid4())
        facts: dict[str, Any] = {}
        chain = actor.tenant_id if actor is not None else VENDOR_CHAIN
        refusal: dict[str, Any] = {
            "resource_ids": (request_id,),
            "action": AuditAction.CREATE,
            "detail": "rights request refused",
        }

        def check() -> None:
            nonlocal chain
            asked = intake.parse(body)
            policy = self._policy()
            tenant_name = self._tenant_name(actor.tenant_id) if actor else None
            facts["asked"] = asked
            facts["route"] = route(policy, asked.action, asked.categories, tenant_name)
            rulebook = facts["route"].rulebook
            chain = actor.tenant_id if rulebook is Rulebook.HIPAA and actor else VENDOR_CHAIN
            refusal["detail"] = f"rights request refused: {facts['route'].right}"
            sensitive = any(policy.document.categories[c].sensitive for c in asked.categories)
            with self._s.reader.connect() as conn:
                if rulebook is Rulebook.HIPAA:
                    facts["who"] = verification.hipaa_requester(
                        conn, actor, asked.patient, self.now()
                    )
                else:
                    facts["who"] = verification.ccpa_requester(
                        conn, self._s.vault, actor, asked.body, sensitive, self.now()
                    )
                conn.rollback()
            if rulebook is Rulebook.CCPA and asked.business_contact and self._b2b(policy):
                raise Forbidden(
                    f"the privacy policy '{policy.name}' does not extend these rights to "
                    "business contacts acting for a customer (B2B); ask that customer"
                )
            if facts["who"].patient_id:
                refusal["patient_ids"] = (facts["who"].patient_id,)
            if facts["route"].right == "hipaa-amendment" and actor is not None:
                check_amendable(
                    self._gate, actor.tenant_id, facts["who"].patient_id, asked.resources
                )
            facts["right"] = policy.right(facts["route"].right)
            agent = asked.body.get("requester") == "authorized-agent"
            if agent and not facts["right"].authorized_agent:
                raise Forbidden(
                    f"the right '{facts['route'].right}' is exercised by the person "
                    "themselves under this policy, not through an agent"
                )

        def job(conn: Connection) -> tuple[RequestView, AuditRecord]:
            asked, found = facts["asked"], facts["route"]
            verified, right = facts["who"], facts["right"]
            now = self.now()
            if right.max_per_12_months is not None and found.right in LIMITED:
                self._within_limit(conn, verified, found.right, right.max_per_12_months)
            if verified.address is not None:
                addresses.use(conn, verified.address.check_id, request_id, now)
            due = plus_days(now, right.deadline_days)
            details = {
                "statement": asked.statement,
                "resources": list(asked.resources),
                "forms": list(asked.forms),
                "designee": asked.designee,
                "categories": list(asked.categories),
                "agent_permission": asked.body.get("agent_permission"),
                "declaration": asked.body.get("declaration"),
            }
            conn.execute(
                insert(rights_requests).values(
                    tenant_id=chain,
                    request_id=request_id,
                    right_name=found.right,
                    rulebook=found.rulebook.value,
                    channel=asked.channel.value,
                    requester_kind=verified.kind.value,
                    requester_user_id=verified.user_id,
                    subject_tenant_id=verified.subject_tenant_id,
                    subject_user_id=verified.subject_user_id,
                    patient_id=verified.patient_id,
                    verification=verified.how.value,
                    details_sealed=self.seal_details(chain, request_id, details),
                    received_at=now,
                    due_at=due,
                    status=Status.OPEN.value,
                    attach_to_disclosures=asked.attach,
                    **self._requester_address(conn, verified, found.right, request_id),
                )
            )
            row = self.row(conn, chain, request_id)
            text = notices.received_text(found.right, found.explanation, now, due)
            self._notice(conn, row, NoticeKind.RECEIVED, text, now)
            if chain != VENDOR_CHAIN:
                notices.tell_officer(conn, chain, request_id, now)
            record = self.entry(
                actor,
                who,
                action=AuditAction.CREATE,
                status=201,
                resource_ids=(request_id,),
                patient_ids=(verified.patient_id,) if verified.patient_id else (),
                detail=f"rights request received: {found.right}, {found.rulebook.value}, "
                f"verified {verified.how.value}, due {due}",
            )
            return self.view(conn, row, self._tenant_name(chain)), record

        view = self.run_in(lambda: chain, actor, who, refusal, check, job)
        return view, facts["route"]

    def run_in(
        self,
        chain: Callable[[], str],
        actor: Actor | None,
        who: RequestInfo,
        refusal: dict[str, Any],
        check: Callable[[], None],
        job: Callable[[Connection], tuple[RequestView, AuditRecord]],
    ) -> RequestView:
        """Like `run`, for intake: the chain is known only once the router has spoken."""
        try:
            check()
        except CareVaultError as exc:
            self.refused(chain(), actor, who, exc, refusal)
            raise
        return self.run(chain(), actor, who, refusal, lambda: None, job)

    def _requester_address(
        self, conn: Connection, verified: Any, right: str, request_id: str
    ) -> dict[str, Any]:
        """The address the case writes to when there is no account to write to: the one a
        person with no account proved, or (a deletion erases the account) the account's own,
        kept with the request's record so the answer still reaches them."""
        vault = self._s.vault
        if verified.address is not None:
            return {
                "requester_address_sealed": addresses.seal_address(
                    vault, request_id, verified.address.address
                ),
                "requester_address_hash": verified.address.address_hash,
            }
        if right == "ccpa-delete" and verified.subject_user_id:
            held = account_address(
                conn, vault, verified.subject_tenant_id, verified.subject_user_id
            )
            if held is not None:
                return {"requester_address_sealed": addresses.seal_address(vault, request_id, held)}
        return {}

    def _within_limit(self, conn: Connection, verified: Any, right: str, limit: int) -> None:
        r = rights_requests
        since = isoformat(self._s.clock.now() - LOOKBACK)
        if verified.address is not None:
            whose = r.c.requester_address_hash == verified.address.address_hash
        else:
            whose = (r.c.subject_tenant_id == verified.subject_tenant_id) & (
                r.c.subject_user_id == verified.subject_user_id
            )
        rows = (
            conn.execute(
                select(r.c.received_at)
                .where(
                    r.c.tenant_id == VENDOR_CHAIN,
                    whose,
                    r.c.right_name.in_(LIMITED[right]),
                    r.c.received_at > since,
                )
                .order_by(r.c.received_at)
            )
            .scalars()
            .all()
        )
        if len(rows) >= limit and right == "ca-shine-the-light":
            nxt = isoformat(parse_instant(rows[len(rows) - limit]) + LOOKBACK)
            raise Unprocessable(
                f"you asked for the list of personal information disclosed for direct "
                f"marketing on {rows[-1][:10]}; California law (Civ. Code 1798.83) and our "
                f"policy provide {limit} such request in any 12 months. You may ask again "
                f"from {nxt[:10]}."
            )
        if len(rows) >= limit:
            nxt = isoformat(parse_instant(rows[len(rows) - limit]) + LOOKBACK)
            raise Unprocessable(
                f"you have made {len(rows)} requests to know or get a copy of your personal "
                f"information in the last 12 months; the law (and our policy) provides "
                f"{limit} in any 12 months. You may ask again from {nxt[:10]}."
            )

    # -- the requester's view, the officer's queue ---------------------------------------

    def get(self, actor: Actor, request_id: str, who: RequestInfo) -> RequestView:
        """The requester's case, or (for the officer) any case of their queue; audited."""
        fields: dict[str, Any] = {
            "action": AuditAction.READ,
            "resource_ids": (request_id,),
            "detail": "rights request read",
        }
        try:
            with self._s.reader.connect() as conn:
                try:
                    row = self.row(conn, officer_chain(actor), request_id)
                except CareVaultError:  # not an officer of this queue: the requester's own
                    row = self.requester_row(conn, actor, request_id)
                view = self.view(conn, row, self._tenant_name(row.tenant_id))
                conn.rollback()
        except CareVaultError as exc:
            self.refused(actor.tenant_id, actor, who, exc, fields)
            raise
        fields["patient_ids"] = (row.patient_id,) if row.patient_id else ()
        self._s.audit.commit(self._s.committer, row.tenant_id, self.entry(actor, who, **fields))
        return view

    def queue(self, actor: Actor, due_before: str | None, who: RequestInfo) -> list[QueueItem]:
        """Open cases, soonest due first; `late` when the clock has passed the due date."""
        fields: dict[str, Any] = {"action": AuditAction.SEARCH, "detail": "rights queue"}
        try:
            chain = officer_chain(actor)
            limit = _day_end(due_before) if due_before is not None else None
        except CareVaultError as exc:
            self.refused(actor.tenant_id, actor, who, exc, fields)
            raise
        r = rights_requests
        query = select(r).where(r.c.tenant_id == chain, r.c.status.in_(OPEN_STATUSES))
        if limit is not None:
            query = query.where(r.c.due_at <= limit)
        with self._s.reader.connect() as conn:
            rows = conn.execute(query.order_by(r.c.due_at, r.c.request_id)).all()
            conn.rollback()
        now = self._s.clock.now()
        items = [
            QueueItem(
                row.request_id,
                row.right_name,
                row.rulebook,
                row.status,
                row.received_at,
                row.due_at,
                row.extended_at is not None,
                self.late(row),
                (parse_instant(row.due_at) - now).days,
            )
            for row in rows
        ]
        fields["resource_ids"] = tuple(i.request_id for i in items)
        fields["patient_ids"] = tuple(dict.fromkeys(r.patient_id for r in rows if r.patient_id))
        self._s.audit.commit(self._s.committer, chain, self.entry(actor, who, **fields))
        return items

    # -- the one extension -----------------------------------------------------------------

    def extend(
        self, actor: Actor, request_id: str, reason: object, who: RequestInfo
    ) -> RequestView:
        """One extension, taken before the deadline, with a written reason sent to the requester."""
        refusal: dict[str, Any] = {"resource_ids": (request_id,), "detail": "extension refused"}
        facts: dict[str, Any] = {}

        try:
            facts["chain"] = officer_chain(actor)
        except CareVaultError as exc:
            self.refused(actor.tenant_id, actor, who, exc, refusal)
            raise

        def check() -> None:
            facts["reason"] = intake.text(reason, "reason", 10, 1000)

        def job(conn: Connection) -> tuple[RequestView, AuditRecord]:
            row = self.row(conn, facts["chain"], request_id)
            right = self._policy().right(row.right_name)
            if row.status not in OPEN_STATUSES:
                raise Conflict("this request is closed")
            if row.extended_at is not None:
                raise Conflict("this request was extended once already; the law allows one")
            if right is None or right.extension_days == 0:
                raise Conflict("the policy allows no extension of this right")
            now = self.now()
            if now > row.due_at:
                raise Conflict("the deadline has passed: an extension is taken within it")
            due = plus_days(row.due_at, right.extension_days)
            conn.execute(
                update(rights_requests)
                .where(
                    rights_requests.c.tenant_id == row.tenant_id,
                    rights_requests.c.request_id == request_id,
                )
                .values(due_at=due, extended_at=now)
            )
            text = notices.extension_text(facts["reason"], right.extension_days, due)
            self._notice(conn, row, NoticeKind.EXTENDED, text, now, days=right.extension_days)
            record = self.entry(
                actor,
                who,
                resource_ids=(request_id,),
                patient_ids=(row.patient_id,) if row.patient_id else (),
                detail=f"rights request extended by {right.extension_days} days, due {due}",
            )
            fresh = self.row(conn, row.tenant_id, request_id)
            return self.view(conn, fresh, self._tenant_name(row.tenant_id)), record

        return self.run(facts["chain"], actor, who, refusal, check, job)

    # -- helpers ---------------------------------------------------------------------------

    def _notice(
        self,
        conn: Connection,
        row: Any,
        kind: NoticeKind,
        text: str,
        now: str,
        *,
        days: int | None = None,
        recipient_ref: str | None = None,
        to_address: bool = False,
    ) -> None:
        """Keep the written notice and tell the requester: at their account, or (no account,
        or `to_address` once a deletion erased it) at the address kept with the case."""
        notice_id = str(uuid.uuid4())
        sealed = self.seal_text(row.tenant_id, row.patient_id, f"notice|{notice_id}", text.encode())
        notify = None if recipient_ref else self.notify_target(row)
        kept, message_id = row.requester_address_sealed, None
        if recipient_ref is None and kept is not None and (notify is None or to_address):
            vault = self._s.vault
            address = addresses.open_address(vault, row.request_id, kept)
            message_id = notices.send_to_address(
                conn,
                keep_address(conn, vault, VENDOR_CHAIN, address, now),
                addresses.case_link(vault, row.request_id),
                now,
                days=days,
            )
            notify = None
        notices.send(
            conn,
            row.tenant_id,
            row.request_id,
            kind,
            sealed,
            now,
            notify=notify,
            days=days,
            recipient_ref=recipient_ref,
            notice_id=notice_id,
            message_id=message_id,
        )

    def _tenant_name(self, tenant_id: str) -> str | None:
        if tenant_id == VENDOR_CHAIN:
            return None
        with self._s.reader.connect() as conn:
            name = conn.execute(
                select(tenants.c.name).where(tenants.c.tenant_id == tenant_id)
            ).scalar()
            conn.rollback()
        return str(name) if name is not None else None


def _day_end(value: str) -> str:
    """`due_before` is a date (inclusive) or an instant."""
    try:
        if len(value) == 10:
            return isoformat(
                parse_instant(value + "T00:00:00+00:00")
                + timedelta(days=1)
                - timedelta(microseconds=1)
            )
        return isoformat(parse_instant(value))
    except ValueError:
        raise Invalid("due_before must be a date (YYYY-MM-DD) or an ISO instant") from None
