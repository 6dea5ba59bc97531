"""The security-label rules file (`segmentation.toml`): read, checked, and the pure rule.

Every entry is checked at load: unknown keys, purposes of use or requirement names stop the
server with a message naming the entry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources as package_files
from pathlib import Path
from typing import Any

from carevault.identity.permissions import Purpose

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CAREVAULT_LABELS = "https://carevault.dev/fhir/CodeSystem/security-label"
MINOR_SELF_CONSENT = "MINOR-SELF-CONSENT"
DEFAULT_FILE = "segmentation.toml"

REQUIREMENTS: Mapping[str, str] = {
    "part2-consent": "a 42 CFR Part 2-compliant written consent (2.31) naming these records",
    "psychotherapy-authorization": "an authorization for psychotherapy notes alone (164.508(a)(2))",
    "category-named": "an authorization that names this sensitive category explicitly",
    "named-in-authorization": "an authorization or order naming this very resource",
    "minor-own-authorization": "the minor's own authorization (a parent's does not release it)",
}
_KEYS = frozenset({"system", "title", "read_purposes", "read_needs_care", "hidden_from", "release"})


class SegmentationError(ValueError):
    """The labels file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class LabelRule:
    code: str
    system: str
    title: str
    read_purposes: frozenset[Purpose] | None = None  # None: any purpose
    read_needs_care: bool = False
    hidden_from: frozenset[Purpose] = frozenset()
    release: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rules:
    by_code: Mapping[str, LabelRule]

    def labels_of(self, resource: Mapping[str, Any]) -> frozenset[str]:
        meta = resource.get("meta")
        found: set[str] = set()
        for label in meta.get("security") or () if isinstance(meta, Mapping) else ():
            if not isinstance(label, Mapping):
                continue
            rule = self.by_code.get(str(label.get("code")))
            if rule is not None and label.get("system") == rule.system:
                found.add(rule.code)
        return frozenset(found)

    def restricting(self) -> frozenset[str]:
        """Codes with a read rule: the only ones the gate looks for."""
        return frozenset(
            c
            for c, r in self.by_code.items()
            if r.read_purposes is not None or r.read_needs_care or r.hidden_from
        )


@dataclass(frozen=True)
class Viewer:
    """Who reads one patient's records, as the label rules see it."""

    purpose: Purpose
    system: bool = False  # a named system actor: never screened
    practitioner: bool = False
    in_care: bool = False  # a care relationship with the patient, or a live break-glass grant


def may_read(labels: Iterable[str], viewer: Viewer, rules: Rules | None = None) -> bool:
    """Pure: whether a resource with these labels is visible to this viewer."""
    if viewer.system:
        return True
    table = (rules or shipped_rules()).by_code
    for code in labels:
        rule = table.get(code)
        if rule is None:
            continue
        if viewer.purpose in rule.hidden_from:
            return False
        if rule.read_purposes is not None and viewer.purpose not in rule.read_purposes:
            return False
        if rule.read_needs_care and not (viewer.practitioner and viewer.in_care):
            return False
    return True


# -- the rules file ------------------------------------------------------------------


@cache
def shipped_rules() -> Rules:
    files = package_files.files("carevault.privacy.profiles")
    return parse_rules(files.joinpath(DEFAULT_FILE).read_text("utf-8"), DEFAULT_FILE)


def load_rules(path: Path) -> Rules:
    return parse_rules(path.read_text(encoding="utf-8"), path.name)


def _purposes(value: object, where: str) -> frozenset[Purpose]:
    if not isinstance(value, list):
        raise SegmentationError(f"{where} must be a list of purposes of use")
    try:
        return frozenset(Purpose(str(v)) for v in value)
    except ValueError:
        raise SegmentationError(f"{where} names an unknown purpose of use") from None


def parse_rules(text: str, source: str = DEFAULT_FILE) -> Rules:
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SegmentationError(f"{source}: not valid TOML ({exc})") from None
    if set(document) - {"labels"} or not isinstance(document.get("labels"), dict):
        raise SegmentationError(f"{source}: expected only a [labels.<code>] table per label")
    by_code: dict[str, LabelRule] = {}
    for code, entry in document["labels"].items():
        where = f"{source}: labels.{code}"
        if not isinstance(entry, dict) or set(entry) - _KEYS:
            raise SegmentationError(f"{where}: unknown keys {sorted(set(entry) - _KEYS)}")
        system = entry.get("system")
        if not isinstance(system, str) or not system.startswith(("http://", "https://")):
            raise SegmentationError(f"{where}: system must be a code system URI")
        release = entry.get("release", [])
        if not isinstance(release, list) or set(release) - set(REQUIREMENTS):
            raise SegmentationError(f"{where}: release names must be among {sorted(REQUIREMENTS)}")
        needs_care = entry.get("read_needs_care", False)
        if not isinstance(needs_care, bool):
            raise SegmentationError(f"{where}: read_needs_care must be true or false")
        read = entry.get("read_purposes")
        by_code[code] = LabelRule(
            code, system, str(entry.get("title", code)),
            None if read is None else _purposes(read, f"{where}.read_purposes"),
            needs_care, _purposes(entry.get("hidden_from", []), f"{where}.hidden_from"),
            frozenset(release),
        )  # fmt: skip
    return Rules(by_code)
