"""remove: the element leaves nothing behind (names, telecom, identifiers, photos …)."""

from __future__ import annotations

from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register


class Remove:
    name = "remove"

    def apply(self, value: Any, ctx: Context) -> Any:
        return REMOVED


register(Remove())
