"""Checkers for the bases the law permits or compels without an authorization (164.512)."""

from __future__ import annotations

from dataclasses import dataclass

from carevault.policy import Basis
from carevault.privacy.disclosure import evidence
from carevault.privacy.disclosure.checkers import (
    GOVERNMENT_KINDS,
    OFFICER,
    Checker,
    require_org,
)
from carevault.privacy.disclosure.facts import Facts, Incomplete, Order, Refused, deceased
from carevault.privacy.disclosure.models import (
    COMPELLING_KINDS,
    WAIVER_KINDS,
    Assurance,
    OrderKind,
)

DECEDENT_KINDS = frozenset({"coroner", "medical-examiner", "funeral-director"})
PUBLIC_HEALTH_TYPES = frozenset(
    {"Patient", "Observation", "DiagnosticReport", "Condition", "Immunization", "Encounter"}
)
RESULT_STATUSES = frozenset({"final", "amended", "corrected"})
_CLINICIANS = OFFICER | {"practitioner"}
OVERSIGHT_KINDS = frozenset({OrderKind.ADMINISTRATIVE})  # an agency's demand (164.512(d))
OVERSIGHT_DEMAND = "health-oversight investigation (an administrative request)"


def _order(facts: Facts, kinds: frozenset[str], what: str) -> Order:
    """The order (or waiver) on file that this release rests on, for this patient, in force,
    naming exactly what is released."""
    order = facts.order
    if order is None:
        raise Incomplete(f"name the {what} on file (order) this release rests on")
    if order.kind not in kinds:
        raise Refused(f"a {order.kind} is not a {what}")
    if order.patient_id is not None and order.patient_id != facts.patient_id:
        raise Refused(f"the {what} names another patient")
    if order.expires_on is not None and order.expires_on < facts.today:
        raise Refused(f"the {what} expired on {order.expires_on}")
    if order.recipient_ref is not None and order.recipient_ref != facts.recipient.ref:
        raise Refused(f"the {what} names another recipient")
    for item in facts.items:
        if not order.names(item):
            raise Refused(f"the {what} does not name {item.ref}: only what it names is released")
    return order


@dataclass(frozen=True)
class RequiredByLawChecker:
    """164.512(a), (e)(1)(i), (f)(1)(ii): a court order, warrant or administrative request."""

    bases: frozenset[Basis] = frozenset({Basis.REQUIRED_BY_LAW})
    roles: frozenset[str] = OFFICER

    def check(self, facts: Facts) -> None:
        _order(facts, frozenset(COMPELLING_KINDS), "court order, warrant or administrative request")


@dataclass(frozen=True)
class SubpoenaChecker:
    """164.512(e)(1)(ii): a subpoena without a court order, with satisfactory assurances."""

    bases: frozenset[Basis] = frozenset({Basis.SUBPOENA})
    roles: frozenset[str] = OFFICER

    def check(self, facts: Facts) -> None:
        order = _order(facts, frozenset({"subpoena"}), "subpoena")
        if not order.assurances & {a.value for a in Assurance}:
            raise Refused("a subpoena without a court order needs the satisfactory assurances "
                          "of 164.512(e)(1)(ii) recorded with it (notice to the individual or "
                          "a qualified protective order)")  # fmt: skip


@dataclass(frozen=True)
class LawEnforcementChecker:
    """164.512(f)(2): identify and locate, from the allow-list only; never DNA, dental
    records or tissue typing."""

    bases: frozenset[Basis] = frozenset({Basis.LAW_ENFORCEMENT})
    roles: frozenset[str] = OFFICER

    def check(self, facts: Facts) -> None:
        if facts.recipient.rtype != "Organization":
            raise Refused("the recipient must be the law-enforcement agency (an Organization)")
        for item in facts.items:
            why = evidence.forbidden_evidence(item) or evidence.outside_allow_list(item)
            if why is not None:
                raise Refused(why)


@dataclass(frozen=True)
class GovernmentChecker:
    """Health oversight and HHS (164.512(d), 164.502(a)(2)); abuse or neglect (164.512(c)):
    to a government authority."""

    bases: frozenset[Basis] = frozenset({Basis.HEALTH_OVERSIGHT, Basis.ABUSE_NEGLECT})
    roles: frozenset[str] = _CLINICIANS

    def check(self, facts: Facts) -> None:
        require_org(facts, GOVERNMENT_KINDS, "a government authority")
        if facts.basis is Basis.HEALTH_OVERSIGHT and facts.order_required:
            # The policy promises oversight releases only for an investigation on file.
            if facts.order is None:
                raise Refused("this deployment's privacy policy releases to a health-oversight "
                              "agency only for an investigation on file: file the agency's "
                              "administrative request at /admin/legal-orders, then name it "
                              "(order)")  # fmt: skip
            _order(facts, frozenset(OVERSIGHT_KINDS), OVERSIGHT_DEMAND)


@dataclass(frozen=True)
class PublicHealthChecker:
    """164.512(b): reports to a public-health authority; labs report notifiable results."""

    bases: frozenset[Basis] = frozenset({Basis.PUBLIC_HEALTH})
    roles: frozenset[str] = _CLINICIANS | {"staff"}

    def check(self, facts: Facts) -> None:
        require_org(facts, GOVERNMENT_KINDS, "a public-health authority")
        for item in facts.items:
            if item.rtype not in PUBLIC_HEALTH_TYPES:
                raise Refused(f"{item.rtype} is not part of a public-health report")
            if item.rtype in ("Observation", "DiagnosticReport") and (
                item.body.get("status") not in RESULT_STATUSES
            ):
                raise Refused(f"{item.ref} is not a final result")


@dataclass(frozen=True)
class SeriousThreatChecker:
    """164.512(j): a clinician's good-faith belief of a serious and imminent threat, to a
    person able to prevent or lessen it; the threat is stated as the purpose."""

    bases: frozenset[Basis] = frozenset({Basis.SERIOUS_THREAT})
    roles: frozenset[str] = _CLINICIANS

    def check(self, facts: Facts) -> None:
        if len(facts.purpose.strip()) < 10:
            raise Incomplete("state the threat the disclosure is to prevent or lessen (purpose)")


@dataclass(frozen=True)
class DecedentChecker:
    """164.512(g): about a deceased patient, to a coroner, medical examiner or funeral
    director."""

    bases: frozenset[Basis] = frozenset({Basis.DECEDENT})
    roles: frozenset[str] = _CLINICIANS

    def check(self, facts: Facts) -> None:
        if not deceased(facts.patient):
            raise Refused("the patient is not recorded as deceased (Patient.deceased)")
        require_org(facts, DECEDENT_KINDS, "a coroner, medical examiner or funeral director")


@dataclass(frozen=True)
class ResearchChecker:
    """164.512(i): under an IRB or privacy-board waiver on file, for what it names."""

    bases: frozenset[Basis] = frozenset({Basis.RESEARCH})
    roles: frozenset[str] = OFFICER

    def check(self, facts: Facts) -> None:
        _order(facts, frozenset(WAIVER_KINDS), "IRB or privacy-board waiver")


CHECKERS: tuple[Checker, ...] = (
    RequiredByLawChecker(), SubpoenaChecker(), LawEnforcementChecker(), GovernmentChecker(),
    PublicHealthChecker(), SeriousThreatChecker(), DecedentChecker(), ResearchChecker(),
)  # fmt: skip
