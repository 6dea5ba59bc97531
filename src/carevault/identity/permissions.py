"""The permission catalog (`scope:resource:action`), roles, and the purposes each role may claim."""

from __future__ import annotations

from enum import StrEnum

from carevault.fhir_types import CLINICAL_TYPES, COHORT_TYPES, DIRECTORY_TYPES, SERVED_TYPES


class Permission(StrEnum):
    """Permissions outside the FHIR API; FHIR ones are `fhir:<Type>:<action>` (see below)."""

    AUDIT_LOG_READ = "audit:log:read"
    IDENTITY_USER_MANAGE = "identity:user:manage"
    IDENTITY_TOKEN_MANAGE = "identity:token:manage"  # noqa: S105 (a permission name)
    ACCESS_BREAK_GLASS_OPEN = "access:break-glass:open"  # and the user is named in advance
    ACCESS_REPRESENTATION_MANAGE = "access:representation:manage"
    PRIVACY_BREAK_GLASS_REVIEW = "privacy:break-glass:review"
    PRIVACY_ALERT_MANAGE = "privacy:alert:manage"  # snooping alerts: list, open, close
    PRIVACY_RESTRICTION_MANAGE = "privacy:restriction:manage"  # flag restricted patients


FHIR_ACTIONS = ("read", "write", "delete")


def fhir_permission(resource_type: str, action: str) -> str | None:
    """The permission for an action on a FHIR type, or None if the type is not served."""
    if resource_type not in SERVED_TYPES or action not in FHIR_ACTIONS:
        return None
    return f"fhir:{resource_type}:{action}"


class Role(StrEnum):
    PRACTITIONER = "practitioner"
    STAFF = "staff"
    PRACTICE_ADMIN = "practice-admin"
    PATIENT = "patient"
    REPRESENTATIVE = "representative"
    PRIVACY_OFFICER = "privacy-officer"
    VENDOR_OPERATOR = "vendor-operator"


class Purpose(StrEnum):
    """HL7 v3 PurposeOfUse codes (terminology.hl7.org/CodeSystem/v3-ActReason)."""

    TREAT = "TREAT"
    ETREAT = "ETREAT"  # emergency treatment: break-glass
    HPAYMT = "HPAYMT"
    HOPERAT = "HOPERAT"
    PATRQT = "PATRQT"
    FAMRQT = "FAMRQT"
    PWATRNY = "PWATRNY"
    HCOMPL = "HCOMPL"
    HLEGAL = "HLEGAL"
    HRESCH = "HRESCH"
    HSYSADMIN = "HSYSADMIN"


def _grant(types: tuple[str, ...], *actions: str) -> frozenset[str]:
    return frozenset(p for t in types for a in actions if (p := fhir_permission(t, a)) is not None)


ALL_TYPES = SERVED_TYPES
ALL_FHIR_PERMISSIONS = _grant(ALL_TYPES, *FHIR_ACTIONS)
_CARE_RECORDS = CLINICAL_TYPES + COHORT_TYPES
_FRONT_DESK = ("Patient", "Encounter", "Appointment", "Communication", "Consent", "Invoice")

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.PRACTITIONER: _grant(ALL_TYPES, "read")
    | _grant(_CARE_RECORDS, "write", "delete")
    | {Permission.ACCESS_BREAK_GLASS_OPEN},
    Role.STAFF: _grant(ALL_TYPES, "read")
    | _grant(_FRONT_DESK, "write")
    | {Permission.ACCESS_REPRESENTATION_MANAGE},
    # The account administrator runs the directory and the users; no patient data.
    Role.PRACTICE_ADMIN: _grant(DIRECTORY_TYPES, "read", "write", "delete")
    | {Permission.IDENTITY_USER_MANAGE, Permission.IDENTITY_TOKEN_MANAGE}
    | {Permission.ACCESS_REPRESENTATION_MANAGE}
    | {Permission.PRIVACY_RESTRICTION_MANAGE},
    # Patients and representatives read, and the gate scopes them to a compartment;
    # cohorts (Group) name other patients, so they are not theirs to read.
    Role.PATIENT: _grant(CLINICAL_TYPES + DIRECTORY_TYPES, "read"),
    Role.REPRESENTATIVE: _grant(CLINICAL_TYPES + DIRECTORY_TYPES, "read"),
    Role.PRIVACY_OFFICER: frozenset({Permission.AUDIT_LOG_READ})
    | {Permission.PRIVACY_BREAK_GLASS_REVIEW}
    | {Permission.PRIVACY_ALERT_MANAGE, Permission.PRIVACY_RESTRICTION_MANAGE},
    Role.VENDOR_OPERATOR: frozenset(),
}

ROLE_PURPOSES: dict[Role, tuple[Purpose, ...]] = {
    Role.PRACTITIONER: (Purpose.TREAT, Purpose.ETREAT, Purpose.HOPERAT),
    Role.STAFF: (Purpose.TREAT, Purpose.HPAYMT, Purpose.HOPERAT),
    Role.PRACTICE_ADMIN: (Purpose.HOPERAT,),
    Role.PATIENT: (Purpose.PATRQT,),
    Role.REPRESENTATIVE: (Purpose.FAMRQT, Purpose.PWATRNY),
    Role.PRIVACY_OFFICER: (Purpose.HCOMPL, Purpose.HLEGAL),
    Role.VENDOR_OPERATOR: (Purpose.HSYSADMIN,),
}

COMPARTMENT_ROLES = frozenset({Role.PATIENT, Role.REPRESENTATIVE})
"""Roles whose reach is the compartments of the patients they are linked to, never the tenant."""

# ETREAT is claimed through break-glass (the access issue), never as a token's standing purpose.
STANDING_PURPOSE_EXCLUDED = frozenset({Purpose.ETREAT})


def token_permissions(role: Role, fhir_scopes: frozenset[str]) -> frozenset[str]:
    """What a token or session may do: the role's FHIR permissions narrowed by its SMART scopes,
    plus the role's other permissions (SMART scopes speak only of FHIR types)."""
    granted = ROLE_PERMISSIONS[role]
    return (granted & fhir_scopes) | frozenset(p for p in granted if not p.startswith("fhir:"))
