"""keep: the element is released as it is, and no rule below it applies (coded values)."""

from __future__ import annotations

from typing import Any

from carevault.deid.fhir.strategies.base import Context, register


class Keep:
    name = "keep"

    def apply(self, value: Any, ctx: Context) -> Any:
        return value


register(Keep())
