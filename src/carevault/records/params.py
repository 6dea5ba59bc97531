"""Which search parameters each resource type supports, and how values are indexed.

The table drives indexing, query building and the CapabilityStatement alike, so
what we claim to support is exactly what we do.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from carevault.fhir_types import PATIENT_COMPARTMENT, SERVED_TYPES


class Kind(StrEnum):
    TOKEN = "token"  # noqa: S105 (a FHIR search type) — codes and statuses, in the clear
    IDENTIFIER = "identifier"  # token, keyed hash only
    TELECOM = "telecom"  # token, keyed hash only
    STRING = "string"  # names: keyed hashes of each prefix and of the exact value
    DATE = "date"  # clinical dates, in the clear
    BIRTHDATE = "birthdate"  # year in the clear; month and day only as keyed hashes
    REFERENCE = "reference"
    QUANTITY = "quantity"  # Quantity or Money: value in the clear, with its system and code


FHIR_TYPE = {
    Kind.TOKEN: "token",
    Kind.IDENTIFIER: "token",
    Kind.TELECOM: "token",
    Kind.STRING: "string",
    Kind.DATE: "date",
    Kind.BIRTHDATE: "date",
    Kind.REFERENCE: "reference",
    Kind.QUANTITY: "quantity",
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
_META = (
    _p("_profile", Kind.TOKEN, "meta.profile"),
    _p("_tag", Kind.TOKEN, "meta.tag"),
    _p("_security", Kind.TOKEN, "meta.security"),
)
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


def _about(path: str = "subject") -> tuple[SearchParam, ...]:
    """The parameters of a record about a patient: `patient`, `subject` (if any), identifier."""
    found = [_p("patient", Kind.REFERENCE, path, targets=("Patient",))]
    if path == "subject":
        found.append(_p("subject", Kind.REFERENCE, path))
    found.append(_p("identifier", Kind.IDENTIFIER, "identifier"))
    return tuple(found)


def _ref(name: str, *paths: str, to: tuple[str, ...] = ()) -> SearchParam:
    return SearchParam(name, Kind.REFERENCE, paths, targets=to)


def _token(name: str, *paths: str) -> SearchParam:
    return SearchParam(name, Kind.TOKEN, paths)


def _date(name: str, *paths: str) -> SearchParam:
    return SearchParam(name, Kind.DATE, paths)


_ENCOUNTER = _ref("encounter", "encounter", to=("Encounter",))

SEARCH_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "Patient": (
        *_PERSON,
        _p("birthdate", Kind.BIRTHDATE, "birthDate"),
        _ref(
            "general-practitioner",
            "generalPractitioner",
            to=("Practitioner", "PractitionerRole", "Organization"),
        ),
        _ref("organization", "managingOrganization", to=("Organization",)),
        _ref("link", "link.other", to=("Patient",)),
    ),
    "Practitioner": _PERSON,
    "RelatedPerson": (
        *_PERSON,
        _p("birthdate", Kind.BIRTHDATE, "birthDate"),
        _ref("patient", "patient", to=("Patient",)),
        _token("relationship", "relationship"),
    ),
    "PractitionerRole": (
        _p("identifier", Kind.IDENTIFIER, "identifier"),
        _token("active", "active"),
        _ref("practitioner", "practitioner", to=("Practitioner",)),
        _ref("organization", "organization", to=("Organization",)),
        _ref("location", "location", to=("Location",)),
        _token("role", "code"),
        _token("specialty", "specialty"),
    ),
    "Organization": (
        _p("identifier", Kind.IDENTIFIER, "identifier"),
        _p("name", Kind.STRING, "name", "alias"),
        _token("active", "active"),
        _token("type", "type"),
        _ref("partof", "partOf", to=("Organization",)),
    ),
    "Location": (
        _p("identifier", Kind.IDENTIFIER, "identifier"),
        _p("name", Kind.STRING, "name", "alias"),
        _token("status", "status"),
        _token("type", "type"),
        _ref("organization", "managingOrganization", to=("Organization",)),
        _ref("partof", "partOf", to=("Location",)),
    ),
    "Medication": (
        _p("identifier", Kind.IDENTIFIER, "identifier"),
        _token("code", "code"),
        _token("status", "status"),
        _token("form", "form"),
        _ref("manufacturer", "manufacturer", to=("Organization",)),
        _date("expiration-date", "batch.expirationDate"),
    ),
    "Group": (
        _p("identifier", Kind.IDENTIFIER, "identifier"),
        _token("type", "type"),
        _token("actual", "actual"),
        _token("code", "code"),
        _ref("member", "member.entity", to=("Patient", "Practitioner", "Device", "Group")),
        _ref("managing-entity", "managingEntity"),
    ),
    "Encounter": (
        *_about(),
        _token("status", "status"),
        _token("class", "class"),
        _token("type", "type"),
        _date("date", "period"),
        _ref("practitioner", "participant.individual", to=("Practitioner",)),
        _ref("participant", "participant.individual"),
        _ref("service-provider", "serviceProvider", to=("Organization",)),
        _ref("location", "location.location", to=("Location",)),
        _ref("part-of", "partOf", to=("Encounter",)),
        _token("reason-code", "reasonCode"),
    ),
    "Condition": (
        *_about(),
        _token("code", "code"),
        _token("clinical-status", "clinicalStatus"),
        _token("verification-status", "verificationStatus"),
        _token("category", "category"),
        _token("severity", "severity"),
        _date("onset-date", "onsetDateTime", "onsetPeriod"),
        _date("abatement-date", "abatementDateTime", "abatementPeriod"),
        _date("recorded-date", "recordedDate"),
        _ENCOUNTER,
        _ref("asserter", "asserter"),
    ),
    "Observation": (
        *_about(),
        _token("code", "code"),
        _token("status", "status"),
        _token("category", "category"),
        _token("value-concept", "valueCodeableConcept"),
        _token("component-code", "component.code"),
        _p("value-quantity", Kind.QUANTITY, "valueQuantity"),
        _p("component-value-quantity", Kind.QUANTITY, "component.valueQuantity"),
        _date("date", "effectiveDateTime", "effectivePeriod", "effectiveInstant"),
        _ENCOUNTER,
        _ref("performer", "performer"),
        _ref("based-on", "basedOn"),
        _ref("has-member", "hasMember", to=("Observation",)),
        _ref("derived-from", "derivedFrom"),
    ),
    "AllergyIntolerance": (
        *_about("patient"),
        _token("clinical-status", "clinicalStatus"),
        _token("verification-status", "verificationStatus"),
        _token("type", "type"),
        _token("category", "category"),
        _token("criticality", "criticality"),
        _token("code", "code", "reaction.substance"),
        _date("date", "recordedDate"),
        _date("onset", "onsetDateTime", "onsetPeriod"),
        _ref("recorder", "recorder"),
        _ref("asserter", "asserter"),
    ),
    "Immunization": (
        *_about("patient"),
        _token("status", "status"),
        _token("vaccine-code", "vaccineCode"),
        _token("reason-code", "reasonCode"),
        _date("date", "occurrenceDateTime"),
        _ref("location", "location", to=("Location",)),
        _ref("performer", "performer.actor"),
        _ENCOUNTER,
    ),
    "Procedure": (
        *_about(),
        _token("code", "code"),
        _token("status", "status"),
        _token("category", "category"),
        _token("reason-code", "reasonCode"),
        _date("date", "performedDateTime", "performedPeriod"),
        _ENCOUNTER,
        _ref("performer", "performer.actor"),
        _ref("location", "location", to=("Location",)),
        _ref("based-on", "basedOn"),
    ),
    "MedicationRequest": (
        *_about(),
        _token("status", "status"),
        _token("intent", "intent"),
        _token("category", "category"),
        _token("priority", "priority"),
        _token("code", "medicationCodeableConcept"),
        _ref("medication", "medicationReference", to=("Medication",)),
        _date("authoredon", "authoredOn"),
        _ref("requester", "requester"),
        _ENCOUNTER,
    ),
    "ServiceRequest": (
        *_about(),
        _token("status", "status"),
        _token("intent", "intent"),
        _token("code", "code"),
        _token("category", "category"),
        _token("priority", "priority"),
        _date("authored", "authoredOn"),
        _date("occurrence", "occurrenceDateTime", "occurrencePeriod"),
        _ref("requester", "requester"),
        _ref("performer", "performer"),
        _ENCOUNTER,
    ),
    "DiagnosticReport": (
        *_about(),
        _token("status", "status"),
        _token("code", "code"),
        _token("category", "category"),
        _date("date", "effectiveDateTime", "effectivePeriod"),
        _date("issued", "issued"),
        _ENCOUNTER,
        _ref("performer", "performer"),
        _ref("result", "result", to=("Observation",)),
        _ref("based-on", "basedOn"),
    ),
    "DocumentReference": (
        *_about(),
        _token("status", "status"),
        _token("type", "type"),
        _token("category", "category"),
        _token("contenttype", "content.attachment.contentType"),
        _date("date", "date"),
        _date("period", "context.period"),
        _ref("encounter", "context.encounter", to=("Encounter",)),
        _ref("author", "author"),
        _ref("custodian", "custodian", to=("Organization",)),
    ),
    "ImagingStudy": (
        *_about(),
        _token("status", "status"),
        _token("modality", "series.modality"),
        _token("bodysite", "series.bodySite"),
        _token("reason", "reasonCode"),
        _p("series", Kind.IDENTIFIER, "series.uid"),
        _p("instance", Kind.IDENTIFIER, "series.instance.uid"),
        _date("started", "started"),
        _ENCOUNTER,
        _ref("basedon", "basedOn"),
        _ref("referrer", "referrer"),
        _ref("interpreter", "interpreter"),
    ),
    "Appointment": (
        _ref("patient", "participant.actor", to=("Patient",)),
        _ref("actor", "participant.actor"),
        _ref("practitioner", "participant.actor", to=("Practitioner",)),
        _ref("location", "participant.actor", to=("Location",)),
        _p("identifier", Kind.IDENTIFIER, "identifier"),
        _token("status", "status"),
        _token("service-type", "serviceType"),
        _token("appointment-type", "appointmentType"),
        _token("reason-code", "reasonCode"),
        _token("part-status", "participant.status"),
        _date("date", "start"),
    ),
    "Communication": (
        *_about(),
        _token("status", "status"),
        _token("category", "category"),
        _token("medium", "medium"),
        _date("sent", "sent"),
        _date("received", "received"),
        _ref("sender", "sender"),
        _ref("recipient", "recipient"),
        _ref("based-on", "basedOn"),
        _ENCOUNTER,
    ),
    "Consent": (
        *_about("patient"),
        _token("status", "status"),
        _token("scope", "scope"),
        _token("category", "category"),
        _token("action", "provision.action"),
        _token("purpose", "provision.purpose"),
        _token("security-label", "provision.securityLabel"),
        _date("date", "dateTime"),
        _date("period", "provision.period"),
        _ref("actor", "provision.actor.reference"),
        _ref("consentor", "performer"),
        _ref("organization", "organization", to=("Organization",)),
        _ref("data", "provision.data.reference"),
    ),
    "Device": (
        *_about("patient"),
        _token("status", "status"),
        _token("type", "type"),
        _p("udi-di", Kind.IDENTIFIER, "udiCarrier.deviceIdentifier"),
        _p("device-name", Kind.STRING, "deviceName.name"),
        _p("manufacturer", Kind.STRING, "manufacturer"),
        _p("model", Kind.STRING, "modelNumber"),
        _ref("organization", "owner", to=("Organization",)),
        _ref("location", "location", to=("Location",)),
    ),
    "QuestionnaireResponse": (
        *_about(),
        _token("status", "status"),
        _token("questionnaire", "questionnaire"),
        _date("authored", "authored"),
        _ref("author", "author"),
        _ref("source", "source"),
        _ENCOUNTER,
    ),
    "Invoice": (
        *_about(),
        _token("status", "status"),
        _token("type", "type"),
        _date("date", "date"),
        _p("totalnet", Kind.QUANTITY, "totalNet"),
        _p("totalgross", Kind.QUANTITY, "totalGross"),
        _ref("issuer", "issuer", to=("Organization",)),
        _ref("participant", "participant.actor"),
        _ref("recipient", "recipient"),
    ),
    "CareTeam": (
        *_about(),
        _token("status", "status"),
        _token("category", "category"),
        _date("date", "period"),
        _ref("participant", "participant.member"),
        _ENCOUNTER,
    ),
}
SEARCH_PARAMS = {rtype: (*found, *_META) for rtype, found in SEARCH_PARAMS.items()}

SUPPORTED_TYPES = SERVED_TYPES
assert set(SEARCH_PARAMS) == set(SERVED_TYPES), "every served type has a search table"

COMPARTMENT_PATHS = PATIENT_COMPARTMENT
"""Where a resource names the patient whose compartment holds it."""

IN_COMPARTMENT = frozenset(PATIENT_COMPARTMENT)

COMMON_PARAMS = ("_id", "_lastUpdated")
RESULT_PARAMS = ("_count", "_page", "_format", "handling")
"""Parameters that shape the result rather than filter it (`handling` as in `Prefer: handling`)."""


def param(resource_type: str, name: str) -> SearchParam | None:
    for candidate in SEARCH_PARAMS.get(resource_type, ()):
        if candidate.name == name:
            return candidate
    return None
