"""birth-date (generalize): the year of birth, unless the person is over 89 at the export
date: then the birth date goes entirely, and the resource says "90 or older"
(164.514(b)(2)(i)(C))."""

from __future__ import annotations

from datetime import date
from typing import Any, Final

from carevault.deid.fhir.strategies.base import REMOVED, Context, register

AGE_GROUP_URL: Final = "https://carevault.dev/fhir/StructureDefinition/deid-age-group"
OLDEST_AGE_KEPT: Final = 89


def age_on(birth: str, on: date) -> int | None:
    """Whole years from a FHIR date (YYYY, YYYY-MM or YYYY-MM-DD) to `on`; a partial date
    counts from its earliest possible day's latest reading, i.e. the oldest age it allows."""
    parts = birth[:10].split("-")
    try:
        year = int(parts[0])
        month = int(parts[1]) if len(parts) > 1 else 1
        day = int(parts[2]) if len(parts) > 2 else 1
    except ValueError:
        return None
    return on.year - year - ((on.month, on.day) < (month, day))


class BirthDate:
    name = "birth-date"

    def apply(self, value: Any, ctx: Context) -> Any:
        age = age_on(value, ctx.export_date) if isinstance(value, str) else None
        if age is None or age > OLDEST_AGE_KEPT:
            ctx.added_extensions.append({"url": AGE_GROUP_URL, "valueString": "90 or older"})
            return REMOVED
        return value[:4]


register(BirthDate())
