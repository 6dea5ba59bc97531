"""More training notes from fewer: copies of an annotated note whose names and places are
swapped for others from the word lists, written in the case of the original.

A few hundred notes show a model only a few hundred names, most of them words of no list;
the copies put ambiguous names (``Miller``, ``Rose``, ``Welsh``: also English words) and
list names into the same contexts, so that the model learns the context rather than the
name (it cannot learn the name anyway: see `learned`)."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from functools import cache
from typing import Final

from . import lexicon
from .learned import Phrase
from .tokens import FUNCTION_WORDS, is_upper_text

_SWAPPED: Final = frozenset({"NAME", "LOCATION"})
_WORD: Final = re.compile(r"[A-Za-z]{2,}")


@cache
def _pools() -> tuple[list[str], list[str], list[str]]:
    """Names that are also English words, names that are not, and single-word towns."""
    names = lexicon.first_names() | lexicon.common_surnames()
    plain = names - lexicon.clinical_words() - FUNCTION_WORDS
    ambiguous = sorted(w for w in plain & lexicon.common_words() if len(w) > 2 and w.isalpha())
    unambiguous = sorted(w for w in lexicon.unambiguous_names() if w.isalpha())
    towns = sorted(w for w in lexicon.places() if w.isalpha())
    return ambiguous, unambiguous, towns


def _written_as(word: str, original: str, upper_note: bool) -> str:
    if upper_note or (original.isupper() and len(original) > 1):
        return word.upper()
    if original[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def swapped(text: str, phrases: Sequence[Phrase], rng: random.Random) -> tuple[str, list[Phrase]]:
    """``text`` with each word of its name and place phrases replaced, and the phrases at
    their new offsets (other phrases kept as they are)."""
    ambiguous, unambiguous, towns = _pools()
    upper = is_upper_text(text)

    def swap(category: str, original: str) -> str:
        names = ambiguous if rng.random() < 0.5 else unambiguous
        pool = towns if category == "LOCATION" else names
        return _written_as(pool[rng.randrange(len(pool))], original, upper)

    out: list[str] = []
    moved: list[Phrase] = []
    pos = length = 0
    for start, end, category in sorted(phrases):
        if start < pos:
            continue  # overlapping annotations: the first one stands
        out.append(text[pos:start])
        length += start - pos
        piece = text[start:end]
        if category in _SWAPPED:
            piece = _WORD.sub(lambda m, c=category: swap(c, m.group(0)), piece)  # type: ignore[misc]
        out.append(piece)
        moved.append((length, length + len(piece), category))
        length += len(piece)
        pos = end
    out.append(text[pos:])
    return "".join(out), moved
