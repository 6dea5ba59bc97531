"""pseudonymize: a resource id or a reference takes the project's pseudonym (a patient's
random re-identification code; a keyed hash under the project's secret for other resources).
A reference that cannot be rewritten (an absolute URL, a conditional search) is removed."""

from __future__ import annotations

import re
from typing import Any

from carevault.deid.fhir.strategies.base import REMOVED, Context, register

_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?")
_URN = re.compile(r"urn:uuid:([0-9a-fA-F\-]{36})")


class Pseudonymize:
    name = "pseudonymize"

    def apply(self, value: Any, ctx: Context) -> Any:
        if not isinstance(value, str):
            return REMOVED
        if value.startswith("#"):
            return value  # a contained resource: local to the (de-identified) resource
        if found := _RELATIVE.fullmatch(value):
            rtype, rid = found.groups()
            return f"{rtype}/{ctx.pseudonym(rtype, rid)}"
        if found := _URN.fullmatch(value):
            return f"urn:uuid:{ctx.pseudonym('urn', found.group(1))}"
        return REMOVED


class PseudonymizeId:
    """The resource's own id."""

    name = "pseudonymize-id"

    def apply(self, value: Any, ctx: Context) -> Any:
        if not isinstance(value, str):
            return REMOVED
        return ctx.pseudonym(ctx.resource_type, value)


register(Pseudonymize())
register(PseudonymizeId())
