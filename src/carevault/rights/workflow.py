"""Deciding and fulfilling a case. The tenant's privacy officer decides HIPAA cases (the
tenant's to decide), the vendor's operators CCPA ones; CareVault does the work: the copy,
the amendment and the notices to earlier recipients, the accounting, the portable file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, Row, insert, update

from carevault.audit.models import AuditRecord, RequestInfo
from carevault.errors import CareVaultError, Conflict, Invalid
from carevault.identity.models import Actor, system_actor
from carevault.rights import (
    amendment,
    ccpa,
    copies,
    directions,
    erasure,
    intake,
    notices,
    shine,
)
from carevault.rights.cases import officer_chain
from carevault.rights.models import (
    OPEN_STATUSES,
    Decision,
    DenialBasis,
    NoticeKind,
    RequesterKind,
    RequestView,
    Rulebook,
    Status,
    rights_copies,
    rights_requests,
)
from carevault.rights.router import OPT_OUTS, POLICY_CLOSURES, POLICY_COPIES
from carevault.rights.service import RightsCore

DELETIONS = ("ccpa-delete", *POLICY_CLOSURES)
"""Rights decided first (like an amendment), then fulfilled by deleting: ccpa-delete erases
the vendor's own data at once and directs the service providers (erasure.py, directions.py);
the policies' own closures inactivate the account through the deletion hook, its data kept
only for the policy's `account` period."""
Designee = Callable[[str, str, str, tuple[str, ...], str, RequestInfo], str]
"""(tenant, patient, designee ref, resource refs, request id, who) → the disclosure id."""
Accounting = Callable[[Actor, str, RequestInfo], dict[str, Any]]
"""(the officer, patient, who) → the accounting report as JSON."""
Deletion = Callable[[Actor, str, str, str, RequestInfo], dict[str, Any]]
"""(the officer, subject tenant, subject user, request id, who) → what was deleted and kept."""
OptOut = Callable[[str, str, str, RequestInfo], dict[str, Any]]
"""(subject tenant, subject user, request id, who) → what stopped (marketing to the account)."""


@dataclass(frozen=True)
class Hooks:
    """Other packages' services a case is fulfilled with; None: not wired in this process."""

    designee: Designee | None = None
    accounting: Accounting | None = None
    deletion: Deletion | None = None
    opt_out: OptOut | None = None


@dataclass
class _Work:
    row: Row[Any]
    copies: dict[str, tuple[str, bytes]]
    fulfilment: dict[str, Any]
    what: str
    recipients: tuple[str, ...] = ()
    amended: tuple[str, ...] = ()
    directions: list[dict[str, Any]] = field(default_factory=list)
    subject_ref: str = ""
    erased: bool = False  # the account is gone: the last notice goes to the kept address


class Workflow(RightsCore):
    hooks: Hooks = Hooks()

    def decide(self, actor: Actor, request_id: str, body: object, who: RequestInfo) -> RequestView:
        """Accept, or deny in writing with the basis and the requester's rights."""
        refusal: dict[str, Any] = {"resource_ids": (request_id,), "detail": "decision refused"}
        chain = self._officer(actor, who, refusal)
        facts: dict[str, Any] = {}

        def check() -> None:
            if not isinstance(body, dict):
                raise Invalid("the decision must be a JSON object")
            try:
                facts["decision"] = Decision(str(body.get("decision")))
            except ValueError:
                raise Invalid("decision must be 'accept' or 'deny'") from None
            if facts["decision"] is Decision.DENY:
                try:
                    facts["basis"] = DenialBasis(str(body.get("basis")))
                except ValueError:
                    names = ", ".join(b.value for b in DenialBasis)
                    raise Invalid(f"a denial states its basis, one of: {names}") from None
                facts["reason"] = intake.text(body.get("reason"), "reason", 10, 2000)

        def job(conn: Connection) -> tuple[RequestView, AuditRecord]:
            row = self.row(conn, chain, request_id)
            if row.status != Status.OPEN.value:
                raise Conflict("this request was decided already")
            now, deny = self.now(), facts["decision"] is Decision.DENY
            late = " (after the due date)" if now > row.due_at else ""
            values: dict[str, Any] = {
                "decided_at": now,
                "decided_by": actor.user_id,
                "status": (Status.DENIED if deny else Status.ACCEPTED).value,
            }
            if deny:
                values["denial_basis"] = facts["basis"].value
                text = notices.denial_text(
                    Rulebook(row.rulebook),
                    row.right_name,
                    facts["basis"],
                    facts["reason"],
                    self._tenant_name(chain) or "CareVault",
                )
            else:
                text = notices.accepted_text(row.right_name)
            self._update(conn, row, values)
            kind = NoticeKind.DENIED if deny else NoticeKind.DECIDED
            self._notice(conn, row, kind, text, now)
            record = self.entry(
                actor,
                who,
                resource_ids=(request_id,),
                patient_ids=_patients(row),
                detail=f"rights request {'denied' if deny else 'accepted'}: {row.right_name}{late}",
            )
            return self._fresh(conn, row), record

        return self.run(chain, actor, who, refusal, check, job)

    def fulfil(self, actor: Actor, request_id: str, body: object, who: RequestInfo) -> RequestView:
        """Do what was granted, record what was produced (ids and forms only), and tell them."""
        refusal: dict[str, Any] = {"resource_ids": (request_id,), "detail": "fulfilment refused"}
        chain = self._officer(actor, who, refusal)
        work: list[_Work] = []

        def check() -> None:
            with self._s.reader.connect() as conn:
                row = self.row(conn, chain, request_id)
                conn.rollback()
            if row.status not in OPEN_STATUSES:
                raise Conflict("this request is closed")
            if row.status != Status.ACCEPTED.value and row.right_name in (
                "hipaa-amendment",
                *DELETIONS,
            ):
                raise Conflict("decide this request (accept or deny) before fulfilling it")
            refusal["patient_ids"] = _patients(row)
            work.append(self._produce(actor, row, body if isinstance(body, dict) else {}, who))

        def job(conn: Connection) -> tuple[RequestView, AuditRecord]:
            w = work[0]
            row = self.row(conn, chain, request_id)
            if row.status not in OPEN_STATUSES:
                raise Conflict("this request is closed")
            now = self.now()
            for form, (media, blob) in w.copies.items():
                sealed = self.seal_text(chain, row.patient_id, f"copy|{request_id}|{form}", blob)
                conn.execute(
                    insert(rights_copies).values(
                        tenant_id=chain,
                        request_id=request_id,
                        form=form,
                        media_type=media,
                        created_at=now,
                        body_sealed=sealed,
                    )
                )
            for ref in w.recipients:
                self._notice(
                    conn,
                    row,
                    NoticeKind.AMENDMENT_TO_RECIPIENT,
                    notices.recipient_text(w.amended),
                    now,
                    recipient_ref=ref,
                )
            if w.directions:  # each service provider is told in the same transaction
                made = directions.record(conn, request_id, w.subject_ref, w.directions, now)
                w.fulfilment["deletion"]["directed"] = made
            self._update(
                conn,
                row,
                {
                    "status": Status.FULFILLED.value,
                    "fulfilled_at": now,
                    "fulfilled_by": actor.user_id,
                    "decided_at": row.decided_at or now,
                    "decided_by": row.decided_by or actor.user_id,
                    "fulfilment": orjson.dumps(w.fulfilment).decode(),
                },
            )
            self._notice(
                conn,
                row,
                NoticeKind.FULFILLED,
                notices.fulfilled_text(row.right_name, w.what),
                now,
                to_address=w.erased,
            )
            late = " (after the due date)" if now > row.due_at else ""
            record = self.entry(
                actor,
                who,
                resource_ids=(request_id, *w.amended),
                patient_ids=_patients(row),
                detail=f"rights request fulfilled: {row.right_name}{late}",
            )
            return self._fresh(conn, row), record

        return self.run(chain, actor, who, refusal, check, job)

    # -- what each right produces (read and written through the gate, audited there) ------

    def _produce(
        self, actor: Actor, row: Row[Any], body: dict[str, Any], who: RequestInfo
    ) -> _Work:
        details = self.open_details(row.tenant_id, row.request_id, row.details_sealed)
        if row.right_name == "hipaa-access":
            return self._access_copy(row, details, who)
        if row.right_name == "hipaa-amendment":
            refs = amendment.apply(
                self._gate,
                row.tenant_id,
                row.patient_id,
                row.request_id,
                body.get("amended"),
                details.get("resources", []),
            )
            with self._s.reader.connect() as conn:
                told = amendment.prior_recipients(
                    conn, self._s.vault, row.tenant_id, row.patient_id, refs
                )
                conn.rollback()
            return _Work(
                row,
                {},
                {"amended": list(refs), "recipients_told": told},
                "Your record was amended as you asked; those who received the earlier "
                "version have been told.",
                tuple(told),
                refs,
            )
        if row.right_name == "hipaa-accounting":
            if self.hooks.accounting is None:
                raise Conflict(
                    "the accounting-of-disclosures report is not wired in this deployment"
                )
            report = self.hooks.accounting(actor, row.patient_id, who)
            count = len(report.get("disclosures", []))
            return _Work(
                row,
                {"json": ("application/json", orjson.dumps(report))},
                {"forms": ["json"], "disclosures": count},
                "Your accounting of disclosures is ready to download.",
            )
        if row.right_name in ("ccpa-know", "ccpa-access", "ccpa-portability", *POLICY_COPIES):
            with self._s.reader.connect() as conn:
                found = ccpa.personal_information(
                    conn, self._s.vault, row.subject_tenant_id, row.subject_user_id, row.received_at
                )
                conn.rollback()
            if row.right_name == "ccpa-know":
                found = {**ccpa.categories_disclosure(self._policy()), "pieces": found}
            return _Work(
                row,
                {"json": ("application/json", orjson.dumps(found))},
                {"forms": ["json"], "lookback_days": 365},
                "Your personal information is ready to download (JSON).",
            )
        if row.right_name == "ccpa-delete":
            return self._erase(row, details)
        if row.right_name == "ca-shine-the-light":
            with self._s.reader.connect() as conn:
                listed = shine.marketing_disclosures(
                    conn,
                    self._policy(),
                    row.subject_tenant_id,
                    row.subject_user_id,
                    row.received_at,
                )
                conn.rollback()
            return _Work(
                row,
                {"json": ("application/json", orjson.dumps(listed))},
                {"forms": ["json"], "disclosed_for_direct_marketing": 0},
                f"{listed['answer']} The list, and the records it comes from, are ready (JSON).",
            )
        if row.right_name in DELETIONS:
            if self.hooks.deletion is None:
                raise Conflict("deletion of account data is not wired in this deployment")
            done = self.hooks.deletion(
                actor, row.subject_tenant_id, row.subject_user_id, row.request_id, who
            )
            return _Work(
                row,
                {},
                {"deletion": done},
                "Your account was closed at once; its "
                "data is kept only as long as the law requires, then erased.",
            )
        if row.right_name in OPT_OUTS:
            return self._opt_out(row, details, who)
        # ccpa-correct: the correction is made through account administration; say what
        what = intake.text(body.get("corrected"), "corrected", 3, 1000)
        return _Work(
            row,
            {"note": ("text/plain", what.encode())},
            {"forms": ["note"]},
            "Your personal information was corrected.",
        )

    def _access_copy(self, row: Row[Any], details: dict[str, Any], who: RequestInfo) -> _Work:
        forms = tuple(details.get("forms") or ())
        designee = details.get("designee")
        if designee and self.hooks.designee is None:
            raise Conflict(
                "sending a copy to a designee needs the disclosure path, which is "
                "not wired in this deployment"
            )
        reader = copies.requester_actor(
            row.tenant_id,
            row.requester_user_id,
            row.patient_id,
            row.requester_kind == RequesterKind.REPRESENTATIVE,
        )
        bundle = copies.compartment_bundle(self._gate, reader, row.patient_id, self.now())
        right = self._policy().right(row.right_name)
        fee_note = notices.fee_note(right.fee if right is not None else None)
        made: dict[str, tuple[str, bytes]] = {}
        if "bundle" in forms:
            made["bundle"] = ("application/fhir+json", orjson.dumps(bundle))
        if "pdf" in forms:
            label = self._tenant_name(row.tenant_id) or "your provider"
            made["pdf"] = (
                "application/pdf",
                copies.to_pdf(bundle, label, row.request_id, fee_note),
            )
        fulfilment: dict[str, Any] = {
            "forms": sorted(made),
            "resources": bundle["total"],
            "fee": 0,
            "fee_note": fee_note,
        }
        if designee and self.hooks.designee is not None:
            refs = tuple(str(e["fullUrl"]) for e in bundle["entry"])
            fulfilment["designee"] = {
                "recipient": designee,
                "disclosure": self.hooks.designee(
                    row.tenant_id, row.patient_id, designee, refs, row.request_id, who
                ),
            }
        forms_made = ", ".join(sorted(made)) or "sent to your designee"
        return _Work(row, made, fulfilment, f"Your copy is ready ({forms_made}). {fee_note}")

    def _erase(self, row: Row[Any], details: dict[str, Any]) -> _Work:
        """Erase now what the vendor holds (its own transaction, audited on the account's
        chain); the directions to service providers go with the fulfilment."""
        categories = [str(c) for c in details.get("categories") or []]
        tenant_id, user_id = row.subject_tenant_id, row.subject_user_id
        if tenant_id and user_id:
            system = system_actor(tenant_id, f"rights: CCPA deletion, request {row.request_id}")

            def job(conn: Connection) -> tuple[dict[str, Any], AuditRecord]:
                done = erasure.erase_account(
                    conn, self._s.vault, tenant_id, user_id, categories, self.now()
                )
                record = self.entry(
                    system,
                    RequestInfo(),
                    resource_type="User",
                    resource_ids=(user_id, row.request_id),
                    detail=f"personal information erased ({', '.join(categories)}): "
                    f"{', '.join(sorted(done['deleted']))}",
                )
                return done, record

            done = self._s.audit.commit_with(self._s.committer, tenant_id, job)
            subject = f"User/{tenant_id}/{user_id}"
        else:
            done, subject = erasure.nothing_held(categories), f"RightsRequest/{row.request_id}"
        planned = directions.plan(self._policy(), categories)
        names = ", ".join(p["recipient"] for p in planned) or "none: no recipient got it"
        what = (
            f"We deleted your personal information ({', '.join(categories)}) from our "
            f"records and directed our service providers to delete it too ({names}). "
            "What we kept, and why: " + "; ".join(done["kept"]) + "."
        )
        erased = "account_identity" in done["deleted"]
        return _Work(
            row,
            {},
            {"deletion": {"erased": True, **done, "directed": []}},
            what,
            directions=planned,
            subject_ref=subject,
            erased=erased,
        )

    def _opt_out(self, row: Row[Any], details: dict[str, Any], who: RequestInfo) -> _Work:
        """Recorded on the case with the categories it covers; the marketing use of the
        account's contact details stops (the preference and the suppression list)."""
        if self.hooks.opt_out is None:
            raise Conflict("opting out is not wired in this deployment")
        done = self.hooks.opt_out(row.subject_tenant_id, row.subject_user_id, row.request_id, who)
        categories = list(details.get("categories") or [])
        return _Work(
            row,
            {},
            {"opt_out": {"categories": categories, **done}},
            f"Your opt-out is recorded ({', '.join(categories)}): your personal information "
            "is not sold or shared, and no marketing is sent to you.",
        )

    # -- helpers ----------------------------------------------------------------------------

    def _officer(self, actor: Actor, who: RequestInfo, refusal: dict[str, Any]) -> str:
        try:
            return officer_chain(actor)
        except CareVaultError as exc:
            self.refused(actor.tenant_id, actor, who, exc, refusal)
            raise

    def _update(self, conn: Connection, row: Row[Any], values: dict[str, Any]) -> None:
        r = rights_requests
        conn.execute(
            update(r)
            .where(r.c.tenant_id == row.tenant_id, r.c.request_id == row.request_id)
            .values(**values)
        )

    def _fresh(self, conn: Connection, row: Row[Any]) -> RequestView:
        fresh = self.row(conn, row.tenant_id, row.request_id)
        return self.view(conn, fresh, self._tenant_name(row.tenant_id))


def _patients(row: Row[Any]) -> tuple[str, ...]:
    return (row.patient_id,) if row.patient_id else ()
