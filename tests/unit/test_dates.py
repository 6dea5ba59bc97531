"""FHIR dates as ranges of instants."""

from __future__ import annotations

import pytest

from carevault.records.dates import Precision, parse_range


@pytest.mark.parametrize(
    ("value", "low", "high", "precision"),
    [
        ("2024", "2024-01-01T00:00:00.000000", "2024-12-31T23:59:59.999999", Precision.YEAR),
        ("2024-02", "2024-02-01T00:00:00.000000", "2024-02-29T23:59:59.999999", Precision.MONTH),
        ("2023-02", "2023-02-01T00:00:00.000000", "2023-02-28T23:59:59.999999", Precision.MONTH),
        ("2024-03-05", "2024-03-05T00:00:00.000000", "2024-03-05T23:59:59.999999", Precision.DAY),
        (
            "2024-03-05T10:30:00+02:00",
            "2024-03-05T08:30:00.000000",
            "2024-03-05T08:30:00.999999",
            Precision.TIME,
        ),
        ("2024-03-05T10:30Z", "2024-03-05T10:30:00.000000", "2024-03-05T10:30:59.999999",
         Precision.TIME),
        ("2024-03-05T10:30:00.25Z", "2024-03-05T10:30:00.250000", "2024-03-05T10:30:00.250000",
         Precision.TIME),
    ],
)  # fmt: skip
def test_ranges(value: str, low: str, high: str, precision: Precision) -> None:
    assert parse_range(value) == (low, high, precision)


@pytest.mark.parametrize("bad", ["", "24", "2024-13", "2024-02-30", "yesterday", "2024-1-1"])
def test_malformed_dates_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_range(bad)


def test_ranges_sort_as_instants() -> None:
    earlier = parse_range("2024-03-05T23:00:00-05:00")[0]  # 04:00 UTC next day
    later = parse_range("2024-03-06T03:00:00Z")[0]
    assert earlier > later
