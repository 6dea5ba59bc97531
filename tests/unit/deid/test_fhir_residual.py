"""The residual scan: every original identifying value is found again in whatever form it
is written (case, punctuation, date formats, base64 notes), and a clean output is clean."""

from __future__ import annotations

import base64
import copy
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carevault.deid.fhir.partition import Pseudonyms, deidentify_partition
from carevault.deid.fhir.profile import load_profile, parse_profile
from carevault.deid.fhir.residual import ResidualScan
from carevault.deid.fhir.values import KnownValues, collect
from tests.unit.deid.fhir_helpers import PATIENT

ALL = frozenset({"name", "identifier", "telecom", "street", "date", "geography"})


def known() -> KnownValues:
    values = KnownValues()
    collect(values, copy.deepcopy(PATIENT))
    return values


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("seen: QUINTERO", "name"),
        ("Alicia came in", "name"),
        ("mother Rosa Delgado", "name"),
        ("MRN mrn-alice-1 on file", "identifier"),
        ("ssn 999123456", "identifier"),
        ("call (555) 810 7203", "telecom"),
        ("call 5558107203", "telecom"),
        ("mail alicia.q@example.org", "telecom"),
        ("lives at 12 lantern row", "street"),
        ("born 1984-03-17", "date"),
        ("born 3/17/1984", "date"),
        ("born March 17th, 1984", "date"),
        ("born 17 Mar 1984", "date"),
        ("from Springfield", "geography"),
        ("zip 01101", "geography"),
    ],
)
def test_an_original_value_is_found_in_any_usual_form(text: str, kind: str) -> None:
    hits = known().find(text)
    assert [h.kind for h in hits] == [kind]
    assert text[hits[0].start : hits[0].end]


@pytest.mark.parametrize(
    "text",
    ["Alic", "quinter", "born 1984", "born 1984-03-18", "555-810", "lantern", "state MA"],
)
def test_near_misses_are_not_findings(text: str) -> None:
    assert known().find(text) == []


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=60))
def test_a_value_planted_anywhere_in_text_is_found(noise: str) -> None:
    cut = len(noise) // 2
    text = f"{noise[:cut]} 999-12-3456 {noise[cut:]}"
    assert "identifier" in {h.kind for h in known().find(text)}


def test_the_scan_reads_base64_notes_and_skips_codes() -> None:
    scan = ResidualScan(ALL)
    note = base64.b64encode(b"Pt Quintero doing well").decode()
    body = {"resourceType": "DocumentReference",
            "content": [{"attachment": {"contentType": "text/plain", "data": note}}],
            "type": {"coding": [{"system": "urn:x", "code": "01101"}]}}  # fmt: skip
    assert scan.scan(known(), body) == 1
    assert list(scan.findings) == [("name", "DocumentReference", "DocumentReference.content"
                                    ".attachment.data")]  # fmt: skip
    report = scan.as_dict()
    assert report["clean"] is False
    assert "Quintero" not in str(report)


def _partition(profile_text: bytes | None = None) -> ResidualScan:
    profile = (parse_profile(profile_text, "t.toml") if profile_text
               else load_profile("safe-harbor"))  # fmt: skip
    pseudonyms = Pseudonyms({"pat-1": "c0de"}, lambda t, i: f"h{len(i)}",
                            lambda label, code: b"k" * 32, lambda rid: "other")  # fmt: skip
    condition = {"resourceType": "Condition", "id": "cond-1",
                 "subject": {"reference": "Patient/pat-1"},
                 "note": [{"text": "Alicia Quintero reports pain since 2020-05-06"}],
                 "onsetDateTime": "2020-05-06"}  # fmt: skip
    result = deidentify_partition(
        profile, [copy.deepcopy(PATIENT), condition], frozenset({"pat-1"}), pseudonyms,
        date(2026, 12, 1), lambda text, style, key: text,  # a scrubber that misses all
    )  # fmt: skip
    return result.scan


def test_known_values_are_masked_in_free_text_even_when_the_scrubber_misses_them() -> None:
    assert _partition().clean


def test_a_profile_that_keeps_a_name_fails_the_scan() -> None:
    leaky = load_profile("safe-harbor")
    text = (b'name = "leaky"\nversion = "0"\ndates = "year"\n'
            b'rules = [["*.id", "pseudonymize-id", "resource-id"], '
            b'["Patient.name", "keep", "name"], ["**", "remove", "other"]]')  # fmt: skip
    scan = _partition(text)
    assert not scan.clean
    assert {k for k, _, _ in scan.findings} == {"name"}
    assert leaky.name == "safe-harbor"
