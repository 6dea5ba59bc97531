"""What the gate serves, described for the faces (CapabilityStatement) without exposing records/."""

from __future__ import annotations

from dataclasses import dataclass

from carevault.records.params import FHIR_TYPE, SEARCH_PARAMS, SUPPORTED_TYPES, Kind


@dataclass(frozen=True)
class ParamInfo:
    name: str
    type: str
    documentation: str


_NOTES = {
    Kind.IDENTIFIER: "Exact match only (system|value or value); stored as a keyed hash.",
    Kind.TELECOM: "Exact match on the normalized value; stored as a keyed hash.",
    Kind.STRING: "Case- and accent-insensitive prefix (first 32 characters), or :exact; "
    "stored as keyed hashes, so :contains is not supported.",
    Kind.BIRTHDATE: "Year comparisons (eq, ne, lt, gt, le, ge with YYYY); equality with a whole "
    "date or month. Full dates are stored only as keyed hashes.",
    Kind.DATE: "Prefixes eq, ne, lt, gt, le, ge.",
    Kind.TOKEN: "system|code, code, or system|.",
    Kind.REFERENCE: "Type/id or id; a :Type modifier names the target type.",
    Kind.QUANTITY: "[prefix]value|system|code; prefixes eq, ne, lt, gt, le, ge.",
}

SERVED_TYPES: tuple[str, ...] = SUPPORTED_TYPES


def search_params(resource_type: str) -> list[ParamInfo]:
    found = [
        ParamInfo("_id", "token", "Logical id."),
        ParamInfo("_lastUpdated", "date", "When the current version was written."),
    ]
    found += [
        ParamInfo(sp.name, FHIR_TYPE[sp.kind], _NOTES[sp.kind])
        for sp in SEARCH_PARAMS.get(resource_type, ())
    ]
    return found
