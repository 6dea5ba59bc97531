"""Read and check the minimum-necessary profiles file (TOML, stdlib tomllib).

Every entry is checked at start-up: roles, purposes the role may claim, served types, and
element names against the FHIR R4 models of fhir.resources, so a typo stops the server
with a message naming the entry instead of silently letting a whole element through.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from carevault.fhir_types import SERVED_TYPES
from carevault.identity.permissions import ROLE_PURPOSES, Purpose, Role
from carevault.privacy.minimum_necessary import ALWAYS_KEPT, FieldProfile, RoleProfiles

DEFAULT_FILE = "minimum_necessary.toml"
NEVER_KEPT = frozenset({"text", "note", "contained"})
"""Narrative, notes and contained resources can repeat anything: a cut type never keeps them."""
_PROFILE_KEYS = frozenset({"name", "description", "roles", "purposes", "others", "types"})
_RULE_KEYS = frozenset({"keep", "withhold", "whole"})


class ProfileError(ValueError):
    """The profiles file is malformed; the message names the file and the entry."""


def load_profiles(path: Path | None = None) -> RoleProfiles:
    """The profiles in `path`, or the ones shipped with CareVault (checked once, cached)."""
    if path is None:
        return _shipped()
    return parse_profiles(path.read_text(encoding="utf-8"), path.name)


@cache
def _shipped() -> RoleProfiles:
    text = resources.files("carevault.privacy.profiles").joinpath(DEFAULT_FILE).read_text("utf-8")
    return parse_profiles(text, DEFAULT_FILE)


def parse_profiles(text: str, source: str = DEFAULT_FILE) -> RoleProfiles:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML ({exc})") from None
    unknown = set(document) - {"profile"}
    if unknown:
        raise ProfileError(f"{source}: unknown top-level keys {sorted(unknown)}")
    by_role_purpose: dict[tuple[str, str], FieldProfile] = {}
    by_role: dict[str, FieldProfile] = {}
    for index, entry in enumerate(_list(document.get("profile", []), f"{source}: profile")):
        where = f"{source}: profile #{index + 1}"
        if not isinstance(entry, dict):
            raise ProfileError(f"{where} is not a table")
        where = f"{source}: profile {entry.get('name', index + 1)!r}"
        profile = _profile(entry, where)
        for role, purpose in _targets(entry, where):
            table: dict[Any, FieldProfile] = by_role if purpose is None else by_role_purpose
            key: Any = role if purpose is None else (role, purpose)
            if key in table:
                raise ProfileError(f"{where}: a second profile for {key}")
            table[key] = profile
    return RoleProfiles(by_role_purpose, by_role)


def _targets(entry: Mapping[str, Any], where: str) -> list[tuple[str, str | None]]:
    roles = _strings(entry.get("roles"), f"{where}: roles")
    if not roles:
        raise ProfileError(f"{where}: roles must name at least one role")
    purposes = _strings(entry.get("purposes", []), f"{where}: purposes")
    targets: list[tuple[str, str | None]] = []
    for name in roles:
        try:
            role = Role(name)
        except ValueError:
            raise ProfileError(f"{where}: {name!r} is not a role") from None
        for purpose in purposes:
            if purpose not in {p.value for p in Purpose}:
                raise ProfileError(f"{where}: {purpose!r} is not a purpose of use")
            if Purpose(purpose) not in ROLE_PURPOSES[role]:
                raise ProfileError(f"{where}: a {role.value} never claims purpose {purpose}")
            targets.append((role.value, purpose))
        if not purposes:
            targets.append((role.value, None))
    return targets


def _profile(entry: Mapping[str, Any], where: str) -> FieldProfile:
    unknown = set(entry) - _PROFILE_KEYS
    if unknown:
        raise ProfileError(f"{where}: unknown keys {sorted(unknown)}")
    others = entry.get("others")
    if others not in ("withhold", "whole"):
        raise ProfileError(f'{where}: others must be "withhold" or "whole"')
    types = entry.get("types", {})
    if not isinstance(types, dict):
        raise ProfileError(f"{where}: types must be a table")
    keep: dict[str, frozenset[str]] = {}
    withheld: set[str] = set()
    for rtype, rule in types.items():
        at = f"{where}, {rtype}"
        if rtype not in SERVED_TYPES:
            raise ProfileError(f"{at}: not a resource type served here")
        if not isinstance(rule, dict) or set(rule) - _RULE_KEYS or len(rule) != 1:
            raise ProfileError(f"{at}: give exactly one of keep = [...], withhold, whole")
        ((kind, value),) = rule.items()
        if kind == "keep":
            keep[rtype] = _elements(rtype, _strings(value, f"{at}: keep"), at)
        elif value is not True:
            raise ProfileError(f"{at}: {kind} must be true")
        elif kind == "withhold":
            withheld.add(rtype)
    if others == "withhold":
        withheld |= set(SERVED_TYPES) - set(types)
    name = str(entry.get("name", ""))
    return FieldProfile(keep, frozenset(withheld), name)


def _elements(rtype: str, names: Iterable[str], where: str) -> frozenset[str]:
    """The named elements, with `x[x]` expanded to every choice of its type's model."""
    known = model_elements(rtype)
    kept: set[str] = set()
    for name in names:
        if name in NEVER_KEPT:
            raise ProfileError(f"{where}: {name!r} can repeat anything and is never kept")
        if name in ALWAYS_KEPT:
            raise ProfileError(f"{where}: {name!r} is always kept; do not list it")
        if name.endswith("[x]"):
            stem = name[:-3]
            choices = {
                k for k in known if k.startswith(stem) and k[len(stem) : len(stem) + 1].isupper()
            }
            if not choices:
                raise ProfileError(f"{where}: {name!r} is not a choice element of {rtype}")
            kept |= choices
        elif name not in known:
            raise ProfileError(f"{where}: {name!r} is not an element of {rtype}")
        else:
            kept.add(name)
    return frozenset(kept)


@cache
def model_elements(rtype: str) -> frozenset[str]:
    """Top-level element names of a type in the R4 models (JSON names, no `_x` twins)."""
    model = get_fhir_model_class(rtype)
    names = {f.alias or n for n, f in model.model_fields.items()}
    return frozenset(n for n in names if not n.startswith("_") and n != "fhir_comments")


def _strings(value: Any, where: str) -> list[str]:
    items = _list(value, where)
    if not all(isinstance(v, str) for v in items):
        raise ProfileError(f"{where}: must be a list of strings")
    return [str(v) for v in items]


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ProfileError(f"{where}: must be a list")
    return value
