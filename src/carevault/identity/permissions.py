"""The permission catalog (`scope:resource:action`), roles, and the purposes each role may claim."""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    PATIENT_READ = "fhir:Patient:read"
    PATIENT_WRITE = "fhir:Patient:write"
    PATIENT_DELETE = "fhir:Patient:delete"
    PRACTITIONER_READ = "fhir:Practitioner:read"
    PRACTITIONER_WRITE = "fhir:Practitioner:write"
    PRACTITIONER_DELETE = "fhir:Practitioner:delete"
    ORGANIZATION_READ = "fhir:Organization:read"
    ORGANIZATION_WRITE = "fhir:Organization:write"
    ORGANIZATION_DELETE = "fhir:Organization:delete"
    ENCOUNTER_READ = "fhir:Encounter:read"
    ENCOUNTER_WRITE = "fhir:Encounter:write"
    ENCOUNTER_DELETE = "fhir:Encounter:delete"
    CONDITION_READ = "fhir:Condition:read"
    CONDITION_WRITE = "fhir:Condition:write"
    CONDITION_DELETE = "fhir:Condition:delete"
    OBSERVATION_READ = "fhir:Observation:read"
    OBSERVATION_WRITE = "fhir:Observation:write"
    OBSERVATION_DELETE = "fhir:Observation:delete"
    DOCUMENT_REFERENCE_READ = "fhir:DocumentReference:read"
    DOCUMENT_REFERENCE_WRITE = "fhir:DocumentReference:write"
    DOCUMENT_REFERENCE_DELETE = "fhir:DocumentReference:delete"
    AUDIT_LOG_READ = "audit:log:read"
    IDENTITY_USER_MANAGE = "identity:user:manage"
    IDENTITY_TOKEN_MANAGE = "identity:token:manage"  # noqa: S105 (a permission name)

    @property
    def resource(self) -> str:
        return self.value.split(":")[1]

    @property
    def action(self) -> str:
        return self.value.split(":")[2]


def fhir_permission(resource_type: str, action: str) -> Permission | None:
    """The permission for an action on a FHIR type, or None if the type is not served."""
    try:
        return Permission(f"fhir:{resource_type}:{action}")
    except ValueError:
        return None


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


CLINICAL_TYPES = ("Patient", "Encounter", "Condition", "Observation", "DocumentReference")
"""Types that live in a patient's compartment: PHI."""
DIRECTORY_TYPES = ("Practitioner", "Organization")
"""Types that describe the workforce and organizations, not patients."""


def _grant(types: tuple[str, ...], *actions: str) -> frozenset[Permission]:
    return frozenset(p for t in types for a in actions if (p := fhir_permission(t, a)) is not None)


ALL_TYPES = CLINICAL_TYPES + DIRECTORY_TYPES

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.PRACTITIONER: _grant(ALL_TYPES, "read") | _grant(CLINICAL_TYPES, "write", "delete"),
    Role.STAFF: _grant(ALL_TYPES, "read") | _grant(("Patient", "Encounter"), "write"),
    # The account administrator runs the directory and the users; no patient data.
    Role.PRACTICE_ADMIN: _grant(DIRECTORY_TYPES, "read", "write", "delete")
    | {Permission.IDENTITY_USER_MANAGE, Permission.IDENTITY_TOKEN_MANAGE},
    # Patients and representatives read, and the gate scopes them to a compartment.
    Role.PATIENT: _grant(ALL_TYPES, "read"),
    Role.REPRESENTATIVE: _grant(ALL_TYPES, "read"),
    Role.PRIVACY_OFFICER: frozenset({Permission.AUDIT_LOG_READ}),
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
