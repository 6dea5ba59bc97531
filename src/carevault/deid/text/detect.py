"""`find_phi`: every detector over the text (and a trained model's names and places, when
one is given), merged into sorted disjoint spans; then every other occurrence of a word
already flagged as a name or a place is flagged too."""

from __future__ import annotations

import re
from collections.abc import Sequence

from . import lexicon
from .contact import find_contacts, find_ids
from .dates import find_ages, find_dates
from .learned import NoteTagger
from .names import context_names, dictionary_names, misspelling
from .people import more_names, person_word
from .places import find_places
from .spans import PhiSpan, merge_spans
from .tokens import Token, is_upper_text, tokenize

_WORDS = re.compile(r"[A-Za-z][A-Za-z']{3,}")
_PROPAGATE = frozenset({"NAME", "LOCATION", "HOSPITAL"})


def _flagged_words(text: str, spans: list[PhiSpan], seen: dict[str, str]) -> None:
    """Add to ``seen`` the words of name and place spans that are no English word (lower
    case), and the capitalised name words that are English words too (as written)."""
    common = lexicon.common_words()
    clinical = lexicon.clinical_words()
    for span in spans:
        if span.category in _PROPAGATE:
            for word in _WORDS.findall(text, span.start, span.end):
                low = word.lower()
                if low not in common and low not in clinical:
                    seen.setdefault(low, span.category)
                elif span.category == "NAME" and person_word(word):
                    seen.setdefault(word, "NAME")  # ``Rose``: only where written so


def _propagate(
    text: str, toks: list[Token], spans: list[PhiSpan], known: dict[str, str] | None = None
) -> list[PhiSpan]:
    """``Quartermain 2`` found once: ``F-MICU/QUARTERMAIN/CCU`` in the same note too."""
    seen: dict[str, str] = dict(known or {})
    _flagged_words(text, spans, seen)
    if not seen:
        return spans
    extra = [
        PhiSpan(t.start, t.end, seen.get(t.low, "NAME"))
        for t in toks
        if t.low in seen or t.text in seen
    ]
    return merge_spans(text, spans + extra)


def _implausible(text: str, span: PhiSpan, upper: bool) -> bool:
    """A name span that is one lower-case word of a mixed-case note, in no name list, and
    either a misspelt English word (``agressive``, ``brather``) or an abbreviation of three
    letters or fewer (``rr``, ``ivs``): what a context rule took, not a name."""
    if span.category != "NAME" or upper:
        return False
    word = text[span.start : span.end]
    if not word.isalpha() or not word.islower():
        return False
    if word in lexicon.first_names() or word in lexicon.surnames():
        return False
    return len(word) <= 3 or misspelling(word)


def _detect(text: str, tagger: NoteTagger | None) -> tuple[list[Token], list[PhiSpan]]:
    spans: list[PhiSpan] = []
    for detector in (find_contacts, find_ids, find_dates, find_ages):
        spans.extend(detector(text))
    toks = tokenize(text)
    strong = context_names(text, toks)
    # a place that a title or a relation shows to be a person (``Mr. Nicholson``) is a name
    spans.extend(
        p
        for p in find_places(text, toks)
        if not any(n.start < p.end and p.start < n.end for n in strong)
    )
    spans.extend(strong)
    spans.extend(dictionary_names(text, toks))
    merged = merge_spans(text, spans)
    learned = tagger.spans(text, toks) if tagger else []
    found = merge_spans(text, merged + more_names(text, toks, merged) + learned)
    upper = is_upper_text(text)
    return toks, [s for s in found if not _implausible(text, s, upper)]


def find_phi(text: str, tagger: NoteTagger | None = None) -> list[PhiSpan]:
    """The PHI in ``text``: sorted, non-overlapping spans (offsets into ``text``)."""
    if not text:
        return []
    toks, spans = _detect(text, tagger)
    return _propagate(text, toks, spans)


def find_phi_in_notes(
    texts: Sequence[str], tagger: NoteTagger | None = None
) -> list[list[PhiSpan]]:
    """``find_phi`` over the notes of one patient, where a name or place word flagged in one
    note is flagged in every other note too (a patient's notes name the same people)."""
    detected = [_detect(t, tagger) if t else ([], []) for t in texts]
    seen: dict[str, str] = {}
    for text, (_, spans) in zip(texts, detected, strict=True):
        _flagged_words(text, spans, seen)
    return [
        _propagate(text, toks, spans, seen) if text else []
        for text, (toks, spans) in zip(texts, detected, strict=True)
    ]
