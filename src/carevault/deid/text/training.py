"""Training a notes model from an annotated corpus in the PhysioNet deid format: each note
as written, and `copies` copies with its names and places swapped (see `augment`)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from pathlib import Path

from .augment import swapped
from .corpus import Note, read_corpus, split
from .learned import Phrase, train


def examples(
    notes: Sequence[Note], copies: int, seed: int = 0
) -> Iterator[tuple[str, list[Phrase]]]:
    """The notes' (text, phrases), then each note's swapped copies (seeded: the same
    corpus and seed make the same model)."""
    rng = random.Random(seed)  # noqa: S311 - surrogate words for training, not a secret
    for note in notes:
        phrases = [(p.start, p.end, p.category) for p in note.phrases]
        yield note.text, phrases
        for _ in range(copies):
            yield swapped(note.text, phrases, rng)


def train_from_corpus(folder: Path, out: Path, *, half: str = "odd", copies: int = 2) -> int:
    """Train on the notes of ``half`` (``odd``: the tuning half, so that the even-numbered
    patients' notes stay a fair test; ``all``: every note) into ``out``; notes learned."""
    notes = split(read_corpus(folder), half)
    return train(examples(notes, copies), out)
