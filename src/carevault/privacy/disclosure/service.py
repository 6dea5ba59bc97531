"""The one disclosure path: `Disclosures.disclose(actor, who, request)`.

decide (role, the policy's basis rule) → facts in one reader snapshot (gather.py) → the
basis's checker (registry) → segmentation and minimum necessary (release.py) → in ONE writer
transaction: the patient's notice (queued first when the policy says "before", or held under
a gag), the accounting-of-disclosures entry and the audit entry. A refusal at any step is
audited in its own transaction after the rollback, and nothing leaves.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection, select

from carevault.audit.models import Action, AuditRecord, RequestInfo
from carevault.errors import CareVaultError, Forbidden
from carevault.identity.models import Actor
from carevault.policy import Basis, PrivacyPolicy
from carevault.policy.bases import LEGALLY_COMPELLED
from carevault.policy.schema import Notice
from carevault.privacy.break_glass import AuditedService
from carevault.privacy.disclosure import (
    consent_terms,
    notices,
    recipient_agreements,
    recipient_rules,
    release,
)
from carevault.privacy.disclosure.checkers import REGISTRY
from carevault.privacy.disclosure.facts import Facts, Recipient, Refused
from carevault.privacy.disclosure.gather import DisclosureRequest, Gatherer, check_request
from carevault.privacy.disclosure.ledger import DisclosureEntry, record_disclosure
from carevault.privacy.disclosure.models import authorization_documents, legal_orders
from carevault.privacy.services import GateServices
from carevault.records.store import valid_id

DISCLOSE = Action.EXPORT
"""Audited as an export (DICOM 110106, "data exported out of the system"), with detail
"disclose"; an Action.DISCLOSE of its own is the lead's to add to audit/models.py."""
COMPELLED_EVENT = "legally-compelled-disclosure"
COMPELLED_REPORT = "compelled-disclosure-report"
_PURPOSE_OF_USE = {
    Basis.TREATMENT: "TREAT", Basis.PAYMENT: "HPAYMT", Basis.OPERATIONS: "HOPERAT",
    Basis.INDIVIDUAL: "PATRQT", Basis.AUTHORIZATION: "PATRQT",
    Basis.BUSINESS_ASSOCIATE: "HOPERAT", Basis.REQUIRED_BY_LAW: "HLEGAL",
    Basis.SUBPOENA: "HLEGAL", Basis.LAW_ENFORCEMENT: "HLEGAL", Basis.HEALTH_OVERSIGHT: "HCOMPL",
    Basis.PUBLIC_HEALTH: "PUBHLTH", Basis.ABUSE_NEGLECT: "HLEGAL",
    Basis.SERIOUS_THREAT: "THREAT", Basis.DECEDENT: "HLEGAL", Basis.RESEARCH: "HRESCH",
}  # fmt: skip


@dataclass(frozen=True)
class Released:
    disclosure_id: str
    basis: Basis
    recipient: str
    resources: list[tuple[str, bytes]]  # (Type/id, the body as released)
    withheld: list[str] = field(default_factory=list)  # why each left-out resource stayed
    notice: str = "none"  # none | queued | held | no-account


class Disclosures(AuditedService):
    def __init__(self, services: GateServices, policy: PrivacyPolicy) -> None:
        super().__init__(services)
        self.policy = policy
        self._gather = Gatherer(services.store)

    def disclose(self, actor: Actor, who: RequestInfo, req: DisclosureRequest) -> Released:
        disclosure_id = str(uuid.uuid4())
        pid = (req.patient_id,) if valid_id(req.patient_id) else ()
        refusal: dict[str, object] = {
            "action": DISCLOSE, "resource_type": "Patient", "resource_ids": pid,
            "patient_ids": pid,
            "detail": f"disclose refused; basis={_basis_name(req)}",
        }  # fmt: skip
        try:
            basis = check_request(req)
            checker = REGISTRY[basis]
            if actor.kind not in checker.roles:
                raise Forbidden(f"your role may not disclose on the basis {basis.value}")
            rule = self.policy.basis(basis)
            if not rule.allowed:
                raise Refused(f"this deployment's privacy policy ({self.policy.name}) does not "
                              f"allow disclosures on the basis {basis.value}")  # fmt: skip
            with self._s.reader.connect() as conn:
                facts = self._gather.facts(conn, actor.tenant_id, actor.kind, req, basis,
                                           self._now())  # fmt: skip
                conn.rollback()
            # The checker reads only facts: the policy's demand for an order travels with them.
            facts = replace(facts, order_required=rule.requires_order)
            facts, excluded = _exclusions(facts)
            checker.check(facts)
            recipient_rules.check_recipient(self.policy, facts)
            recipient_agreements.check_requirements(self.policy, facts)
            out, withheld = self._cut(facts)
            withheld = excluded + withheld
            released = self._s.audit.commit_with(
                self._s.committer, actor.tenant_id,
                lambda conn: self._record(conn, actor, who, facts, req, disclosure_id, out,
                                          withheld),
            )  # fmt: skip
        except CareVaultError as exc:
            self._refused(actor, who, exc, refusal)
            raise
        return released

    def _cut(self, facts: Facts) -> tuple[list[tuple[str, bytes]], list[str]]:
        profile = release.profile_for(facts.basis, self.policy.minimum_profile(facts.basis))
        out: list[tuple[str, bytes]] = []
        withheld: list[str] = []
        for item in facts.items:
            why = release.unmet(facts, item)
            if why is not None:
                if facts.explicit:
                    raise Refused(why)
                withheld.append(why)
                continue
            body = release.cut(profile, item)
            if body is None:
                withheld.append(f"{item.ref} is withheld by the minimum necessary for "
                                f"{facts.basis.value}")  # fmt: skip
                continue
            out.append((item.ref, body))
        if not out:
            raise Refused("nothing may be released: " + "; ".join(withheld[:5]))
        return out, withheld

    def _record(self, conn: Connection, actor: Actor, who: RequestInfo, facts: Facts,
                req: DisclosureRequest, disclosure_id: str, out: list[tuple[str, bytes]],
                withheld: list[str]) -> tuple[Released, AuditRecord]:  # fmt: skip
        now = self._now()
        self._still_standing(conn, facts)
        notice = self._notice(conn, facts, disclosure_id, now)
        refs = tuple(ref for ref, _ in out)
        record_disclosure(conn, DisclosureEntry(
            tenant_id=facts.tenant_id, disclosure_id=disclosure_id, patient_id=facts.patient_id,
            disclosed_at=now, recipient_ref=facts.recipient.ref,
            recipient_name=_name(facts.recipient), recipient_address=_address(facts.recipient),
            basis=facts.basis, purpose=facts.purpose, description=", ".join(refs),
            resource_refs=refs,
            authorization_ref=f"Consent/{req.authorization}" if req.authorization else None,
            order_id=facts.order.order_id if facts.order else None,
            request_copy=req.request_copy, actor_user_id=actor.user_id,
        ), self._s.vault)  # fmt: skip
        record = self._entry(
            actor, who, action=DISCLOSE, purpose=_PURPOSE_OF_USE[facts.basis],
            resource_type="Patient", resource_ids=refs, patient_ids=(facts.patient_id,),
            detail=f"disclose; basis={facts.basis.value}; disclosure={disclosure_id}; "
                   f"recipient={facts.recipient.ref}; withheld={len(withheld)}; notice={notice}",
        )  # fmt: skip
        released = Released(disclosure_id, facts.basis, facts.recipient.ref, out, withheld, notice)
        return released, record

    def _still_standing(self, conn: Connection, facts: Facts) -> None:
        """A revocation or a lifted order committed since the snapshot wins: re-read here."""
        if facts.authorization is not None:
            d = authorization_documents
            revoked = conn.execute(select(d.c.revoked_at).where(
                d.c.tenant_id == facts.tenant_id,
                d.c.consent_id == facts.authorization.terms.consent_id,
            )).scalar()  # fmt: skip
            if revoked is not None:
                raise Refused("the patient revoked this authorization")
        if facts.order is not None:
            o = legal_orders
            exists = conn.execute(
                select(o.c.order_id).where(
                    o.c.tenant_id == facts.tenant_id, o.c.order_id == facts.order.order_id
                )
            ).first()
            if exists is None:
                raise Refused("the order is no longer on file")

    def _notice(self, conn: Connection, facts: Facts, disclosure_id: str, now: str) -> str:
        """What the policy promises to tell the patient; queued before the release, or held."""
        when = self.policy.basis(facts.basis).notice
        if when is Notice.NONE and facts.basis in LEGALLY_COMPELLED:
            when = self.policy.notice(COMPELLED_EVENT)
        if when is Notice.NONE:
            return "none"
        o = legal_orders
        order = facts.order
        if order is not None:
            lifted = conn.execute(
                select(o.c.gag_lifted_at).where(
                    o.c.tenant_id == facts.tenant_id, o.c.order_id == order.order_id
                )
            ).scalar()
            if order.gag != "none" and lifted is None and order.gagged(now):
                notices.hold(conn, facts.tenant_id, disclosure_id, order, facts.patient_id, now)
                return "held"
        template = notices.UPCOMING if when is Notice.BEFORE else notices.MADE
        sent = notices.notify_patient(conn, facts.tenant_id, facts.patient_id, template, now)
        if template == notices.UPCOMING:
            self._report_after(conn, facts, now)
        return "queued" if sent else "no-account"

    def _report_after(self, conn: Connection, facts: Facts, now: str) -> None:
        """A policy promising a report after a compelled release (`notices.compelled-disclosure-
        report: after`) queues it behind the notice before; the accounting entry it points to
        names the order and what left. A held notice is this report already."""
        compelled = facts.basis in LEGALLY_COMPELLED and facts.order is not None
        if compelled and self.policy.notice(COMPELLED_REPORT) is Notice.AFTER:
            notices.notify_patient(conn, facts.tenant_id, facts.patient_id, notices.MADE, now)


def _basis_name(req: DisclosureRequest) -> str:
    """The basis for the audit entry: a known value, never the text that was sent."""
    return req.basis if req.basis in {b.value for b in Basis} else "unknown"


def _exclusions(facts: Facts) -> tuple[Facts, list[str]]:
    """A class asked for under an authorization leaves out what its deny provisions exclude
    (named resources are refused by the checker instead)."""
    if facts.explicit or facts.authorization is None:
        return facts, []
    terms = facts.authorization.terms
    kept = tuple(i for i in facts.items if consent_terms.excluded(terms, i) is None)
    reasons = [str(consent_terms.excluded(terms, i)) for i in facts.items if i not in kept]
    if not kept:
        raise Refused("the authorization excludes everything asked for")
    return replace(facts, items=kept), reasons


def _name(recipient: Recipient) -> str:
    body: dict[str, Any] = recipient.body
    name = body.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    if isinstance(name, list) and name and isinstance(name[0], dict):
        first = name[0]
        if isinstance(first.get("text"), str):
            return str(first["text"])
        parts = [*first.get("given", []), first.get("family", "")]
        joined = " ".join(p for p in parts if isinstance(p, str) and p)
        if joined:
            return joined
    return recipient.ref


def _address(recipient: Recipient) -> str:
    for address in recipient.body.get("address", []) or []:
        if isinstance(address, dict):
            if isinstance(address.get("text"), str):
                return str(address["text"])
            parts = [*address.get("line", []), address.get("city"), address.get("state"),
                     address.get("postalCode"), address.get("country")]  # fmt: skip
            return ", ".join(p for p in parts if isinstance(p, str) and p)
    telecom = [t.get("value") for t in recipient.body.get("telecom", []) if isinstance(t, dict)]
    return next((t for t in telecom if isinstance(t, str)), "")
