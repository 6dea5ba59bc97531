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
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):  # a CodeableConcept: its codings must use the value set's codes
        return [c.get("code", "") for c in value.get("coding") or [] if isinstance(c, dict)]
    return []
