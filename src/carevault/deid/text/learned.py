"""A learned second opinion on names and places: a linear-chain CRF (CRFsuite) over the
word tokens of a note, trained on annotated notes, whose finds are added to the rules'.

The rules take what a context proves; the model weighs many weak signs together (the
words around, case, the word lists a word is in), which is what ``E. WELSH AWARE`` or
``works for vista health`` need. A token is flagged when the model gives it a chance of
at least `THRESHOLD` of being a name or a place.

No PHI in the model: a word is a feature by its identity only when it is an English,
clinical or function word of the shipped lists; any other word is seen only through its
shape, its word-list flags and its first and last two or three letters (of words longer
than three), and digits between words only as ``0``. A model trained on a site's own notes
therefore holds none of their names or numbers (``tests/unit/deid/test_text_learned.py``
greps the file for them)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Final

import pycrfsuite

from . import lexicon
from .names import RELATIONS, TITLES, WEAK_TITLES
from .spans import PhiSpan
from .tokens import FUNCTION_WORDS, Token, is_lower_text, is_upper_text, tokenize

# The cut that maximises an F-beta measure is about F / (1 + beta^2) (Lipton et al. 2014):
# 0.9 / 5 for F2, so a token is flagged from a 20% chance on. Not fitted to any corpus.
THRESHOLD: Final = 0.2
Phrase = tuple[int, int, str]
"""An annotated phrase of a training note: start, end (exclusive), category."""
LEARNED: Final = ("NAME", "LOCATION")
_OUTSIDE: Final = "O"
_WINDOW: Final = (-2, -1, 1, 2)
_UNKNOWN: Final = "<unk>"
_AFFIXES: Final = (2, 3)
"""Letters of an unknown word kept as features, from either end (chosen on the tuning half
by inner cross-validation: F2 0.838 -> 0.848 for the model alone)."""
_AFFIX_FROM: Final = 3
"""Only words longer than this: a word of three letters or fewer would be kept whole."""
_DIGIT: Final = re.compile(r"\d")


def _word(low: str) -> str:
    """The word as a feature: itself if it is in the shipped lists, else `_UNKNOWN`."""
    return low if low in lexicon.common_words() or low in FUNCTION_WORDS else _UNKNOWN


@lru_cache(maxsize=1 << 16)
def _flags(low: str) -> tuple[str, ...]:
    lists = (
        ("first", lexicon.first_names()),
        ("frequent-first", lexicon.frequent_first_names()),
        ("surname", lexicon.common_surnames()),
        ("rare-surname", lexicon.rare_surnames()),
        ("common", lexicon.common_words()),
        ("clinical", lexicon.clinical_words()),
        ("place", lexicon.places()),
        ("hospital", lexicon.hospitals()),
        ("function", FUNCTION_WORDS),
        ("relation", RELATIONS),
        ("title", TITLES),
        ("weak-title", WEAK_TITLES),
    )
    return tuple(name for name, words in lists if low in words)


def _shape(word: str) -> str:
    if len(word) == 1:
        return "initial" if word.isupper() else "letter"
    if word.isupper():
        return "upper"
    if word[0].isupper() and word[1:].islower():
        return "title"
    return "lower" if word.islower() else "mixed"


def _case(text: str) -> str:
    return "upper" if is_upper_text(text) else "lower" if is_lower_text(text) else "mixed"


def token_features(text: str, toks: Sequence[Token]) -> list[dict[str, float]]:
    """One feature map per token: its own signs and its neighbours' (two either side)."""
    case = _case(text)
    words = [_word(t.low) for t in toks]
    shapes = [_shape(t.text) for t in toks]
    flags = [_flags(t.low) for t in toks]  # each worked out once, used five times
    out: list[dict[str, float]] = []
    for i, tok in enumerate(toks):
        shape = shapes[i]
        before = _DIGIT.sub("0", text[toks[i - 1].end : tok.start]) if i else "^"
        after = _DIGIT.sub("0", text[tok.end : toks[i + 1].start]) if i + 1 < len(toks) else "$"
        f: dict[str, float] = {
            "bias": 1.0,
            f"word={words[i]}": 1.0,
            f"shape={shape}/{case}": 1.0,
            f"length={min(len(tok.low), 8)}": 1.0,
            f"before={before[-3:]!r}": 1.0,
            f"after={after[:3]!r}": 1.0,
        }
        if words[i] != _UNKNOWN:
            f[f"suffix={tok.low[-3:]}"] = 1.0
        elif len(tok.low) > _AFFIX_FROM:  # a name's make (``-son``, ``mc-``), not the name
            for k in _AFFIXES:
                f[f"unknown-prefix={tok.low[:k]}"] = 1.0
                f[f"unknown-suffix={tok.low[-k:]}"] = 1.0
        if tok.dotted:
            f["dotted"] = 1.0
        sentence_start = i == 0 or before.rstrip(" \t").endswith((".", "!", "?", ":", "\n"))
        if case == "mixed" and shape == "title" and not sentence_start:
            f["capitalised-inside-sentence"] = 1.0
        for flag in flags[i]:
            f[f"list={flag}"] = 1.0
            f[f"list={flag}/{shape}"] = 1.0
        for d in _WINDOW:
            j = i + d
            if not 0 <= j < len(toks):
                f[f"{d}:edge"] = 1.0
                continue
            f[f"{d}:word={words[j]}"] = 1.0
            f[f"{d}:shape={shapes[j]}"] = 1.0
            for flag in flags[j]:
                f[f"{d}:list={flag}"] = 1.0
        out.append(f)
    return out


def token_labels(toks: Sequence[Token], phrases: Iterable[Phrase]) -> list[str]:
    """The category of the annotated phrase each token lies in (names and places only)."""
    marked = [(s, e, c) for s, e, c in phrases if c in LEARNED]
    labels: list[str] = []
    for tok in toks:
        hit = next((c for s, e, c in marked if s < tok.end and tok.start < e), _OUTSIDE)
        labels.append(hit)
    return labels


def train(
    notes: Iterable[tuple[str, Sequence[Phrase]]],
    out: Path,
    *,
    iterations: int = 150,
) -> int:
    """Fit a model on annotated notes ((text, [(start, end, category)])) into ``out``;
    the number of notes it learned from."""
    trainer = pycrfsuite.Trainer(verbose=False)
    count = 0
    for text, phrases in notes:
        toks = tokenize(text)
        if toks:
            trainer.append(token_features(text, toks), token_labels(toks, phrases))
            count += 1
    if not count:
        raise ValueError("no annotated note to learn from")
    # L1 keeps the model small (most word features get no weight), L2 keeps it smooth
    trainer.set_params(
        {"c1": 0.05, "c2": 0.01, "max_iterations": iterations,
         "feature.possible_transitions": True}
    )  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    trainer.train(str(out))
    return count


class NoteTagger:
    """A trained model, opened once per thread (a CRFsuite tagger is not thread-safe)."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise FileNotFoundError(f"no notes model at {path}")
        self.path = path
        self._local = threading.local()
        self._tagger()  # a file that is no model fails here, not at the first note

    def _tagger(self) -> pycrfsuite.Tagger:
        tagger = getattr(self._local, "tagger", None)
        if tagger is None:
            tagger = pycrfsuite.Tagger()
            try:
                tagger.open(str(self.path))
            except (OSError, ValueError) as exc:
                raise ValueError(f"{self.path} is not a notes model") from exc
            self._local.tagger = tagger
        return tagger

    def spans(self, text: str, toks: Sequence[Token]) -> list[PhiSpan]:
        """The tokens the model gives at least `THRESHOLD` of being a name or a place."""
        if not toks:
            return []
        tagger = self._tagger()
        tagger.set(token_features(text, toks))
        labels = [label for label in tagger.labels() if label in LEARNED]
        out: list[PhiSpan] = []
        for i, tok in enumerate(toks):
            chances = {label: tagger.marginal(label, i) for label in labels}
            best = max(chances, key=chances.__getitem__, default=None)
            if best is not None and sum(chances.values()) >= THRESHOLD:
                out.append(PhiSpan(tok.start, tok.end, best))
        return out
