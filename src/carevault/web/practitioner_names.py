"""Practitioners' display names, read through the gate for the faces that show or send them:
the patient's access log (who looked) and a secure message's From (who wrote).

A name is read by a named system actor (the reason says which face asked), so every lookup is
audited like any other read; a missing, deleted or nameless Practitioner is None, never an error.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from carevault.errors import CareVaultError
from carevault.identity.models import system_actor
from carevault.runtime import Runtime

NameOf = Callable[[str], str | None]
"""practitioner_id → the practitioner's display name, or None."""


def practitioner_names(rt: Runtime, tenant_id: str, reason: str) -> NameOf:
    """A name lookup for one tenant; `reason` is the system actor's, audited with each read."""
    gate = rt.gate(system_actor(tenant_id, reason))
    found: dict[str, str | None] = {}

    def name_of(practitioner_id: str) -> str | None:
        # One gate read per practitioner per lookup (a page or a message asks again and again).
        if practitioner_id not in found:
            try:
                view = gate.read("Practitioner", practitioner_id)
            except CareVaultError:
                return None
            found[practitioner_id] = display_name(orjson.loads(view.body or b"{}"))
        return found[practitioner_id]

    return name_of


def display_name(practitioner: object) -> str | None:
    """The first HumanName: its text, else prefix, given and family names; None without one."""
    names = practitioner.get("name") if isinstance(practitioner, dict) else None
    if not isinstance(names, list) or not names or not isinstance(names[0], dict):
        return None
    first = names[0]
    if first.get("text"):
        return str(first["text"])
    parts = [*first.get("prefix", []), *first.get("given", []), first.get("family", "")]
    return " ".join(str(p) for p in parts if p) or None
