"""Word tokens with their offsets, and the small stop lists that the context rules share."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

_UPPER: Final = re.compile(r"[^\W\d_a-z]", re.UNICODE)
_LOWER: Final = re.compile(r"[^\W\d_A-Z]", re.UNICODE)
_WORD: Final = re.compile(r"[A-Za-z](?:[A-Za-z]|'(?=[A-Za-z]))*\.?")


@dataclass(slots=True)
class Token:
    start: int
    end: int
    text: str  # as written, without a trailing period
    low: str  # lower case, without a possessive 's
    dotted: bool  # followed directly by a period (an initial, ``Dr.``)


def tokenize(text: str) -> list[Token]:
    out: list[Token] = []
    for m in _WORD.finditer(text):
        word = m.group(0)
        dotted = word.endswith(".")
        if dotted:
            word = word[:-1]
        low = word.lower()
        if low.endswith("'s"):
            low = low[:-2]
        out.append(Token(m.start(), m.start() + len(word), word, low, dotted))
    return out


def gap(text: str, left: Token, right: Token) -> str:
    """The characters between two tokens (``left`` before ``right``)."""
    return text[left.end : right.start]


def is_upper_text(text: str) -> bool:
    """Most letters upper case: capitals then say nothing about names."""
    sample = text[:2000]
    # counted by the regex engine: a Python loop over characters costs a tenth of the run
    upper = len(_UPPER.findall(sample))
    lower = len(_LOWER.findall(sample))
    return upper > 1.5 * lower


def is_lower_text(text: str) -> bool:
    """Hardly a capital letter: a note typed in lower case, where names are too."""
    sample = text[:2000]
    return len(_UPPER.findall(sample)) < 0.03 * len(_LOWER.findall(sample))


def word_set(words: str) -> frozenset[str]:
    """The words of a blank-separated string, as a set."""
    return frozenset(words.split())


FUNCTION_WORDS: Final = word_set(
    """a an the and or but nor of to in on at by for from with without into onto as is are was
    were be been being am has have had do does did will would shall should can could may might
    must not no yes this that these those it its he him his she her hers they them their we us
    our you your i me my who whom whose which what when where why how all any some each every
    both either neither other another such same so than too very just also only then there here
    now again still yet well up down out over under off about after before since until while
    per via re vs x s m f t y am pm md rn np pa pt ot mr mrs ms dr drs st"""
)
