"""Which search parameters each resource type supports, and how values are indexed.

The table drives indexing, query building and the CapabilityStatement alike, so
what we claim to support is exactly what we do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    TOKEN = "token"  # noqa: S105 (a FHIR search type) — codes and statuses, in the clear
    IDENTIFIER = "identifier"  # token, keyed hash only
    TELECOM = "telecom"  # token, keyed hash only
    STRING = "string"  # names: keyed hashes of each prefix and of the exact value
    DATE = "date"  # clinical dates, in the clear
    BIRTHDATE = "birthdate"  # year in the clear; month and day only as keyed hashes
    REFERENCE = "reference"


FHIR_TYPE = {
    Kind.TOKEN: "token",
    Kind.IDENTIFIER: "token",
    Kind.TELECOM: "token",
    Kind.STRING: "string",
    Kind.DATE: "date",
    Kind.BIRTHDATE: "date",
    Kind.REFERENCE: "reference",
}


@dataclass(frozen=True)
class SearchParam:
    name: str
    kind: Kind
    paths: tuple[str, ...]
    targets: tuple[str, ...] = ()
    """Reference targets allowed (e.g. `patient` → Patient only)."""
    telecom_system: str | None = None


def _p(name: str, kind: Kind, *paths: str, **kw: object) -> SearchParam:
    return SearchParam(name, kind, paths, **kw)  # type: ignore[arg-type]


_NAME_PARTS = ("name.family", "name.given", "name.text", "name.prefix", "name.suffix")
_PERSON = (
    _p("identifier", Kind.IDENTIFIER, "identifier"),
    _p("name", Kind.STRING, *_NAME_PARTS),
    _p("family", Kind.STRING, "name.family"),
    _p("given", Kind.STRING, "name.given"),
    _p("gender", Kind.TOKEN, "gender"),
    _p("active", Kind.TOKEN, "active"),
    _p("telecom", Kind.TELECOM, "telecom"),
    _p("phone", Kind.TELECOM, "telecom", telecom_system="phone"),
    _p("email", Kind.TELECOM, "telecom", telecom_system="email"),
)
_SUBJECT = (
    _p("patient", Kind.REFERENCE, "subject", targets=("Patient",)),
    _p("subject", Kind.REFERENCE, "subject", targets=("Patient", "Group")),
    _p("identifier", Kind.IDENTIFIER, "identifier"),
)

SEARCH_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "Patient": (
        *_PERSON,
        _p("birthdate", Kind.BIRTHDATE, "birthDate"),
        _p(
            "general-practitioner",
            Kind.REFERENCE,
            "generalPractitioner",
            targets=("Practitioner", "Organization"),
        ),
        _p("organization", Kind.REFERENCE, "managingOrganization", targets=("Organization",)),
    ),
    "Practitioner": _PERSON,
    "Organization": (
        _p("identifier", Kind.IDENTIFIER, "identifier"),
        _p("name", Kind.STRING, "name", "alias"),
        _p("active", Kind.TOKEN, "active"),
        _p("type", Kind.TOKEN, "type"),
    ),
    "Encounter": (
        *_SUBJECT,
        _p("status", Kind.TOKEN, "status"),
        _p("class", Kind.TOKEN, "class"),
        _p("type", Kind.TOKEN, "type"),
        _p("date", Kind.DATE, "period"),
        _p("practitioner", Kind.REFERENCE, "participant.individual", targets=("Practitioner",)),
        _p("service-provider", Kind.REFERENCE, "serviceProvider", targets=("Organization",)),
    ),
    "Condition": (
        *_SUBJECT,
        _p("code", Kind.TOKEN, "code"),
        _p("clinical-status", Kind.TOKEN, "clinicalStatus"),
        _p("verification-status", Kind.TOKEN, "verificationStatus"),
        _p("category", Kind.TOKEN, "category"),
        _p("onset-date", Kind.DATE, "onsetDateTime", "onsetPeriod"),
        _p("recorded-date", Kind.DATE, "recordedDate"),
        _p("encounter", Kind.REFERENCE, "encounter", targets=("Encounter",)),
    ),
    "Observation": (
        *_SUBJECT,
        _p("code", Kind.TOKEN, "code"),
        _p("status", Kind.TOKEN, "status"),
        _p("category", Kind.TOKEN, "category"),
        _p("date", Kind.DATE, "effectiveDateTime", "effectivePeriod", "effectiveInstant"),
        _p("encounter", Kind.REFERENCE, "encounter", targets=("Encounter",)),
    ),
    "DocumentReference": (
        *_SUBJECT,
        _p("status", Kind.TOKEN, "status"),
        _p("type", Kind.TOKEN, "type"),
        _p("category", Kind.TOKEN, "category"),
        _p("date", Kind.DATE, "date"),
        _p("encounter", Kind.REFERENCE, "context.encounter", targets=("Encounter",)),
        _p("author", Kind.REFERENCE, "author", targets=("Practitioner", "Organization")),
    ),
}

SUPPORTED_TYPES = tuple(SEARCH_PARAMS)

COMPARTMENT_PATHS: dict[str, str | None] = {
    "Patient": None,  # a Patient is its own compartment
    "Practitioner": None,
    "Organization": None,
    "Encounter": "subject",
    "Condition": "subject",
    "Observation": "subject",
    "DocumentReference": "subject",
}
"""Where a resource names the patient whose compartment holds it."""

IN_COMPARTMENT = frozenset(
    {"Patient", "Encounter", "Condition", "Observation", "DocumentReference"}
)

COMMON_PARAMS = ("_id", "_lastUpdated")
RESULT_PARAMS = ("_count", "_page", "_format", "handling")
"""Parameters that shape the result rather than filter it (`handling` as in `Prefer: handling`)."""


def param(resource_type: str, name: str) -> SearchParam | None:
    for candidate in SEARCH_PARAMS.get(resource_type, ()):
        if candidate.name == name:
            return candidate
    return None
