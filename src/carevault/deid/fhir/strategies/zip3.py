"""zip3 (generalize): a ZIP code becomes its first three digits, or "000" where the
three-digit area holds 20,000 people or fewer (the profile's `restricted_zip3`, from the
2000 Census, as HHS's guidance lists them). Anything that is not a US ZIP is removed."""

from __future__ import annotations

import re
from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register

_ZIP = re.compile(r"\s*(\d{3})\d{2}(?:-?\d{4})?\s*")


class Zip3:
    name = "zip3"

    def apply(self, value: Any, ctx: Context) -> Any:
        found = _ZIP.fullmatch(value) if isinstance(value, str) else None
        if found is None:
            return REMOVED
        prefix = found.group(1)
        return "000" if prefix in ctx.params.get("restricted_zip3", ()) else prefix


register(Zip3())
