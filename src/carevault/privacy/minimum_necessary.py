"""Minimum necessary: after decryption, keep only the elements a role and purpose may see.

The access issue fills the per-role profiles (a billing clerk sees demographics and
coded encounters, never notes); the mechanism is here so that every read, search
and history path already passes through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import orjson

from carevault.identity.models import Actor

ALWAYS_KEPT = frozenset({"resourceType", "id", "meta"})


@dataclass(frozen=True)
class FieldProfile:
    """Top-level elements kept per resource type; a type not listed is kept whole."""

    keep: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @property
    def is_full(self) -> bool:
        return not self.keep

    def apply(self, resource_type: str, body: bytes) -> bytes:
        allowed = self.keep.get(resource_type)
        if allowed is None:
            return body
        resource = orjson.loads(body)
        kept = {k: v for k, v in resource.items() if k in allowed or k in ALWAYS_KEPT}
        kept.setdefault("meta", {}).setdefault("security", []).append(
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                "code": "REDACTED",
                "display": "redacted to the minimum necessary",
            }
        )
        return orjson.dumps(kept)


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
