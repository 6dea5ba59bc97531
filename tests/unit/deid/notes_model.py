"""A small notes model for tests: a dozen all-caps notes where an invented surname (in no
word list, so that only its context tells it is a name) follows ``TALKED WITH``."""

from __future__ import annotations

from itertools import product
from pathlib import Path

from carevault.deid.text.learned import train

NAMES = [
    a + b for a, b in product(["Vor", "Quel", "Stram", "Onk", "Brix"], ["dane", "thorp", "wick"])
]
TRAINED = NAMES[:12]  # the others are new to the model
_TEMPLATES = [
    "Pt comfortable overnight. Talked with {n} at the desk about the plan for tomorrow.",
    "Family meeting held. Talked with {n} at the bedside, questions answered.",
    "Labs sent at 0600. Talked with {n} at length regarding dispo to rehab.",
]


def annotated(names: list[str]) -> list[tuple[str, list[tuple[int, int, str]]]]:
    notes = []
    for i, name in enumerate(names):
        text = _TEMPLATES[i % len(_TEMPLATES)].format(n=name).upper()
        start = text.index(name.upper())
        notes.append((text, [(start, start + len(name), "NAME")]))
    return notes


def small_model(path: Path) -> Path:
    train(annotated(TRAINED), path, iterations=60)
    return path
