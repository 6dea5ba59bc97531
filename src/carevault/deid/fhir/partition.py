"""One partition's work: a few patients' resources in, their de-identified copies out, with
the counts and the residual scan. Pure: no database, no files (export.py does those)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from carevault.deid.fhir.engine import Deidentifier, Tally
from carevault.deid.fhir.profile import Profile
from carevault.deid.fhir.residual import ResidualScan
from carevault.deid.fhir.strategies import Context
from carevault.deid.fhir.values import KnownValues, collect
from carevault.fhir_types import PATIENT_COMPARTMENT

TAGS = {"name": "NAME", "identifier": "ID", "telecom": "PHONE", "street": "LOCATION",
        "geography": "LOCATION", "date": "DATE"}  # fmt: skip
_PATIENT_REF = re.compile(r"Patient/([A-Za-z0-9\-.]{1,64})")

Scrubber = Callable[[str, str, bytes], str]
"""(text, style, per-patient key) -> scrubbed text (carevault.deid.text.scrub_text)."""


class Pseudonyms:
    """What a partition needs from the project: codes of its patients and keyed pseudonyms."""

    def __init__(
        self,
        codes: Mapping[str, str],
        keyed: Callable[[str, str], str],
        derived_key: Callable[[str, str], bytes],
        more_codes: Callable[[str], str],
    ) -> None:
        self.codes = dict(codes)
        self._keyed = keyed
        self.derived_key = derived_key
        self._more = more_codes

    def __call__(self, rtype: str, rid: str) -> str:
        if rtype == "Patient":
            if rid not in self.codes:  # a patient outside the partition (a Patient.link …)
                self.codes[rid] = self._more(rid)
            return self.codes[rid]
        return self._keyed(rtype, rid)


@dataclass
class PartitionResult:
    outputs: dict[str, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    """Per type: (patient code, de-identified resource)."""
    tally: Tally = field(default_factory=Tally)
    scan: ResidualScan = field(default_factory=lambda: ResidualScan(frozenset()))
    patients: int = 0
    resources: int = 0


def patient_of(body: dict[str, Any], members: frozenset[str]) -> str | None:
    """The partition patient whose compartment holds this resource."""
    rtype = str(body.get("resourceType", ""))
    if rtype == "Patient":
        return str(body.get("id"))
    element = PATIENT_COMPARTMENT.get(rtype)
    if element is None:
        return None
    for ref in _references(body, element.split(".")):
        found = _PATIENT_REF.fullmatch(ref)
        if found and found.group(1) in members:
            return found.group(1)
    return None


def _references(node: Any, path: list[str]) -> Iterable[str]:
    if isinstance(node, list):
        for item in node:
            yield from _references(item, path)
    elif isinstance(node, dict):
        if not path:
            if isinstance(node.get("reference"), str):
                yield node["reference"]
            return
        yield from _references(node.get(path[0]), path[1:])


def deidentify_partition(
    profile: Profile,
    resources: Iterable[dict[str, Any]],
    members: frozenset[str],
    pseudonyms: Pseudonyms,
    export_date: date,
    scrubber: Scrubber,
    *,
    style: str = "tag",
) -> PartitionResult:
    by_patient: dict[str, list[dict[str, Any]]] = {}
    known = KnownValues()
    for body in resources:
        owner = patient_of(body, members)
        if owner is None:
            continue  # not in these patients' compartments: nothing of theirs to release
        by_patient.setdefault(owner, []).append(body)
        collect(known, body)
    result = PartitionResult(scan=ResidualScan(profile.residual_scan))
    engine = Deidentifier(profile)
    for patient_id, bodies in by_patient.items():
        code = pseudonyms("Patient", patient_id)
        ctx = Context(
            export_date=export_date,
            pseudonym=pseudonyms,
            scrub=_scrub(known, profile.residual_scan, scrubber, style,
                         pseudonyms.derived_key("surrogates", code)),
            params=profile.params,
            shift_days=int.from_bytes(pseudonyms.derived_key("shift", code)[:4]) % 731 - 365,
        )  # fmt: skip
        for body in bodies:
            out = engine.resource(body, ctx)
            result.scan.scan(known, out)
            result.outputs.setdefault(out["resourceType"], []).append((code, out))
            result.resources += 1
        result.patients += 1
    result.tally = engine.tally
    return result


def _scrub(
    known: KnownValues, kinds: frozenset[str], scrubber: Scrubber, style: str, key: bytes
) -> Callable[[str], str]:
    """Known values first (the patients' own names and numbers, whole), then the scrubber;
    memoized, as coded texts repeat within a patient."""
    memo: dict[str, str] = {}

    def scrub(text: str) -> str:
        if text in memo:
            return memo[text]
        masked, last = [], 0
        for hit in sorted(known.find(text, kinds), key=lambda h: h.start):
            if hit.start < last:
                continue
            masked += [text[last : hit.start], f"[{TAGS.get(hit.kind, 'OTHER')}]"]
            last = hit.end
        masked.append(text[last:])
        memo[text] = scrubber("".join(masked), style, key)
        return memo[text]

    return scrub
