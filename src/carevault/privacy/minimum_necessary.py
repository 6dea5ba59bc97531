"""Minimum necessary: after decryption, keep only the elements a role and purpose may see.

The profiles are data (privacy/profiles/minimum_necessary.toml, read by profiles/loader.py):
a billing clerk sees demographics and coded encounters, never notes or images. Every read,
search, include, history, bundle and export path passes through `FieldProfile.apply`, and
the gate takes a withheld type out of the actor's readable types (`readable_permissions`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from carevault.identity.models import Actor
from carevault.identity.permissions import fhir_permission

ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})
REDACTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "REDACTED",
    "display": "redacted to the minimum necessary",
}


@dataclass(frozen=True)
class FieldProfile:
    """Top-level elements kept per resource type, and types withheld whole; a type in
    neither is kept whole."""

    keep: Mapping[str, frozenset[str]] = field(default_factory=dict)
    withheld: frozenset[str] = frozenset()
    name: str = ""

    @property
    def is_full(self) -> bool:
        return not self.keep and not self.withheld

    def withholds(self, resource_type: str) -> bool:
        return resource_type in self.withheld

    def apply(self, resource_type: str, body: bytes) -> bytes:
        if resource_type in self.withheld:
            # Reads of a withheld type are refused earlier; a write's echo, or anything that
            # slips past, still leaves with nothing but its identity.
            allowed: frozenset[str] = frozenset()
        else:
            found = self.keep.get(resource_type)
            if found is None:
                return body
            allowed = found
        resource = orjson.loads(body)
        # `_birthDate` carries the extensions of `birthDate`: it goes where its element goes.
        kept = {
            k: v
            for k, v in resource.items()
            if k in allowed or k in ALWAYS_KEPT or (k[:1] == "_" and k[1:] in allowed)
        }
        meta = dict(kept.get("meta") or {})
        meta["security"] = [*meta.get("security", []), REDACTED]
        kept["meta"] = meta
        return orjson.dumps(kept)

    def readable_permissions(self, permissions: frozenset[str]) -> frozenset[str]:
        """The actor's permissions without read on withheld types, so searches, includes,
        chains, $everything and exports treat those types as not readable."""
        if not self.withheld:
            return permissions
        hidden = {fhir_permission(t, "read") for t in self.withheld}
        return permissions - hidden


FULL = FieldProfile()


class MinimumNecessary(Protocol):
    def profile_for(self, actor: Actor) -> FieldProfile: ...


@dataclass(frozen=True)
class RoleProfiles:
    """Profiles looked up by (role, purpose), then by role; the default is the whole resource."""

    by_role_purpose: Mapping[tuple[str, str], FieldProfile] = field(default_factory=dict)
    by_role: Mapping[str, FieldProfile] = field(default_factory=dict)

    def profile_for(self, actor: Actor) -> FieldProfile:
        role = actor.kind
        found = self.by_role_purpose.get((role, actor.purpose.value))
        return found or self.by_role.get(role, FULL)
