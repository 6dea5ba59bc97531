"""shift: a date moves by the patient's random offset (whole days), keeping intervals
between one patient's dates; the year may change. For limited data sets that want it."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register


class Shift:
    name = "shift"

    def apply(self, value: Any, ctx: Context) -> Any:
        if not isinstance(value, str):
            return REMOVED
        if len(value) < 10:
            return value[:4]  # a year or a month: the year alone gives nothing away
        try:
            moved = date.fromisoformat(value[:10]) + timedelta(days=ctx.shift_days)
        except ValueError:
            return REMOVED
        return moved.isoformat() + value[10:]


register(Shift())
