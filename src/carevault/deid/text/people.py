"""More person-name context rules, on top of `names.py`:

- a name after a verb of talking (``spoke with Marge``, ``called Rob``, ``per Halfpenny``);
- names listed with a name already found (``Suzette and Hank``, ``Sons Smokey, Morris and
  Roger``);
- a capitalised first name followed by a capitalised surname in mixed-case text
  (``Morris Halfpenny``), where either may also be an English word;
- a capitalised word that is no English word next to a found name (``Lopie Certusi``);
- one word between a relation and what a relative does (``son fallow called``), and a word
  the text says is a name (``goes by "Bud"``), English words or not.

Each rule takes the spans already found, so that it can widen them, and returns new spans."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from . import lexicon
from .names import RELATIONS
from .spans import PhiSpan
from .tokens import FUNCTION_WORDS, Token, gap, is_upper_text, word_set

_TALK: Final = word_set(
    """spoke speak speaks speaking spoken talked talking talk talks discussed updated update
    informed notified called call calling paged page contacted contact contacts met meet
    visited per phoned texted told asked consult consulted discuss meeting conference"""
)
_TALK_PREP: Final = word_set("with to w by")
# capitalised words that begin a sentence in a note and are not names
_NOT_NAME: Final = (
    FUNCTION_WORDS
    | word_set(
        """will may can pt pts patient family team plan note nurse nursing social resp neuro cv
    gi gu id skin pain assessment update care case service today tonight tomorrow
    yesterday morning evening night states said says"""
    )
    | RELATIONS
)


def _titled(tok: Token) -> bool:
    return len(tok.text) > 1 and tok.text[0].isupper() and tok.text[1:].islower()


def _person_word(tok: Token) -> bool:
    """Not a function word nor a clinical word nor a note word."""
    low = tok.low
    return len(low) > 1 and low not in _NOT_NAME and low not in lexicon.clinical_words()


def _name_listed(tok: Token) -> bool:
    low = tok.low
    return low in lexicon.first_names() or low in lexicon.surnames()


def _unknown(tok: Token) -> bool:
    return _person_word(tok) and tok.low not in lexicon.common_words()


_NAMED: Final = re.compile(
    r"\b(?:named|name\s+is|names\s+are|goes\s+by|known\s+as|likes\s+to\s+be\s+called|"
    r"prefers\s+to\s+be\s+called|calls\s+(?:him|her)self)\s*:?\s*"
    r"([\"'](?=[A-Za-z])[A-Za-z][A-Za-z'-]*[\"']|[A-Z][A-Za-z'-]+)",
)


def _named(text: str) -> Iterator[tuple[int, int]]:
    """``name is Hattie``, ``goes by "Bud"``: a word that the text says is a name (quoted,
    or capitalised), an English word or not."""
    for m in _NAMED.finditer(text):
        word = m.group(1).strip("\"'")
        if word.lower() in _NOT_NAME or word.lower() in lexicon.clinical_words():
            continue
        start = m.start(1) + (m.group(1)[0] in "\"'")
        yield start, start + len(word)


def _strong_name(tok: Token) -> bool:
    """A word of the name lists (the 2010 Census's too) that is no English or clinical word:
    a name after a verb of talking whatever its case (``spoke with cronbaugh``)."""
    low = tok.low
    return (
        len(low) > 2
        and _person_word(tok)
        and low not in lexicon.common_words()
        and (_name_listed(tok) or low in lexicon.rare_surnames())
    )


def _after_talk(text: str, toks: list[Token], upper: bool) -> Iterator[tuple[int, int]]:
    """``spoke with Marge``, ``called Rob``: a capitalised name after a verb of talking."""
    for i, tok in enumerate(toks[:-1]):
        if tok.low not in _TALK:
            continue
        j = i + 1
        if toks[j].low in _TALK_PREP and j + 1 < len(toks):
            j += 1
        nxt = toks[j]
        if gap(text, toks[j - 1], nxt) not in {" ", "  ", "/"} or not _person_word(nxt):
            continue
        # a capitalised word in a mixed-case note; else (lower case, or an all-caps note)
        # only a word of the name lists that is no English word
        loose = not upper and _titled(nxt)
        frequent = nxt.low in lexicon.frequent_first_names() and len(nxt.low) > 2
        if not (_strong_name(nxt) or frequent or (loose and (_name_listed(nxt) or _unknown(nxt)))):
            continue
        end = j
        if j + 1 < len(toks) and gap(text, nxt, toks[j + 1]) == " ":
            after = toks[j + 1]
            if _person_word(after) and (
                _strong_name(after)
                or (loose and _titled(after) and (_name_listed(after) or _unknown(after)))
            ):
                end = j + 1
        yield nxt.start, toks[end].end


def _pairs(text: str, toks: list[Token], upper: bool) -> Iterator[tuple[int, int]]:
    """``Morris Halfpenny``: a capitalised first name, then a capitalised surname (or a word
    in no English list), neither at the start of a line."""
    if upper:
        return
    firsts = lexicon.first_names()
    for i, tok in enumerate(toks[:-1]):
        nxt = toks[i + 1]
        if tok.low not in firsts or not (_titled(tok) and _titled(nxt)):
            continue
        if gap(text, tok, nxt) != " " or not (_person_word(tok) and _person_word(nxt)):
            continue
        before = text[max(0, tok.start - 2) : tok.start]
        if not before or "\n" in before or before.rstrip().endswith((".", ":", "!", "?")):
            continue
        if nxt.low in lexicon.surnames() or _unknown(nxt):
            yield tok.start, nxt.end


def _unknown_pairs(text: str, toks: list[Token], upper: bool) -> Iterator[tuple[int, int]]:
    """``Lopie Certusi``: two capitalised words side by side that no English, clinical or
    name list knows, in a mixed-case note."""
    if upper:
        return
    for i, tok in enumerate(toks[:-1]):
        nxt = toks[i + 1]
        if gap(text, tok, nxt) != " " or not (_titled(tok) and _titled(nxt)):
            continue
        if len(tok.low) > 2 and len(nxt.low) > 2 and _unknown(tok) and _unknown(nxt):
            yield tok.start, nxt.end


_RELATIVE_DOES: Final = word_set(
    """called calls calling phoned visited visiting visits came arrived left reports reported
    states stated said says was is will has had aware updated spoke asked wants agrees agreed
    requested would wishes brought took feels"""
)
_NOT_RELATIVE_NAME: Final = _RELATIVE_DOES | word_set(
    """never recently finally later initially briefly frequently always often usually both
    himself herself themselves who whom whose also present here there today tonight
    yesterday earlier again still just made being been became remains kept got feels felt
    seems appears"""
)


def _relative_does(text: str, toks: list[Token], upper: bool) -> Iterator[tuple[int, int]]:
    """``son fallow called``, ``his son, holms, called``, ``SON DOLLAR HAS PHONED``: one word
    between a relation and what a relative does is the relative's name, whatever the word."""
    for i, tok in enumerate(toks[:-2]):
        if tok.low not in RELATIONS:
            continue
        cand, verb = toks[i + 1], toks[i + 2]
        before, after = gap(text, tok, cand), gap(text, cand, verb)
        if before not in {" ", ", ", " ,", ": ", " - "} or after not in {" ", ", ", ","}:
            continue
        if after != " " and before == " ":
            continue  # ``son fallow, called``: the commas come in pairs or not at all
        if verb.low not in _RELATIVE_DOES and not (
            verb.low == "in" and i + 3 < len(toks) and toks[i + 3].low == "to"
        ):
            continue
        low = cand.low
        if len(low) < 3 or not _person_word(cand) or low in _NOT_RELATIVE_NAME:
            continue
        capital = not upper and _titled(cand)  # ``son Fearing called``: written as a name
        if low in RELATIONS or (not capital and low.endswith(("ly", "ed", "ing"))):
            continue
        yield cand.start, cand.end


def _relation_lists(text: str, toks: list[Token], upper: bool) -> Iterator[tuple[int, int]]:
    """``Sons Smokey, Morris and Roger``: capitalised words listed right after a relation in a
    mixed-case note are names, even English words."""
    if upper:
        return
    for i, tok in enumerate(toks[:-1]):
        if tok.low not in RELATIONS:
            continue
        j = i + 1
        while j < len(toks):
            nxt = toks[j]
            between = gap(text, toks[j - 1], nxt)
            if nxt.low == "and" and between in {" ", ", "} and j > i + 1:
                j += 1
                continue
            allowed = {" ", ", ", ": "} if j == i + 1 else {" ", ", "}
            if between not in allowed or not _titled(nxt) or not _person_word(nxt):
                break
            # an English word that is no first name is passed over, the list goes on; right
            # after the relation it is the name (``son Cowan``), unless a heading follows
            first = (
                j == i + 1
                and between == " "
                and tok.low != "social"  # ``Social: Several visitors``: a heading
                and text[nxt.end : nxt.end + 1] != ":"
                and len(nxt.low) > 2
            )
            if nxt.low not in lexicon.common_words() or nxt.low in lexicon.first_names() or first:
                yield nxt.start, nxt.end
            j += 1


def _listed_with(
    text: str, toks: list[Token], spans: list[PhiSpan], upper: bool
) -> Iterator[tuple[int, int]]:
    """``Suzette and Hank``, ``Smokey, Morris and Roger``: a name listed next to a found name
    (``and``, ``&``, ``,``), either way round."""
    starts = {s.start: s for s in spans if s.category == "NAME"}
    ends = {s.end: s for s in spans if s.category == "NAME"}
    for i, tok in enumerate(toks):
        # the word after ``<name> and`` / ``<name>,``
        if i >= 1 and (toks[i - 1].end in ends or toks[i - 1].low in {"and"}):
            prev = toks[i - 1]
            between = gap(text, prev, tok)
            joined = prev.end in ends and between.strip() in {",", "&", "and"}
            if prev.low == "and" and i >= 2 and toks[i - 2].end in ends:
                joined = gap(text, toks[i - 2], prev) in {" ", ", "} and between == " "
            if joined and tok.start not in starts and _candidate(tok, upper):
                yield tok.start, tok.end
        # the word before ``and <name>`` / ``, <name>``
        if i + 1 < len(toks) and tok.end not in ends:
            nxt = toks[i + 1]
            between = gap(text, tok, nxt)
            if between.strip() == "," and nxt.start in starts and _candidate(tok, upper):
                yield tok.start, tok.end
            listed = nxt.low == "and" and i + 2 < len(toks) and toks[i + 2].start in starts
            if listed and between in {" ", ", "} and _candidate(tok, upper):
                yield tok.start, tok.end


def _candidate(tok: Token, upper: bool) -> bool:
    if not _person_word(tok):
        return False
    if tok.low in lexicon.unambiguous_names() or tok.low in lexicon.frequent_first_names():
        return True
    if _strong_name(tok):
        return True  # ``mond and sinski``: the 2010 Census's surnames too, any case
    return not upper and _titled(tok) and (_name_listed(tok) or _unknown(tok))


def person_word(word: str) -> bool:
    """A capitalised word (as written) of the name lists that a context showed to be a name
    and that may stand for that name elsewhere: ``Rose``, ``Hank``, not ``Will``, ``May``."""
    low = word.lower()
    return (
        len(word) > 2
        and word[0].isupper()
        and word[1:].islower()
        and low not in _NOT_NAME
        and low not in lexicon.clinical_words()
        and (low in lexicon.first_names() or low in lexicon.surnames())
    )


def more_names(text: str, toks: list[Token], spans: list[PhiSpan]) -> list[PhiSpan]:
    """Names found by the rules of this module (``spans``: those found so far)."""
    upper = is_upper_text(text)
    out = [PhiSpan(s, e, "NAME") for s, e in _after_talk(text, toks, upper)]
    out.extend(PhiSpan(s, e, "NAME") for s, e in _named(text))
    for rule in (_pairs, _unknown_pairs, _relation_lists, _relative_does):
        out.extend(PhiSpan(s, e, "NAME") for s, e in rule(text, toks, upper))
    found = spans + out
    for _ in range(3):  # lists of three or four names grow one name a round
        extra = [PhiSpan(s, e, "NAME") for s, e in _listed_with(text, toks, found, upper)]
        extra = [x for x in extra if x not in found]
        if not extra:
            break
        found = found + extra
        out.extend(extra)
    return out
