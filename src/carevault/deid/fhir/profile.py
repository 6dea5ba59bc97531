"""De-identification profiles: TOML files mapping element paths to strategies (rules as data).

A profile is checked when loaded: every strategy must be registered, every path must parse,
every scan kind must be known, every coded-value rule must name its elements, code system and
codes; a bad entry raises ProfileError naming it. Its identity in a
report is its name, version and the SHA-256 of the file, so a release names the exact rules.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from carevault.deid.fhir.paths import PathPattern
from carevault.deid.fhir.strategies import REGISTRY, Strategy

SHIPPED = ("safe-harbor", "limited-data-set")
SCAN_KINDS = frozenset({"name", "identifier", "telecom", "street", "date", "geography"})
_KEYS = frozenset(
    {"name", "version", "title", "dates", "residual_scan", "keep_extensions", "rules", "params",
     "coded_values"}
)  # fmt: skip
_CODED_KEYS = frozenset({"elements", "system", "codes", "strategy", "category"})


class ProfileError(ValueError):
    """A profile file is malformed; the message names the file and the entry."""


@dataclass(frozen=True)
class Rule:
    pattern: PathPattern
    strategy: Strategy
    category: str
    """The identifier type the rule handles (name, geography, date …), for the report."""


@dataclass(frozen=True)
class CodedRule:
    """A rule chosen by what an element records, not where it is: the value[x] of an element
    (an Observation, a component) whose `code` has one of `codes` in `system`."""

    elements: tuple[PathPattern, ...]
    system: str
    codes: frozenset[str]
    strategy: Strategy
    category: str

    def applies(self, location: tuple[str, ...], node: dict[str, Any]) -> bool:
        code = node.get("code")
        codings = code.get("coding") if isinstance(code, dict) else None
        if not isinstance(codings, list):
            return False
        if not any(isinstance(c, dict) and c.get("system") == self.system
                   and c.get("code") in self.codes for c in codings):  # fmt: skip
            return False
        return any(p.matches(location) for p in self.elements)


@dataclass(frozen=True)
class Profile:
    name: str
    version: str
    title: str
    sha256: str
    rules: tuple[Rule, ...]
    dates: Strategy
    residual_scan: frozenset[str]
    keep_extensions: frozenset[str]
    params: Mapping[str, Any] = field(default_factory=dict)
    coded_values: tuple[CodedRule, ...] = ()
    _by_type: dict[str, tuple[Rule, ...]] = field(default_factory=dict, compare=False)
    _cache: dict[tuple[str, ...], Rule | None] = field(default_factory=dict, compare=False)

    def rule_for(self, location: tuple[str, ...]) -> Rule | None:
        """The first rule matching an element's location (memoized: locations repeat)."""
        try:
            return self._cache[location]
        except KeyError:
            pass
        rules = self._by_type.get(location[0])
        if rules is None:
            rules = tuple(r for r in self.rules if r.pattern.literal_head in (None, location[0]))
            self._by_type[location[0]] = rules
        found = next((r for r in rules if r.pattern.matches(location)), None)
        self._cache[location] = found
        return found

    def coded_rule_for(self, location: tuple[str, ...], node: dict[str, Any]) -> CodedRule | None:
        """The first coded-value rule for an element's value[x] (it wins over path rules)."""
        return next((r for r in self.coded_values if r.applies(location, node)), None)

    def describe(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "sha256": self.sha256,
                "title": self.title}  # fmt: skip


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (`safe-harbor`, `limited-data-set`) or a TOML file's path."""
    if isinstance(name_or_path, str) and name_or_path in SHIPPED:
        return _shipped(name_or_path)
    path = Path(name_or_path)
    if not path.is_file():
        raise ProfileError(f"no de-identification profile named {name_or_path!s}")
    return parse_profile(path.read_bytes(), path.name)


@cache
def _shipped(name: str) -> Profile:
    data = resources.files("carevault.deid.fhir.profiles").joinpath(f"{name}.toml").read_bytes()
    return parse_profile(data, f"{name}.toml")


def parse_profile(data: bytes, source: str) -> Profile:
    try:
        doc = tomllib.loads(data.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{source}: not TOML ({exc})") from None
    unknown = set(doc) - _KEYS
    if unknown:
        raise ProfileError(f"{source}: unknown keys {sorted(unknown)}")
    for key in ("name", "version", "dates", "rules"):
        if key not in doc:
            raise ProfileError(f"{source}: `{key}` is missing")
    rules = tuple(_rule(source, i, row) for i, row in enumerate(doc["rules"]))
    scan = frozenset(doc.get("residual_scan", SCAN_KINDS))
    if scan - SCAN_KINDS:
        raise ProfileError(f"{source}: unknown residual_scan kinds {sorted(scan - SCAN_KINDS)}")
    return Profile(
        name=str(doc["name"]),
        version=str(doc["version"]),
        title=str(doc.get("title", doc["name"])),
        sha256=hashlib.sha256(data).hexdigest(),
        rules=rules,
        dates=_strategy(source, "dates", doc["dates"]),
        residual_scan=scan,
        keep_extensions=frozenset(doc.get("keep_extensions", ())),
        params=dict(doc.get("params", {})),
        coded_values=tuple(_coded(source, i, r) for i, r in enumerate(doc.get("coded_values", []))),
    )


def _rule(source: str, index: int, row: Any) -> Rule:
    where = f"{source}: rules[{index}]"
    if not (isinstance(row, list) and len(row) == 3 and all(isinstance(x, str) for x in row)):
        raise ProfileError(f"{where}: want [path, strategy, identifier type]")
    path, strategy, category = row
    try:
        pattern = PathPattern.parse(path)
    except ValueError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    return Rule(pattern, _strategy(where, path, strategy), category)


def _coded(source: str, index: int, row: Any) -> CodedRule:
    where = f"{source}: coded_values[{index}]"
    if not isinstance(row, dict) or set(row) != _CODED_KEYS:
        raise ProfileError(f"{where}: want exactly {sorted(_CODED_KEYS)}")
    elements, codes = row["elements"], row["codes"]
    if not (isinstance(elements, list) and elements and all(isinstance(e, str) for e in elements)):
        raise ProfileError(f"{where}: `elements` must be a list of element paths")
    if not (isinstance(codes, list) and codes and all(isinstance(c, str) for c in codes)):
        raise ProfileError(f"{where}: `codes` must be a list of codes")
    if not isinstance(row["system"], str) or not isinstance(row["category"], str):
        raise ProfileError(f"{where}: `system` and `category` must be strings")
    try:
        patterns = tuple(PathPattern.parse(e) for e in elements)
    except ValueError as exc:
        raise ProfileError(f"{where}: {exc}") from None
    return CodedRule(patterns, row["system"], frozenset(codes),
                     _strategy(where, "strategy", row["strategy"]), row["category"])  # fmt: skip


def _strategy(where: str, what: str, name: Any) -> Strategy:
    if not isinstance(name, str) or name not in REGISTRY:
        raise ProfileError(f"{where}: {what}: no strategy named {name!r} "
                           f"(known: {', '.join(sorted(REGISTRY))})")  # fmt: skip
    return REGISTRY[name]
