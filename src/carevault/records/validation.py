"""Structural validation with fhir.resources (R4B models, wire-compatible with R4 here).

Error messages name the element and the rule, never the value: the caller's
input may be PHI and messages reach logs and responses.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from carevault.errors import Invalid, Unprocessable
from carevault.records.bindings import violations
from carevault.records.params import SUPPORTED_TYPES

_MAX_ISSUES = 20


def validate(resource_type: str, body: Any) -> dict[str, Any]:
    """The body if it is a valid resource of this type; Invalid/Unprocessable otherwise."""
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object (a FHIR resource)")
    given = body.get("resourceType")
    if given != resource_type:
        raise Invalid(
            "resourceType does not match the URL"
            if isinstance(given, str) and given in SUPPORTED_TYPES
            else "resourceType is missing or is not a type served here"
        )
    try:
        _model(resource_type).model_validate(body)
    except ValidationError as exc:
        issues = [(expression(resource_type, e["loc"]), _safe_message(e)) for e in exc.errors()]
        raise Unprocessable(
            f"{resource_type} failed validation ({len(issues)} problem(s))",
            issues=issues[:_MAX_ISSUES],
        ) from None
    unbound = [
        (where, "code is not in the required value set")
        for where in violations(resource_type, body)
    ]
    if unbound:
        raise Unprocessable(
            f"{resource_type} failed validation ({len(unbound)} problem(s))", issues=unbound
        )
    return body


@cache
def _model(resource_type: str) -> Any:
    """The R4B model class, looked up once per type (the lookup costs ~4% of an import)."""
    return get_fhir_model_class(resource_type)


def expression(resource_type: str, loc: tuple[int | str, ...]) -> str:
    """A pydantic error location as a FHIRPath-like element name: Patient.name[0].family."""
    parts = [resource_type]
    for item in loc:
        if isinstance(item, int):
            parts[-1] += f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _safe_message(error: Any) -> str:
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    value = error.get("input")
    if isinstance(value, str | int | float) and str(value) and str(value) in message:
        return "invalid value for this element"
    return message
