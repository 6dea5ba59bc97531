"""One checker per basis family, behind a small protocol, found through a registry.

A checker reads frozen facts (facts.py) and raises `Refused` (403) or `Incomplete` (422)
with a reason a person can act on; returning means the basis's own conditions are met.
Whether the basis is allowed at all, segmentation and minimum necessary are the service's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from carevault.policy import Basis
from carevault.privacy.disclosure import consent_terms
from carevault.privacy.disclosure.facts import Facts, Incomplete, Refused, reference

SYSTEM = "system"
DESIGNEE_PURPOSE = (
    "a copy of the patient's record sent to the person the patient designated in writing "
    "(45 CFR 164.524(c)(3)(ii))"
)
CLINICAL = frozenset({"practitioner", "staff", "privacy-officer", SYSTEM})
OFFICER = frozenset({"privacy-officer", SYSTEM})
PROVIDER_KINDS = frozenset({"prov", "dept"})  # HL7 organization-type
PAYER_KINDS = frozenset({"pay", "ins"})
GOVERNMENT_KINDS = frozenset({"govt"})


class Checker(Protocol):
    @property
    def bases(self) -> frozenset[Basis]: ...

    @property
    def roles(self) -> frozenset[str]:
        """Who may ask for a disclosure on these bases (Actor.kind)."""
        ...

    def check(self, facts: Facts) -> None: ...


def _provider(facts: Facts) -> bool:
    r = facts.recipient
    if r.rtype in ("Practitioner", "PractitionerRole"):
        return True
    return r.rtype == "Organization" and bool(r.kinds & PROVIDER_KINDS)


def require_org(facts: Facts, kinds: frozenset[str], what: str) -> None:
    r = facts.recipient
    if r.rtype != "Organization" or not r.kinds & kinds:
        raise Refused(f"the recipient must be {what} (Organization.type {'/'.join(sorted(kinds))})")


@dataclass(frozen=True)
class AuthorizationChecker:
    """164.508: a live, signed authorization covering exactly this information and recipient."""

    bases: frozenset[Basis] = frozenset({Basis.AUTHORIZATION})
    roles: frozenset[str] = CLINICAL

    def check(self, facts: Facts) -> None:
        signed = facts.authorization
        if signed is None:
            raise Incomplete("name the authorization (a signed Consent) this release rests on")
        terms = signed.terms
        gaps = consent_terms.missing(terms)
        if gaps:
            listed = "; ".join(f"{where}: {what}" for where, what in gaps)
            raise Incomplete(f"the authorization lacks required elements: {listed}", issues=gaps)
        if signed.signed_at is None:
            raise Refused("the authorization was never signed by the patient ($sign)")
        if signed.revoked_at is not None:
            raise Refused("the patient revoked this authorization")
        if not signed.terms_intact:
            raise Refused("the authorization was changed after it was signed; have it signed again")
        if terms.patient_ref != f"Patient/{facts.patient_id}":
            raise Refused("the authorization is another patient's")
        why = consent_terms.not_live(terms, facts.now)
        if why is not None:
            raise Refused(why)
        if facts.recipient.ref not in terms.recipient_refs:
            raise Refused("the authorization names another recipient")
        if consent_terms.fold(facts.purpose) not in terms.purposes:
            raise Refused("the authorization is for another purpose")
        for item in facts.items:
            why = consent_terms.not_covered(terms, item)
            if why is not None:
                raise Refused(why)


ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PERSONAL_REPRESENTATIVES = frozenset({"GUARD", "POWATT", "DPOWATT", "HPOWATT", "SPOWATT"})
"""RelatedPerson.relationship codes (v3 RoleCode) of someone with authority to act for the
patient, whom 164.502(g) treats as the individual: a guardian or an attorney in fact."""


def _representative(facts: Facts) -> bool:
    r = facts.recipient
    if r.rtype != "RelatedPerson" or reference(r.body.get("patient")) != (
        f"Patient/{facts.patient_id}"
    ):
        return False
    codes = {
        c.get("code")
        for rel in r.body.get("relationship", [])
        if isinstance(rel, dict)
        for c in rel.get("coding", [])
        if isinstance(c, dict) and c.get("system") == ROLE_CODE
    }
    return bool(codes & PERSONAL_REPRESENTATIVES)


@dataclass(frozen=True)
class IndividualChecker:
    """164.502(a)(1)(i): to the patient, or to their personal representative (164.502(g): a
    RelatedPerson of this patient whose relationship is a guardian or an attorney in fact);
    and 164.524(c)(3)(ii): to the person the patient designated in a verified written access
    request. Only the rights workflow sends those (a system actor, under DESIGNEE_PURPOSE):
    no HTTP caller can claim a designation. Any other relative is not the individual: a
    release to them rests on the patient's authorization."""

    bases: frozenset[Basis] = frozenset({Basis.INDIVIDUAL})
    roles: frozenset[str] = CLINICAL

    def check(self, facts: Facts) -> None:
        r = facts.recipient
        if r.ref == f"Patient/{facts.patient_id}" or _representative(facts):
            return
        if facts.actor_kind == SYSTEM and facts.purpose == DESIGNEE_PURPOSE:
            return
        raise Refused("the recipient must be the patient or their personal representative (a "
                      "RelatedPerson of this patient coded GUARD or POWATT); a relative needs "
                      "the patient's authorization")  # fmt: skip


@dataclass(frozen=True)
class TreatmentChecker:
    """164.506(c)(2): to another health-care provider, for its treatment of the patient."""

    bases: frozenset[Basis] = frozenset({Basis.TREATMENT})
    roles: frozenset[str] = frozenset({"practitioner", "staff", SYSTEM})

    def check(self, facts: Facts) -> None:
        if not _provider(facts):
            raise Refused("treatment disclosures go to a provider: a Practitioner, "
                          "PractitionerRole or an Organization of type prov")  # fmt: skip


@dataclass(frozen=True)
class PaymentChecker:
    """164.506(c)(1), (3): to a payer, or to a provider for its payment."""

    bases: frozenset[Basis] = frozenset({Basis.PAYMENT})
    roles: frozenset[str] = frozenset({"staff", "privacy-officer", SYSTEM})

    def check(self, facts: Facts) -> None:
        if not _provider(facts):
            require_org(facts, PAYER_KINDS | PROVIDER_KINDS, "a payer or a provider")


@dataclass(frozen=True)
class OperationsChecker:
    """164.506(c)(1), (4): the tenant's own operations, or another covered entity's."""

    bases: frozenset[Basis] = frozenset({Basis.OPERATIONS})
    roles: frozenset[str] = CLINICAL

    def check(self, facts: Facts) -> None:
        if not _provider(facts):
            require_org(facts, PAYER_KINDS | PROVIDER_KINDS, "a covered entity (provider or plan)")


@dataclass(frozen=True)
class BusinessAssociateChecker:
    """164.502(e): only under a business associate agreement on file and in force."""

    bases: frozenset[Basis] = frozenset({Basis.BUSINESS_ASSOCIATE})
    roles: frozenset[str] = OFFICER | {"staff"}

    def check(self, facts: Facts) -> None:
        mine = [b for b in facts.baas if b.recipient_ref == facts.recipient.ref]
        if not mine:
            raise Refused("no business associate agreement with this recipient is on file")
        if not any(b.in_force(facts.today) for b in mine):
            latest = max(mine, key=lambda b: b.ends_on or "9999")
            if latest.effective_on > facts.today:
                raise Refused("the business associate agreement is not yet in effect")
            raise Refused(f"the business associate agreement ended on {latest.ends_on}; "
                          "file a renewed agreement first")  # fmt: skip


def _registry() -> dict[Basis, Checker]:
    from carevault.privacy.disclosure import checkers_legal  # the other families

    found: list[Checker] = [
        AuthorizationChecker(), IndividualChecker(), TreatmentChecker(), PaymentChecker(),
        OperationsChecker(), BusinessAssociateChecker(), *checkers_legal.CHECKERS,
    ]  # fmt: skip
    registry = {basis: c for c in found for basis in c.bases}
    missing = set(Basis) - set(registry)
    assert not missing, f"no checker for {missing}"  # every basis has exactly one door
    return registry


REGISTRY = _registry()
