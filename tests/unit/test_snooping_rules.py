"""The snooping rules without a database: what is watched, how people compare, volume."""

from __future__ import annotations

import pytest

from carevault.privacy.oversight.rules import (
    ADDRESS,
    FAMILY,
    VolumeRule,
    identity_marks,
    openings,
    watched,
)


@pytest.mark.parametrize(
    ("role", "action", "outcome", "expected"),
    [
        ("staff", "read", "success", True),
        ("practitioner", "search", "success", True),
        ("practitioner", "everything", "success", True),
        ("practice-admin", "export", "success", True),
        ("staff", "read", "denied", False),  # refused: nothing was opened
        ("staff", "update", "success", False),
        ("patient", "read", "success", False),  # their own record
        ("representative", "read", "success", False),
        ("system", "search", "success", False),  # the sentinel itself, imports, jobs
    ],
)
def test_only_successful_workforce_reads_are_watched(
    role: str, action: str, outcome: str, expected: bool
) -> None:
    assert watched(role, action, outcome) is expected


def test_openings_name_each_patient_once_and_skip_junk() -> None:
    found = list(openings(7, "u1", "2026-11-23T10:00:00.000000Z", ["p1", "p1", "", 3, "p2"]))
    assert [(o.patient_id, o.day, o.seq) for o in found] == [
        ("p1", "2026-11-23", 7),
        ("p2", "2026-11-23", 7),
    ]


def test_names_compare_folded_and_addresses_on_lines_and_postal_code() -> None:
    a = identity_marks(
        {
            "name": [{"family": "Müller"}, {"given": ["No family"]}],
            "address": [{"line": ["12  Lantern  Row"], "postalCode": "01 101", "country": "US"}],
        }
    )
    b = identity_marks(
        {
            "name": [{"family": "MULLER"}],
            "address": [{"line": ["12 lantern row"], "postalCode": "01101", "city": "X"}],
        }
    )
    assert a == b
    assert {kind for kind, _ in a} == {FAMILY, ADDRESS}


@pytest.mark.parametrize(
    "resource",
    [
        {},
        {"name": "not a list", "address": {"line": ["1 Road"]}},
        {"address": [{"line": ["1 Road"]}]},  # no postal code or city: too vague to compare
        {"address": [{"postalCode": "01101"}]},  # no street
        {"address": [{"use": "old", "line": ["1 Road"], "postalCode": "01101"}]},
        {"name": [{"family": "   "}]},
    ],
)
def test_nothing_comparable_gives_no_marks(resource: dict[str, object]) -> None:
    assert identity_marks(resource) == set()


def test_volume_threshold_is_the_larger_of_a_multiple_of_the_median_and_the_floor() -> None:
    rule = VolumeRule()
    assert rule.threshold([]) == 25  # no history: the floor
    assert rule.threshold([5] * 30) == 25  # 3 x 5 = 15 < 25
    assert rule.threshold([0, 0, 20, 20, 22]) == 60  # idle days do not lower the median
    assert not rule.exceeded(25, [5] * 30)
    assert rule.exceeded(26, [5] * 30)
    assert rule.exceeded(61, [20] * 10)
    assert not rule.exceeded(60, [20] * 10)


def test_volume_rule_is_configurable() -> None:
    strict = VolumeRule(multiplier=2.0, floor=5, window_days=7)
    assert strict.threshold([4, 4, 4]) == 8
    assert strict.exceeded(9, [4, 4, 4])
