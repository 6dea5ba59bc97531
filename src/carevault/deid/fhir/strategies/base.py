"""The strategy protocol: one rule's action on one element, and what a strategy may ask of the
export (the patient's pseudonyms, the free-text scrubber, the export date)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final, Protocol


class _Removed:
    """The element is dropped (a sentinel: None is a value some strategies could keep)."""

    _instance: _Removed | None = None

    def __new__(cls) -> _Removed:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REMOVED"


REMOVED: Final = _Removed()


@dataclass
class Context:
    """What the strategies of one patient's resources share. No PHI is ever logged from here."""

    export_date: date
    pseudonym: Callable[[str, str], str]
    """(resource type, original id) -> the project's pseudonymous id."""
    scrub: Callable[[str], str]
    """Free text -> the scrubbed text (carevault.deid.text, plus the patient's known values)."""
    params: Mapping[str, Any] = field(default_factory=dict)
    """The profile's [params] table (e.g. the restricted ZIP3 codes)."""
    shift_days: int = 0
    """A per-patient random date offset, for the `shift` strategy."""
    added_extensions: list[dict[str, Any]] = field(default_factory=list)
    """Extensions a strategy asks to add to the resource (e.g. the "90 or older" age group)."""
    resource_type: str = ""


class Strategy(Protocol):
    """One action: `apply` returns the element's new value, or REMOVED."""

    name: str

    def apply(self, value: Any, ctx: Context) -> Any: ...


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    if strategy.name in REGISTRY:
        raise ValueError(f"strategy {strategy.name!r} registered twice")
    REGISTRY[strategy.name] = strategy
    return strategy
