"""scrub-text: free text (notes, payloads, descriptions) through carevault.deid.text, then
the patient's own known identifiers are masked as well (the scrubber's safety net)."""

from __future__ import annotations

from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register


class ScrubText:
    name = "scrub-text"

    def apply(self, value: Any, ctx: Context) -> Any:
        if not isinstance(value, str):
            return REMOVED
        return ctx.scrub(value)


register(ScrubText())
