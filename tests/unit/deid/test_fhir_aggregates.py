"""Aggregates: small cells suppressed, and complementary suppression so that no suppressed
cell can be recovered from the released row and column totals; age bands fold 90+."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from carevault.deid.aggregates import Table, age_band, count_partition, render, suppress

SMALL = 11


def _recoverable(counts: dict[tuple[str, ...], int], hidden: set[tuple[str, ...]],
                 dims: int) -> list[tuple[str, ...]]:  # fmt: skip
    """Cells an attacker gets back from one line's total minus the cells shown in it (a line
    of one cell has no total of its own; render() hides the margin that would be it)."""
    found = []
    for d in range(dims):
        lines: dict[tuple[str, ...], list[tuple[str, ...]]] = {}
        for cell in counts:
            lines.setdefault(cell[:d] + cell[d + 1 :], []).append(cell)
        for line in lines.values():
            unknown = [c for c in line if c in hidden]
            if len(unknown) == 1 and len(line) > 1:
                found.append(unknown[0])
    return found


def test_a_small_cell_and_its_partners_are_suppressed() -> None:
    counts = {("a", "x"): 5, ("a", "y"): 40, ("b", "x"): 30, ("b", "y"): 50}
    primary, extra = suppress(counts, 2, SMALL)
    assert primary == {("a", "x")}
    # row a and column x each need a second suppressed cell; then row b / column y too
    assert extra == {("a", "y"), ("b", "x"), ("b", "y")}
    assert _recoverable(counts, primary | extra, 2) == []


def test_nothing_is_suppressed_when_every_cell_is_large() -> None:
    counts = {("a", "x"): 15, ("a", "y"): 40, ("b", "x"): 30, ("b", "y"): 50}
    assert suppress(counts, 2, SMALL) == (set(), set())


def test_a_suppressed_cell_is_not_recoverable_from_the_released_margins() -> None:
    counts = {
        (r, c): n
        for (r, c), n in zip(
            itertools.product("abc", "xyz"), [3, 20, 30, 25, 4, 40, 50, 60, 70], strict=True
        )
    }
    table = Table(("condition", "state"), Counter(counts), population=sum(counts.values()))
    doc = render(table, SMALL, "research", "2026-12-01T00:00:00.000000Z")
    shown = {(c["condition"], c["state"]): c["count"] for c in doc["cells"]}
    rows = {m["value"]: m["count"] for m in doc["margins"]["condition"]}
    cols = {m["value"]: m["count"] for m in doc["margins"]["state"]}
    for (r, c), count in shown.items():
        if count is not None:
            continue
        others_in_row = [shown[(r, k)] for k in "xyz" if k != c]
        others_in_col = [shown[(k, c)] for k in "abc" if k != r]
        assert None in others_in_row or rows[r] is None
        assert None in others_in_col or cols[c] is None
    assert doc["suppression"]["primary"] == 2
    assert all(c["rate_per_1000"] is None for c in doc["cells"] if c["suppressed"])


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.tuples(st.sampled_from("abcd"), st.sampled_from("wxyz"),
                                 st.sampled_from("01")),
                       st.integers(min_value=1, max_value=60), min_size=1))  # fmt: skip
def test_no_suppressed_cell_is_alone_in_a_line(counts: dict[tuple[str, ...], int]) -> None:
    primary, extra = suppress(counts, 3, SMALL)
    hidden = primary | extra
    assert {c for c, n in counts.items() if n < SMALL} == primary
    assert _recoverable(counts, hidden, 3) == []


@pytest.mark.parametrize(
    ("birth", "band"),
    [("2010-01-01", "0-17"), ("2000-01-01", "18-29"), ("1990-06-01", "30-39"),
     ("1937-12-01", "80-89"), ("1936-12-01", "90+"), (None, "unknown")],
)  # fmt: skip
def test_age_bands(birth: str | None, band: str) -> None:
    assert age_band(birth, date(2026, 12, 1)) == band


def test_counting_patients_and_their_distinct_conditions() -> None:
    table = Table(("condition", "sex"))
    bodies = [
        {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980"},
        {"resourceType": "Patient", "id": "p2", "gender": "male"},
        {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"code": "44054006", "display": "Diabetes"}]}},
        {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
         "code": {"coding": [{"code": "44054006", "display": "Diabetes"}]}},
    ]  # fmt: skip
    count_partition(table, bodies, date(2026, 12, 1))
    assert table.population == 2
    assert table.counts == Counter({("Diabetes", "female"): 1})


def test_a_margin_that_would_give_away_a_lone_suppressed_cell_is_suppressed() -> None:
    # row b holds one cell, suppressed as column x's partner: its margin would equal it
    counts = {("a", "x"): 5, ("a", "y"): 40, ("b", "x"): 30, ("c", "y"): 12}
    table = Table(("condition", "state"), Counter(counts), population=87)
    doc = render(table, SMALL, "research", "2026-12-01T00:00:00.000000Z")
    hidden = {(c["condition"], c["state"]) for c in doc["cells"] if c["suppressed"]}
    rows = {m["value"]: m["count"] for m in doc["margins"]["condition"]}
    assert ("b", "x") in hidden
    assert rows["b"] is None
    assert sum(1 for v in rows.values() if v is None) != 1


def test_the_year_dimension_counts_a_patients_distinct_onset_years() -> None:
    table = Table(("year",))
    bodies = [
        {"resourceType": "Patient", "id": "p1"},
        {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
         "onsetDateTime": "2019-04-01", "code": {"coding": [{"code": "1"}]}},
        {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
         "recordedDate": "2019-05-01", "code": {"coding": [{"code": "2"}]}},
        {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
         "onsetPeriod": {"start": "2021-01-01"}, "code": {"text": "free text is no label"}},
    ]  # fmt: skip
    count_partition(table, bodies, date(2026, 12, 1))
    assert table.counts == Counter({("2019",): 1, ("2021",): 1})


def test_condition_labels_come_from_codings_never_from_free_text() -> None:
    table = Table(("condition",))
    bodies = [{"resourceType": "Patient", "id": "p1"},
              {"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
               "code": {"text": "Mr Smith's rash"}}]  # fmt: skip
    count_partition(table, bodies, date(2026, 12, 1))
    assert table.counts == Counter({("unknown",): 1})
