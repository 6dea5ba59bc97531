"""The FHIR resource types CareVault serves, and where each names its patient.

Shared by identity (permissions, SMART scopes) and records (storage, search), so
both agree on one list.
"""

from __future__ import annotations

PATIENT_COMPARTMENT: dict[str, str | None] = {
    "Patient": None,  # a Patient is its own compartment
    "AllergyIntolerance": "patient",
    "Appointment": "participant.actor",
    "CareTeam": "subject",
    "Communication": "subject",
    "Condition": "subject",
    "Consent": "patient",
    "Device": "patient",
    "DiagnosticReport": "subject",
    "DocumentReference": "subject",
    "Encounter": "subject",
    "ImagingStudy": "subject",
    "Immunization": "patient",
    "Invoice": "subject",
    "MedicationRequest": "subject",
    "Observation": "subject",
    "Procedure": "subject",
    "QuestionnaireResponse": "subject",
    "RelatedPerson": "patient",  # a relative or proxy: PHI of the patient they relate to
    "ServiceRequest": "subject",
}
"""Types in a patient's compartment (PHI), and the element naming that patient."""

DIRECTORY_TYPES = ("Practitioner", "PractitionerRole", "Organization", "Location", "Medication")
"""Types that describe the workforce, places, organizations and products, not patients."""

COHORT_TYPES = ("Group",)
"""Lists of patients: PHI, but in no single compartment, so never shown to patients."""

CLINICAL_TYPES = tuple(PATIENT_COMPARTMENT)
SERVED_TYPES = tuple(sorted((*CLINICAL_TYPES, *DIRECTORY_TYPES, *COHORT_TYPES)))
