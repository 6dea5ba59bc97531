"""The decision function: may this actor do this to this kind of resource, for this patient?

Pure (no database, no clock of its own): the gate gathers the facts (reach.py) and asks.
Default deny. A refusal for want of reach is a 404, exactly like a missing resource, so
nobody learns that a record exists — except a user named in advance as allowed to break
the glass, who is told (403) that access needs a stated emergency reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from carevault.fhir_types import CLINICAL_TYPES, COHORT_TYPES
from carevault.identity.permissions import (
    ROLE_PURPOSES,
    STANDING_PURPOSE_EXCLUDED,
    Purpose,
    Role,
    fhir_permission,
)

BREAK_GLASS_MESSAGE = (
    "this patient is outside your care relationships: access needs a stated emergency reason "
    "(POST /access/break-glass with the patient id and your reason; it is reviewed)"
)
NOT_FOUND_MESSAGE = "not found"


class Basis(StrEnum):
    """Why a patient is within an actor's reach (or NONE)."""

    OWN_RECORD = "own-record"  # a patient user's own compartment
    REPRESENTATIVE = "representative"  # a live, verified representation
    TENANT_WIDE = "tenant-wide"  # workforce under the tenant-wide rule; system actors
    CARE_RELATIONSHIP = "care-relationship"  # encounter, care team or referral
    BREAK_GLASS = "break-glass"  # a live emergency grant
    NONE = "none"


class Status(IntEnum):
    ALLOWED = 200
    FORBIDDEN = 403
    NOT_FOUND = 404


WORKFORCE = frozenset(
    {Role.PRACTITIONER, Role.STAFF, Role.PRACTICE_ADMIN, Role.PRIVACY_OFFICER, Role.VENDOR_OPERATOR}
)
BREAK_GLASS_ROLES = frozenset({Role.PRACTITIONER})
"""Only clinicians treat in an emergency; others are never told to break the glass."""
REPRESENTATIVE_PURPOSES = frozenset({Purpose.FAMRQT, Purpose.PWATRNY})

_BASES_BY_ROLE: dict[Role | None, frozenset[Basis]] = {
    None: frozenset({Basis.TENANT_WIDE}),  # a named system actor, audited with its reason
    Role.PATIENT: frozenset({Basis.OWN_RECORD}),
    Role.REPRESENTATIVE: frozenset({Basis.REPRESENTATIVE}),
    **{
        role: frozenset({Basis.TENANT_WIDE, Basis.CARE_RELATIONSHIP, Basis.BREAK_GLASS})
        for role in WORKFORCE
    },
}


@dataclass(frozen=True)
class Subject:
    """The actor, as the decision sees it."""

    tenant_id: str
    role: Role | None  # None: a named system actor
    permissions: frozenset[str]
    purpose: Purpose  # the standing purpose of the session or token
    may_break_glass: bool = False


@dataclass(frozen=True)
class Target:
    """What is asked for. `basis` is None for types in no patient's compartment."""

    tenant_id: str
    resource_type: str
    action: str  # read, write, delete
    basis: Basis | None = None
    grant_until: str | None = None  # a break-glass grant's end (isoformat), when basis is one
    now: str = ""  # isoformat instant of the request


@dataclass(frozen=True)
class Decision:
    allowed: bool
    status: Status
    reason: str
    purpose: Purpose | None = None  # the purpose to audit under, when allowed


def _deny(status: Status, reason: str) -> Decision:
    return Decision(False, status, reason)


def basis_admits(subject: Subject, basis: Basis, grant_until: str | None, now: str) -> bool:
    """Whether a reach of this kind counts for this actor (the type-free half of `decide`)."""
    if basis not in _BASES_BY_ROLE.get(subject.role, frozenset()):
        return False
    if basis is Basis.BREAK_GLASS:
        live = grant_until is not None and bool(now) and now < grant_until
        return live and subject.may_break_glass and subject.role in BREAK_GLASS_ROLES
    if basis is Basis.REPRESENTATIVE:
        return subject.purpose in REPRESENTATIVE_PURPOSES
    return True


def purpose_for(subject: Subject, basis: Basis | None) -> Purpose:
    """Reads under a break-glass grant are emergency treatment; others keep the standing one."""
    return Purpose.ETREAT if basis is Basis.BREAK_GLASS else subject.purpose


def refusal_status(subject: Subject) -> Status:
    """Out of reach: a plain 404, or a 403 that tells a break-glass user what to do."""
    if subject.may_break_glass and subject.role in BREAK_GLASS_ROLES:
        return Status.FORBIDDEN
    return Status.NOT_FOUND


POLICY_EXEMPT_PURPOSES = frozenset(
    {Purpose.PATRQT, Purpose.FAMRQT, Purpose.PWATRNY, Purpose.HCOMPL, Purpose.HLEGAL,
     Purpose.ETREAT}
)  # fmt: skip
"""The individual's own access (and their representative's), the privacy officer's oversight
and emergency treatment: what the law requires or permits whatever uses a policy lists."""
PHI_TYPES = frozenset((*CLINICAL_TYPES, *COHORT_TYPES))


def outside_policy(
    subject: Subject, resource_type: str, phi_purposes: frozenset[str] | None
) -> str | None:
    """Why the workforce may not reach PHI under this purpose of use, if the deployment's
    policy lists no use of PHI for it (named system actors are audited jobs: exempt)."""
    if phi_purposes is None or subject.role is None or resource_type not in PHI_TYPES:
        return None
    if subject.purpose in POLICY_EXEMPT_PURPOSES or subject.purpose.value in phi_purposes:
        return None
    listed = ", ".join(sorted(phi_purposes)) or "nothing"
    return (
        f"this deployment's privacy policy uses health information only for {listed}, "
        f"not for {subject.purpose.value}"
    )


def decide(subject: Subject, target: Target) -> Decision:
    if subject.tenant_id != target.tenant_id:
        return _deny(Status.NOT_FOUND, NOT_FOUND_MESSAGE)  # the tenant wall: never say more
    permission = fhir_permission(target.resource_type, target.action)
    if permission is None:
        return _deny(Status.NOT_FOUND, f"{target.resource_type} is not served here")
    if permission not in subject.permissions:
        msg = f"your role and token do not allow {target.action} on {target.resource_type}"
        return _deny(Status.FORBIDDEN, msg)
    standing = ROLE_PURPOSES.get(subject.role, ()) if subject.role is not None else tuple(Purpose)
    if subject.purpose not in standing or subject.purpose in STANDING_PURPOSE_EXCLUDED:
        # ETREAT is never a standing purpose, not even a system actor's: only a live grant
        return _deny(Status.FORBIDDEN, "your purpose of use is not allowed for your role")
    if target.basis is None:
        return Decision(True, Status.ALLOWED, "not in a patient compartment", subject.purpose)
    if basis_admits(subject, target.basis, target.grant_until, target.now):
        purpose = purpose_for(subject, target.basis)
        return Decision(True, Status.ALLOWED, target.basis.value, purpose)
    status = refusal_status(subject)
    if status is Status.FORBIDDEN:
        return _deny(status, BREAK_GLASS_MESSAGE)
    return _deny(status, NOT_FOUND_MESSAGE)


def has_permission(permissions: frozenset[str], permission: str) -> bool:
    """A permission outside the FHIR API: tokens and sessions carry their role's (SMART scopes
    narrow only FHIR access); a named system actor carries every permission itself."""
    return permission in permissions
