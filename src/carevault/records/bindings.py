"""Codes bound to a required value set, which fhir.resources does not check.

Only elements of the served types whose binding strength is `required` in R4
are listed; an unknown code there makes the resource invalid.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

_GENDER = frozenset({"male", "female", "other", "unknown"})
_CONDITION_CLINICAL = frozenset(
    {"active", "recurrence", "relapse", "inactive", "remission", "resolved"}
)
_CONDITION_VERIFICATION = frozenset(
    {"unconfirmed", "provisional", "differential", "confirmed", "refuted", "entered-in-error"}
)

_EVENT_STATUS = frozenset({
    "preparation", "in-progress", "not-done", "on-hold", "stopped", "completed",
    "entered-in-error", "unknown",
})  # fmt: skip
_PRIORITY = frozenset({"routine", "urgent", "asap", "stat"})
_REQUEST_INTENT = frozenset({
    "proposal", "plan", "directive", "order", "original-order", "reflex-order",
    "filler-order", "instance-order", "option",
})  # fmt: skip

REQUIRED: dict[str, dict[str, frozenset[str]]] = {
    "Patient": {"gender": _GENDER},
    "Practitioner": {"gender": _GENDER},
    "Encounter": {
        "status": frozenset({
            "planned", "arrived", "triaged", "in-progress", "onleave", "finished",
            "cancelled", "entered-in-error", "unknown",
        }),
    },
    "Condition": {
        "clinicalStatus": _CONDITION_CLINICAL,
        "verificationStatus": _CONDITION_VERIFICATION,
    },
    "Observation": {
        "status": frozenset({
            "registered", "preliminary", "final", "amended", "corrected", "cancelled",
            "entered-in-error", "unknown",
        }),
    },
    "DocumentReference": {
        "status": frozenset({"current", "superseded", "entered-in-error"}),
        "docStatus": frozenset({"preliminary", "final", "amended", "entered-in-error"}),
    },
    "AllergyIntolerance": {
        "clinicalStatus": frozenset({"active", "inactive", "resolved"}),
        "verificationStatus": frozenset(
            {"unconfirmed", "confirmed", "refuted", "entered-in-error"}
        ),
        "type": frozenset({"allergy", "intolerance"}),
        "category": frozenset({"food", "medication", "environment", "biologic"}),
        "criticality": frozenset({"low", "high", "unable-to-assess"}),
    },
    "Appointment": {
        "status": frozenset({
            "proposed", "pending", "booked", "arrived", "fulfilled", "cancelled", "noshow",
            "entered-in-error", "checked-in", "waitlist",
        }),
    },
    "CareTeam": {
        "status": frozenset({"proposed", "active", "suspended", "inactive", "entered-in-error"}),
    },
    "Communication": {"status": _EVENT_STATUS, "priority": _PRIORITY},
    "Consent": {
        "status": frozenset(
            {"draft", "proposed", "active", "rejected", "inactive", "entered-in-error"}
        ),
    },
    "Device": {"status": frozenset({"active", "inactive", "entered-in-error", "unknown"})},
    "DiagnosticReport": {
        "status": frozenset({
            "registered", "partial", "preliminary", "final", "amended", "corrected",
            "appended", "cancelled", "entered-in-error", "unknown",
        }),
    },
    "Group": {
        "type": frozenset(
            {"person", "animal", "practitioner", "device", "medication", "substance"}
        ),
    },
    "ImagingStudy": {
        "status": frozenset(
            {"registered", "available", "cancelled", "entered-in-error", "unknown"}
        ),
    },
    "Immunization": {"status": frozenset({"completed", "entered-in-error", "not-done"})},
    "Invoice": {
        "status": frozenset({"draft", "issued", "balanced", "cancelled", "entered-in-error"}),
    },
    "Location": {
        "status": frozenset({"active", "suspended", "inactive"}),
        "mode": frozenset({"instance", "kind"}),
    },
    "Medication": {"status": frozenset({"active", "inactive", "entered-in-error"})},
    "MedicationRequest": {
        "status": frozenset({
            "active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped",
            "draft", "unknown",
        }),
        "intent": _REQUEST_INTENT - {"directive"},
        "priority": _PRIORITY,
    },
    "Procedure": {"status": _EVENT_STATUS},
    "QuestionnaireResponse": {
        "status": frozenset(
            {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
        ),
    },
    "ServiceRequest": {
        "status": frozenset({
            "draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown",
        }),
        "intent": _REQUEST_INTENT,
        "priority": _PRIORITY,
    },
}  # fmt: skip


def violations(resource_type: str, body: dict[str, Any]) -> Iterator[str]:
    """The elements whose code is outside their required value set."""
    for element, allowed in REQUIRED.get(resource_type, {}).items():
        value = body.get(element)
        if value is None:
            continue
        codes = _codes(value)
        if not codes or any(code not in allowed for code in codes):
            yield f"{resource_type}.{element}"


def _codes(value: Any) -> list[str]:
    if isinstance(value, list):  # a repeating code (AllergyIntolerance.category)
        return [code for item in value for code in _codes(item)]
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):  # a CodeableConcept: its codings must use the value set's codes
        codings = value.get("coding")
        return (
            [_text(c.get("code")) for c in codings if isinstance(c, dict)]
            if isinstance(codings, list)
            else [""]
        )
    return [""]  # a number, a boolean, null: never a code of the value set


def _text(code: Any) -> str:
    return code if isinstance(code, str) else ""
