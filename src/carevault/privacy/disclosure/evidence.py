"""164.512(f)(2): what a covered entity may give law enforcement to identify or locate a
suspect, fugitive, material witness or missing person — and what it never may.

(f)(2)(i) allows name and address, date and place of birth, social security number, ABO
blood type and rh factor, type of injury, date and time of treatment, date and time of
death, and a description of distinguishing physical characteristics. (f)(2)(ii): never
anything about DNA or DNA analysis, dental records, or typing, samples or analysis of body
fluids or tissue.
"""

from __future__ import annotations

from typing import Any

from carevault.privacy.disclosure.facts import Item, codings

LOINC = "http://loinc.org"
BLOOD_TYPE_CODES = frozenset({"882-1", "883-9", "884-7", "10331-7", "34474-7"})
"""LOINC ABO group, Rh type, and ABO and Rh group."""
ALLOWED_TYPES = frozenset({"Patient", "Encounter", "Observation", "Condition"})
"""Identity, dates of treatment, blood type and physical characteristics, type of injury."""

_FORBIDDEN_CODES = frozenset({
    # LOINC and SNOMED CT codes for DNA analysis, dental records and tissue typing
    "GE",  # v2-0074 diagnostic service section: genetics
    "21566-5", "47045-0", "51969-4", "55233-1", "81247-9",  # DNA / genetic analysis reports
    "69548-6",  # genetic variant assessment
    "4986-6", "13303-3", "57999-9",  # HLA typing
    "116148004",  # SNOMED: molecular genetics procedure
    "34043003",  # SNOMED: dental consultation and report
    "44338008",  # SNOMED: tissue typing
    "80146002",  # SNOMED: HLA typing
})  # fmt: skip
_FORBIDDEN_WORDS = ("dna", "genetic", "genotyp", "dental", "dentition", "odontogram",
                    "tissue typing", "hla typ", "histocompatibility", "body fluid")  # fmt: skip


def forbidden_evidence(item: Item) -> str | None:
    """Why this resource may never go to law enforcement under (f)(2), or None."""
    for value in _coded_elements(item.body):
        for _system, code, text in codings(value):
            words = text.lower()
            if code in _FORBIDDEN_CODES or any(w in words for w in _FORBIDDEN_WORDS):
                return (f"{item.ref} is DNA, dental or tissue-typing information, which "
                        "164.512(f)(2)(ii) never allows to law enforcement")  # fmt: skip
    return None


def outside_allow_list(item: Item) -> str | None:
    """Why this resource is beyond the (f)(2)(i) allow-list, or None."""
    if item.rtype not in ALLOWED_TYPES:
        return (f"{item.rtype} is not among what 164.512(f)(2)(i) allows to identify or "
                "locate a person")  # fmt: skip
    if item.rtype == "Observation":
        found = {c for _s, c, _t in codings(item.body.get("code"))}
        if not found & BLOOD_TYPE_CODES:
            return f"{item.ref}: of observations, only ABO blood type and Rh factor are allowed"
    return None


def _coded_elements(body: dict[str, Any]) -> list[Any]:
    return [body.get(k) for k in ("code", "category", "type", "class", "specialty")
            if body.get(k) is not None]  # fmt: skip
