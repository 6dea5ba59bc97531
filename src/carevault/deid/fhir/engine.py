"""Apply a profile to one resource: walk its elements, let a coded-value rule act on the value[x]
of an element whose code it names (an age Observation), else the first matching path rule, give
every other date its `dates` strategy, keep only the allowed extensions, count everything.

Pure and in memory: the export (export.py) feeds it one patient's resources at a time.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from carevault.deid.fhir.profile import CodedRule, Profile, Rule
from carevault.deid.fhir.strategies import REMOVED, Context, Strategy

DATE_LIKE = re.compile(
    r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_VALUE_X = re.compile(r"value[A-Z]\w*")
_EXTENSION_KEYS = frozenset({"extension", "modifierExtension"})


@dataclass
class Tally:
    """Values removed or transformed, per identifier type: the report's counts."""

    removed: Counter[str] = field(default_factory=Counter)
    transformed: Counter[str] = field(default_factory=Counter)
    kept: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.removed.update(other.removed)
        self.transformed.update(other.transformed)
        self.kept.update(other.kept)

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"removed": dict(sorted(self.removed.items())),
                "transformed": dict(sorted(self.transformed.items())),
                "kept": dict(sorted(self.kept.items()))}  # fmt: skip


class Deidentifier:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.tally = Tally()

    def resource(self, body: dict[str, Any], ctx: Context) -> dict[str, Any]:
        """The de-identified copy of one resource (the input is not changed)."""
        rtype = str(body.get("resourceType", ""))
        ctx.resource_type = rtype
        ctx.added_extensions = []
        out = self._object(body, (rtype,), ctx)
        out = {} if out is REMOVED else out
        out["resourceType"] = rtype
        if ctx.added_extensions:
            out["extension"] = [*out.get("extension", []), *ctx.added_extensions]
        return out

    def _object(self, node: dict[str, Any], loc: tuple[str, ...], ctx: Context) -> Any:
        out: dict[str, Any] = {}
        coded = self.profile.coded_rule_for(loc, node) if "code" in node else None
        for key, value in node.items():
            if key == "resourceType" and len(loc) == 1:
                continue
            here = (*loc, key)
            if coded is not None and _VALUE_X.fullmatch(key):
                # what the element records (an age …) decides, before where its value sits
                result = self._apply(coded.strategy, coded, value, ctx)
            elif (rule := self.profile.rule_for(here)) is not None:
                result = self._apply(rule.strategy, rule, value, ctx)
            elif key in _EXTENSION_KEYS and isinstance(value, list):
                result = self._extensions(value, here, ctx)
            else:
                result = self._value(value, here, ctx)
            if result is not REMOVED:
                out[key] = result
        return out or REMOVED  # an empty element is not FHIR: drop it

    def _value(self, value: Any, loc: tuple[str, ...], ctx: Context) -> Any:
        if isinstance(value, dict):
            return self._object(value, loc, ctx)
        if isinstance(value, list):
            items = [self._value(v, loc, ctx) for v in value]
            kept = [v for v in items if v is not REMOVED]
            return kept or REMOVED
        if isinstance(value, str) and DATE_LIKE.fullmatch(value):
            return self._apply(self.profile.dates, None, value, ctx)
        return value

    def _extensions(self, items: list[Any], loc: tuple[str, ...], ctx: Context) -> Any:
        kept = []
        for item in items:
            url = item.get("url") if isinstance(item, dict) else None
            if url in self.profile.keep_extensions:
                result = self._value(item, loc, ctx)
                if result is not REMOVED:
                    kept.append(result)
            else:
                self.tally.removed["extension"] += 1
        return kept or REMOVED

    def _apply(
        self, strategy: Strategy, rule: Rule | CodedRule | None, value: Any, ctx: Context
    ) -> Any:
        category = "date" if rule is None else rule.category
        if isinstance(value, list) and strategy.name != "keep":
            results = [self._apply(strategy, rule, v, ctx) for v in value]
            kept = [r for r in results if r is not REMOVED]
            return kept or REMOVED
        result = strategy.apply(value, ctx)
        kind = _refine(category, value)
        if result is REMOVED:
            self.tally.removed[kind] += 1
        elif result != value:
            self.tally.transformed[kind] += 1
        else:
            self.tally.kept[kind] += 1
        return result


def _refine(category: str, value: Any) -> str:
    """`identifier:SS`, `telecom:phone` …: which of the 18 kinds a removed element was."""
    if not isinstance(value, dict):
        return category
    if category == "identifier":
        kind = value.get("type")
        codings = kind.get("coding") if isinstance(kind, dict) else None
        codes = [c.get("code") for c in codings or [] if isinstance(c, dict)]
        code = next((c for c in codes if isinstance(c, str)), None)
        return f"identifier:{code}" if code else category
    if category == "telecom" and isinstance(value.get("system"), str):
        return f"telecom:{value['system']}"
    return category
