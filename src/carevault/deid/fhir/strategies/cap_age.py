"""cap-age (generalize): an Age over 89 (onsetAge, abatementAge …) becomes ">= 90"."""

from __future__ import annotations

from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register
from carevault.deid.fhir.strategies.birth_date import OLDEST_AGE_KEPT


class CapAge:
    name = "cap-age"

    def apply(self, value: Any, ctx: Context) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return min(value, OLDEST_AGE_KEPT + 1)
        if not isinstance(value, dict):
            return REMOVED
        number = value.get("value")
        if not isinstance(number, int | float) or number <= OLDEST_AGE_KEPT:
            return value
        capped = {k: v for k, v in value.items() if k not in ("value", "comparator")}
        return {**capped, "value": OLDEST_AGE_KEPT + 1, "comparator": ">="}


register(CapAge())
