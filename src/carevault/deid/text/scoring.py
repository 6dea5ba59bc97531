"""Phrase-level scoring of flagged spans against gold phrases.

- A gold phrase is *found* when every character of it (whitespace included) lies inside some
  flagged span; recall = found gold phrases / gold phrases.
- A flagged span is a *true positive* when it overlaps (shares at least one character with)
  some gold phrase, else a false positive; precision = true-positive flagged spans / flagged
  spans.
- F2 = 5PR / (4P + R): recall weighs four times as much as precision.
Per category: recall over the gold phrases of that category (found by a span of any
category), precision over the flagged spans of that category (true if they overlap a gold
phrase of any category)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .corpus import GoldPhrase
from .spans import PhiSpan


@dataclass
class Score:
    gold: Counter[str] = field(default_factory=Counter)
    found: Counter[str] = field(default_factory=Counter)
    flagged: Counter[str] = field(default_factory=Counter)
    true_flagged: Counter[str] = field(default_factory=Counter)
    missed: list[tuple[str, str]] = field(default_factory=list)  # (category, text)
    false_positives: list[tuple[str, str]] = field(default_factory=list)

    def recall(self, category: str | None = None) -> float:
        g = self.gold.total() if category is None else self.gold[category]
        f = self.found.total() if category is None else self.found[category]
        return f / g if g else float("nan")

    def precision(self, category: str | None = None) -> float:
        n = self.flagged.total() if category is None else self.flagged[category]
        t = self.true_flagged.total() if category is None else self.true_flagged[category]
        return t / n if n else float("nan")

    def f2(self, category: str | None = None) -> float:
        p, r = self.precision(category), self.recall(category)
        if p != p or r != r:  # no gold phrase or no flagged span: undefined
            return float("nan")
        return 5 * p * r / (4 * p + r) if (p + r) > 0 else 0.0

    def categories(self) -> list[str]:
        return sorted(set(self.gold) | set(self.flagged))


def covered(start: int, end: int, spans: Sequence[PhiSpan]) -> bool:
    """Is every character of [start, end) inside the spans (sorted by start)?"""
    pos = start
    for s in spans:
        if s.start <= pos < s.end:
            pos = s.end
            if pos >= end:
                return True
    return pos >= end


def score_note(
    score: Score, text: str, gold: Iterable[GoldPhrase], flagged: Sequence[PhiSpan]
) -> None:
    """Add one note's counts to ``score``; ``flagged`` sorted and disjoint."""
    gold = list(gold)
    for g in gold:
        score.gold[g.category] += 1
        if covered(g.start, g.end, flagged):
            score.found[g.category] += 1
        else:
            score.missed.append((g.category, text[max(0, g.start - 40) : g.end + 30]))
    for s in flagged:
        score.flagged[s.category] += 1
        if any(g.start < s.end and s.start < g.end for g in gold):
            score.true_flagged[s.category] += 1
        else:
            score.false_positives.append((s.category, text[s.start : s.end]))
