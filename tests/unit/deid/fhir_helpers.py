"""Shared by the FHIR de-identification unit tests: a context with fake pseudonyms and a
recording scrubber, and a patient carrying every kind of identifier."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from carevault.deid.fhir.engine import Deidentifier
from carevault.deid.fhir.profile import Profile, load_profile
from carevault.deid.fhir.strategies import Context

EXPORT_DATE = date(2026, 12, 1)

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "pat-1",
    "meta": {"versionId": "3", "lastUpdated": "2026-01-02T03:04:05Z"},
    "text": {"status": "generated",
             "div": '<div xmlns="http://www.w3.org/1999/xhtml">Alicia Quintero <a href="x">'
                    "x</a></div>"},
    "extension": [
        {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex",
         "valueCode": "F"},
        {"url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
         "valueString": "Rosa Delgado"},
    ],
    "identifier": [
        {"type": {"coding": [{"code": "MR"}]}, "system": "urn:mrn", "value": "MRN-ALICE-1"},
        {"type": {"coding": [{"code": "SS"}]}, "system": "http://hl7.org/fhir/sid/us-ssn",
         "value": "999-12-3456"},
        {"type": {"coding": [{"code": "DL"}]}, "value": "S99912345"},
        {"type": {"coding": [{"code": "MB"}]}, "value": "PLAN-778899"},
    ],
    "name": [{"use": "official", "family": "Quintero", "given": ["Alicia", "Maria"]}],
    "telecom": [{"system": "phone", "value": "555-810-7203"},
                {"system": "fax", "value": "555-810-7204"},
                {"system": "email", "value": "alicia.q@example.org"},
                {"system": "url", "value": "https://alicia.example.org"}],
    "gender": "female",
    "birthDate": "1984-03-17",
    "deceasedDateTime": "2025-06-30T10:11:12-04:00",
    "address": [{"line": ["12 Lantern Row"], "city": "Springfield", "district": "Hampden",
                 "state": "MA", "postalCode": "01101-2233", "country": "US",
                 "period": {"start": "2001-02-03"}}],
    "photo": [{"contentType": "image/jpeg", "data": "AAAA"}],
    "contact": [{"relationship": [{"coding": [{"code": "N"}]}],
                 "name": {"family": "Quintero", "given": ["Jorge"]},
                 "telecom": [{"system": "phone", "value": "555-999-0000"}],
                 "organization": {"reference": "Organization/employer-1",
                                  "display": "Acme Widgets"}}],
    "managingOrganization": {"reference": "Organization/org-1", "display": "North Clinic"},
}  # fmt: skip


def context(**kw: Any) -> Context:
    scrubbed: list[str] = kw.pop("scrubbed", [])

    def scrub(text: str) -> str:
        scrubbed.append(text)
        return "[SCRUBBED]"

    return Context(
        export_date=kw.pop("export_date", EXPORT_DATE),
        pseudonym=lambda rtype, rid: f"p-{rtype.lower()}-{rid}",
        scrub=scrub,
        params=kw.pop("params", load_profile("safe-harbor").params),
        **kw,
    )


def deidentify(
    body: dict[str, Any], profile: Profile | str = "safe-harbor", ctx: Context | None = None
) -> tuple[dict[str, Any], Deidentifier]:
    engine = Deidentifier(load_profile(profile) if isinstance(profile, str) else profile)
    return engine.resource(copy.deepcopy(body), ctx or context()), engine
