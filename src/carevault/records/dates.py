"""FHIR date, dateTime and instant values as [low, high] ranges of UTC instants.

Ranges are stored as fixed-width strings ("2020-01-31T23:59:59.999999"), which
sort as instants in any SQL database.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from enum import IntEnum

_DATE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)
FORMAT = "%Y-%m-%dT%H:%M:%S.%f"


class Precision(IntEnum):
    YEAR = 1
    MONTH = 2
    DAY = 3
    TIME = 4


def parse_range(value: str) -> tuple[str, str, Precision]:
    """The instants a FHIR date value covers, and its precision; ValueError if malformed."""
    match = _DATE.match(value.strip())
    if match is None:
        raise ValueError("not a FHIR date, dateTime or instant")
    y, m, d = int(match["y"]), match["m"], match["d"]
    if m is None:
        low = datetime(y, 1, 1, tzinfo=UTC)
        return _fmt(low), _fmt(datetime(y + 1, 1, 1, tzinfo=UTC) - _TICK), Precision.YEAR
    month = int(m)
    if d is None:
        last = calendar.monthrange(y, month)[1]
        low = datetime(y, month, 1, tzinfo=UTC)
        return _fmt(low), _fmt(low + timedelta(days=last) - _TICK), Precision.MONTH
    day = datetime(y, month, int(d), tzinfo=UTC)
    if match["H"] is None:
        return _fmt(day), _fmt(day + timedelta(days=1) - _TICK), Precision.DAY
    seconds = int(match["S"] or 0)
    fraction = (match["f"] or "").ljust(6, "0")[:6]
    instant = day.replace(hour=int(match["H"]), minute=int(match["M"]), second=seconds)
    instant = instant.replace(microsecond=int(fraction or 0))
    if (tz := match["tz"]) and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        instant -= sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    if match["S"] is None:  # minute precision covers the whole minute
        return _fmt(instant), _fmt(instant + timedelta(minutes=1) - _TICK), Precision.TIME
    if match["f"] is None:
        return _fmt(instant), _fmt(instant + timedelta(seconds=1) - _TICK), Precision.TIME
    return _fmt(instant), _fmt(instant), Precision.TIME


_TICK = timedelta(microseconds=1)


def _fmt(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime(FORMAT)
