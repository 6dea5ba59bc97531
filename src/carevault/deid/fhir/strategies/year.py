"""year (generalize): a date, dateTime or instant keeps its year only."""

from __future__ import annotations

import re
from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register

_YEAR = re.compile(r"(\d{4})")


class Year:
    name = "year"

    def apply(self, value: Any, ctx: Context) -> Any:
        found = _YEAR.match(value) if isinstance(value, str) else None
        return found.group(1) if found else REMOVED


register(Year())
