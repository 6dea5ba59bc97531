"""Which category of the policy each kept thing belongs to: data, not code paths.

A resource in a patient's compartment is PHI (`phi`). One carrying a biometric security
label is `biometric`: if it was collected for the patient's care it is also PHI (kept until
the provider asks, where the policy says so); if it was collected only to verify who someone
is (the vendor's purpose, e.g. a face match at sign-up) it is the vendor's personal
information and follows the biometric schedule. Account records are `account`; what is kept
to market to a person (their communication preference and the marketing sent to them) is
`marketing-contacts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

DATA_CATEGORY_SYSTEM = "https://carevault.example/fhir/CodeSystem/data-category"


@dataclass(frozen=True)
class Classified:
    category: str
    phi: bool


PHI = Classified("phi", phi=True)
DIRECTORY = Classified("directory", phi=False)
"""Practitioners, organizations, locations: the tenant's directory, no patient's data."""
ACCOUNT = Classified("account", phi=False)
MARKETING_CONTACTS = Classified("marketing-contacts", phi=False)

PURPOSE_ENDS: dict[str, str] = {
    ACCOUNT.category: "the account's closing",
    MARKETING_CONTACTS.category: "the request to stop marketing",
}
"""Categories whose `purpose-satisfied` is an event CareVault records, and that event. An
account is kept to serve its holder: its purpose ends when it is closed or inactivated.
Marketing contacts are kept to market to the person: their purpose ends when the person asks
to stop (the opt-out). Any other category's purpose has no clock CareVault can read."""

LABELS: dict[tuple[str, str], Classified] = {
    (DATA_CATEGORY_SYSTEM, "biometric"): Classified("biometric", phi=True),
    (DATA_CATEGORY_SYSTEM, "biometric-identity"): Classified("biometric", phi=False),
}
"""meta.security (system, code) → category. The first listed label that matches wins."""


def classify(patient_id: str | None, security: Iterable[tuple[str, str]]) -> Classified:
    for label in security:
        found = LABELS.get(label)
        if found is not None:
            return found
    return PHI if patient_id else DIRECTORY


def biometric_label(*, phi: bool) -> dict[str, str]:
    """The meta.security coding that marks a resource biometric (for writers and tests)."""
    code = "biometric" if phi else "biometric-identity"
    return {"system": DATA_CATEGORY_SYSTEM, "code": code}
