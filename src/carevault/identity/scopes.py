"""SMART on FHIR scopes (v1 `user/Patient.read`, v2 `user/Patient.rs`) → permissions.

A token's permissions are its role's permissions narrowed by its scopes, never widened.
"""

from __future__ import annotations

import re

from carevault.identity.permissions import ALL_TYPES, fhir_permission

_SCOPE = re.compile(r"^(user|patient|system)/(\*|[A-Z][A-Za-z]+)\.(\*|read|write|[cruds]+)$")
DEFAULT_SCOPES = ("user/*.*",)


class ScopeError(ValueError):
    """A scope string is not one we understand."""


def permissions_for(scopes: tuple[str, ...]) -> frozenset[str]:
    granted: set[str] = set()
    for scope in scopes:
        match = _SCOPE.match(scope)
        if match is None:
            raise ScopeError(f"'{scope}' is not a SMART scope such as user/Patient.read")
        _, rtype, access = match.groups()
        types = ALL_TYPES if rtype == "*" else (rtype,)
        if rtype != "*" and rtype not in ALL_TYPES:
            raise ScopeError(f"'{scope}' names a resource type that is not served")
        actions = _actions(access)
        for t in types:
            granted.update(p for a in actions if (p := fhir_permission(t, a)) is not None)
    return frozenset(granted)


def _actions(access: str) -> set[str]:
    if access == "*":
        return {"read", "write", "delete"}
    if access == "read":
        return {"read"}
    if access == "write":
        return {"write", "delete"}
    actions = set()
    if set(access) & set("rs"):
        actions.add("read")
    if set(access) & set("cu"):
        actions.add("write")
    if "d" in access:
        actions.add("delete")
    return actions
