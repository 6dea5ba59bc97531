"""scrub-narrative: a Narrative (or its XHTML div) keeps only its text, scrubbed, in a plain
div: links, images and attributes could carry anything."""

from __future__ import annotations

import html
import re
from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register

_TAG = re.compile(r"<[^>]*>")


def narrative_text(div: str) -> str:
    """The readable text of an XHTML div (tags out, entities decoded, spaces folded)."""
    return " ".join(html.unescape(_TAG.sub(" ", div)).split())


class ScrubNarrative:
    name = "scrub-narrative"

    def apply(self, value: Any, ctx: Context) -> Any:
        if isinstance(value, dict):
            div = self.apply(value.get("div"), ctx)
            return REMOVED if div is REMOVED else {"status": "generated", "div": div}
        if not isinstance(value, str):
            return REMOVED
        body = html.escape(ctx.scrub(narrative_text(value)), quote=False)
        return f'<div xmlns="http://www.w3.org/1999/xhtml">{body}</div>'


register(ScrubNarrative())
