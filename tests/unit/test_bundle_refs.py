"""Ordering the writes of a transaction and rewriting its references (records/bundle_refs.py)."""

from __future__ import annotations

import pytest

from carevault.errors import Unprocessable
from carevault.records.bundle_refs import is_conditional, reference_values, rewrite, write_order


def by_index(index: int) -> tuple[int, ...]:
    return (index,)


def test_writes_follow_what_they_reference_and_otherwise_keep_their_order() -> None:
    assert write_order([0, 1, 2, 3], by_index, {0: {2}, 1: {2}}, {}) == [2, 0, 1, 3]
    assert write_order([0, 1, 2], by_index, {}, {}) == [0, 1, 2]


def test_preferences_give_way_to_a_cycle_but_musts_do_not() -> None:
    # 0 and 1 prefer each other (existing resources): any order will do, here by index.
    assert write_order([0, 1], by_index, {}, {0: {1}, 1: {0}}) == [0, 1]
    assert write_order([0, 1, 2], by_index, {0: {2}}, {2: {1}}) == [1, 2, 0]
    with pytest.raises(Unprocessable) as refused:
        write_order([0, 1, 2, 3], by_index, {3: {1}, 1: {2}, 2: {1}}, {})
    assert "Bundle.entry[1] → Bundle.entry[2] → Bundle.entry[1]" in refused.value.message
    assert "entry[3]" not in refused.value.message  # waits on the cycle, is not part of it
    with pytest.raises(Unprocessable, match=r"entry\[0\] → Bundle.entry\[0\]"):
        write_order([0], by_index, {0: {0}}, {})


def test_rewrite_touches_every_reference_and_nothing_else() -> None:
    resource = {
        "subject": {"reference": "urn:uuid:a", "display": "urn:uuid:a"},
        "performer": [{"reference": "Practitioner?identifier=x|1"}, {"reference": "Patient/b"}],
        "note": [{"text": "urn:uuid:a"}],
    }
    mapping = {"urn:uuid:a": "Patient/1", "Practitioner?identifier=x|1": "Practitioner/2"}
    out = rewrite(resource, lambda ref: mapping.get(ref, ref))
    assert out == {
        "subject": {"reference": "Patient/1", "display": "urn:uuid:a"},
        "performer": [{"reference": "Practitioner/2"}, {"reference": "Patient/b"}],
        "note": [{"text": "urn:uuid:a"}],
    }
    assert resource["subject"]["reference"] == "urn:uuid:a"  # a copy: the input is untouched
    assert sorted(reference_values(resource)) == [
        "Patient/b", "Practitioner?identifier=x|1", "urn:uuid:a",
    ]  # fmt: skip


def test_conditional_references_are_type_and_query() -> None:
    assert is_conditional("Practitioner?identifier=http://hl7.org/fhir/sid/us-npi|99")
    assert not is_conditional("Patient/1")
    assert not is_conditional("http://example.org/fhir/Patient?name=x")
