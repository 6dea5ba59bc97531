"""The span type that every detector returns, and the merge that makes spans disjoint."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

CATEGORIES: Final = (
    "NAME",
    "DATE",
    "AGE",
    "LOCATION",
    "HOSPITAL",
    "PHONE",
    "EMAIL",
    "URL",
    "ID",
    "OTHER",
)

# When two spans of different categories overlap, the merged span keeps the category that
# comes first here: a structured match (an email, a phone) beats a dictionary guess.
_PRIORITY: Final = {
    c: i
    for i, c in enumerate(
        ("EMAIL", "URL", "PHONE", "ID", "DATE", "AGE", "HOSPITAL", "LOCATION", "NAME", "OTHER")
    )
}


@dataclass(frozen=True)
class PhiSpan:
    """One piece of PHI: `text[start:end]` (end exclusive) of the given category."""

    start: int
    end: int
    category: str

    def __post_init__(self) -> None:
        if self.category not in _PRIORITY:
            raise ValueError(f"unknown PHI category {self.category!r}")
        if not 0 <= self.start < self.end:
            raise ValueError(f"empty or negative span {self.start}..{self.end}")


_WORDISH: Final = frozenset({"NAME", "LOCATION", "HOSPITAL"})


def _joinable(text: str, last: PhiSpan, span: PhiSpan) -> bool:
    gap = text[last.end : span.start]
    if len(gap) > 2 or gap.strip(" -") != "":
        return False
    return last.category == span.category or (
        last.category in _WORDISH and span.category in _WORDISH and len(gap) <= 1
    )


def merge_spans(text: str, spans: Iterable[PhiSpan]) -> list[PhiSpan]:
    """Sort, union overlapping spans, and join same-category spans parted by a space or hyphen."""
    out: list[PhiSpan] = []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out:
            last = out[-1]
            overlaps = span.start < last.end
            touches = _joinable(text, last, span)
            if overlaps or (span.start >= last.end and touches):
                winner = min(last.category, span.category, key=_PRIORITY.__getitem__)
                if overlaps and span.end - span.start > 2 * (last.end - last.start):
                    winner = span.category
                out[-1] = PhiSpan(last.start, max(last.end, span.end), winner)
                continue
        out.append(span)
    return out
