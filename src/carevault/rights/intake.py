"""The request body, checked: every refusal names the field and what to do, never a value."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from carevault.errors import Invalid
from carevault.rights.models import Action, Channel

FORMS = ("bundle", "pdf")
MAX_TEXT = 4000
MAX_REFS = 200
_REF = re.compile(r"^[A-Z][A-Za-z]{1,40}/[A-Za-z0-9\-.]{1,64}$")
_DESIGNEE_TYPES = ("Organization", "Practitioner", "PractitionerRole", "RelatedPerson")


@dataclass(frozen=True)
class Asked:
    action: Action
    categories: tuple[str, ...]
    channel: Channel
    patient: object
    forms: tuple[str, ...]
    designee: str | None
    resources: tuple[str, ...]
    statement: str | None
    attach: bool
    business_contact: bool
    body: dict[str, Any]


def parse(body: object) -> Asked:
    if not isinstance(body, dict):
        raise Invalid("the request must be a JSON object")
    try:
        action = Action(str(body.get("action")))
    except ValueError:
        raise Invalid(f"action must be one of: {', '.join(a.value for a in Action)}") from None
    try:
        channel = Channel(str(body.get("channel", Channel.PORTAL.value)))
    except ValueError:
        raise Invalid(f"channel must be one of: {', '.join(c.value for c in Channel)}") from None
    categories = body.get("categories")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        raise Invalid("categories must be a list of the policy's data categories, e.g. ['phi']")
    forms = body.get("forms", ["bundle", "pdf"] if action is Action.ACCESS else [])
    if not isinstance(forms, list) or any(f not in FORMS for f in forms):
        raise Invalid(f"forms must list some of: {', '.join(FORMS)}")
    designee = body.get("designee")
    if designee is not None and (
        not isinstance(designee, str)
        or not _REF.match(designee)
        or designee.split("/")[0] not in _DESIGNEE_TYPES
    ):
        raise Invalid(f"designee must be a reference to one of: {', '.join(_DESIGNEE_TYPES)}")
    resources = body.get("resources", [])
    if (
        not isinstance(resources, list)
        or len(resources) > MAX_REFS
        or not all(isinstance(r, str) and _REF.match(r) for r in resources)
    ):
        raise Invalid(f"resources must list at most {MAX_REFS} references (Type/id)")
    statement = body.get("statement")
    if statement is not None and (not isinstance(statement, str) or len(statement) > MAX_TEXT):
        raise Invalid(f"statement must be text of at most {MAX_TEXT} characters")
    if action in (Action.AMEND, Action.CORRECT) and not (statement and statement.strip()):
        raise Invalid("statement is required: say what is wrong and what it should say")
    for flag in ("attach_to_disclosures", "business_contact"):
        if not isinstance(body.get(flag, False), bool):
            raise Invalid(f"{flag} must be true or false")
    return Asked(
        action,
        tuple(dict.fromkeys(categories)),
        channel,
        body.get("patient"),
        tuple(dict.fromkeys(forms)),
        designee,
        tuple(dict.fromkeys(resources)),
        statement.strip() if isinstance(statement, str) else None,
        bool(body.get("attach_to_disclosures", False)),
        bool(body.get("business_contact", False)),
        body,
    )


def text(value: object, name: str, low: int = 3, high: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or not low <= len(value.strip()) <= high:
        raise Invalid(f"{name} is required: {low} to {high} characters")
    return value.strip()
