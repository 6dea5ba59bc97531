"""Hospitals and places: the hospital list, words before ``hospital``/``house``/``rehab``,
where a patient was transferred from or to, towns of the GeoNames list, street addresses."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Final

from . import lexicon
from .names import RELATIONS, misspelling
from .spans import PhiSpan
from .tokens import FUNCTION_WORDS, Token, is_upper_text, tokenize, word_set

_I: Final = re.IGNORECASE
_STATES: Final = (
    "alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|"
    "hawaii|idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|"
    "michigan|minnesota|mississippi|missouri|montana|nebraska|nevada|new hampshire|new jersey|"
    "new mexico|new york|north carolina|north dakota|ohio|oklahoma|oregon|pennsylvania|"
    "rhode island|south carolina|south dakota|tennessee|texas|utah|vermont|virginia|washington|"
    "west virginia|wisconsin|wyoming"
)
_STATE_NAMES: Final = frozenset(_STATES.split("|"))
_UNIVERSITY: Final = re.compile(rf"\b(?:u|univ\.?|university)\s+(?:of\s+)?(?:{_STATES})\b", _I)
_FACILITY: Final = re.compile(
    r"[ \t-]{1,2}(hospital|hosp|hospiatal|hosptial|medical\s+center|med\s+ctr|med\s+center|"
    r"health\s+center|rehab|rehabilitation|nursing\s+home|nursing\s+facility|nh|house|manor|"
    r"clinic|regional|general|memorial|institute|infirmary|hospice|center|campus|ew|er|"
    r"hospital\s+center|health\s+system|healthcare|convalescent|assisted\s+living|pavilion|"
    r"tower|wing|building|bldg|vamc|ltac|snf|micu|sicu|ccu|csru|cvicu|ticu)\b\.?",
    _I,
)
_STREET: Final = re.compile(
    r"\b\d{1,5}[ \t]+((?:[A-Za-z]+[ \t]+){1,3})(?:street|st\.|ave|avenue|road|rd\.|blvd|"
    r"boulevard|drive|lane|ln\.|terrace|parkway|pkwy|highway|hwy|circle|court)(?![\w])\.?",
    _I,
)
_WARD_NUMBER: Final = re.compile(
    r" ?[1-9](?=[\s.,;)]|$)(?!\.\d|\s*(?:mg|mcg|cc|ml|units?|x|hrs?)\b)", _I
)
_STRONG_FACILITY: Final = word_set("hospital hosp hospiatal hosptial regional memorial infirmary")
_UNIT_WORDS: Final = word_set("micu sicu ccu csru cvicu ticu wing tower building bldg")
_WARD_CONTEXT: Final = word_set(
    "to from on at per transfer trans transferred transfered admitted or plan"
)
_HOME_WORDS: Final = word_set(
    """lives living resides residing lived home house vacation vacationing born moved job
    works working family relatives members grew raised"""
)
_STATE_CODES: Final = word_set(
    """AL AK AZ AR CA CO CT DE DC FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV
    NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY"""
)
_GENERIC: Final = word_set(
    """outside other local previous prior referring same community nearest another new old
    this that their his her area state county city private psychiatric psych rehab nursing
    teaching university any osh general hospital hosp transferring sending receiving an
    own home one two their our leave left discharge discharged from arrive arrived enter
    transfer via need needs awaiting await start begin continue"""
)
_ZIP: Final = re.compile(r"\b(?:[A-Z]{2}|" + _STATES + r")\.?,?\s+(\d{5}(?:-\d{4})?)\b", _I)
_MOVE: Final = word_set(
    """transfer transferred transfered trans tx txd tx'd admitted admit readmitted came sent
    went transported discharged d/c'd dc'd return returned returning go going arrived
    presented taken brought moved accepted medflighted flown lives living resides"""
)
_MOVE_PREP: Final = word_set("to from into at in")
_NOT_PLACE: Final = FUNCTION_WORDS | word_set(
    """floor home icu ccu micu sicu csru nicu ed ew er or ir cath lab unit room bed rehab
    hospital hosp osh nh nursing outside local area care hospice surgery dialysis hd ct mri
    radiology bathroom chair commode side bedside shower hall hallway bay morning afternoon
    evening night today tomorrow yesterday am pm noon mn location facility service team
    procedure recovery pacu vent sleep baseline normal rest stable sr st nsr afib"""
)


def _ok_place_word(tok: Token) -> bool:
    low = tok.low
    return (
        len(low) > 1
        and low not in _NOT_PLACE
        and low not in lexicon.clinical_words()
        and not low.isdigit()
    )


@cache
def _hospital_phrases() -> dict[str, tuple[tuple[str, ...], ...]]:
    """First word -> the hospital entries (as word tuples) that start with it, longest first."""
    out: dict[str, list[tuple[str, ...]]] = {}
    for entry in lexicon.hospitals():
        words = tuple(t.low for t in tokenize(entry))
        if words:
            out.setdefault(words[0], []).append(words)
    return {k: tuple(sorted(v, key=len, reverse=True)) for k, v in out.items()}


def _hospital_names(text: str, toks: list[Token]) -> Iterator[PhiSpan]:
    phrases = _hospital_phrases()
    for i, tok in enumerate(toks):
        for words in phrases.get(tok.low, ()):
            n = len(words)
            if i + n > len(toks) or any(toks[i + k].low != words[k] for k in range(n)):
                continue
            if n > 1 and "\n" in text[tok.start : toks[i + n - 1].start]:
                continue
            yield PhiSpan(tok.start, toks[i + n - 1].end, "HOSPITAL")
            break


@cache
def _multiword_places() -> dict[str, frozenset[str]]:
    """First word -> the multi-word town names that start with it."""
    out: dict[str, set[str]] = {}
    for p in lexicon.places():
        if " " in p:
            out.setdefault(p.split(" ", 1)[0], set()).add(p)
    return {k: frozenset(v) for k, v in out.items()}


def _facility_words(text: str, toks: list[Token], upper: bool) -> Iterator[PhiSpan]:
    common = lexicon.common_words()
    for i, tok in enumerate(toks):
        m = _FACILITY.match(text, tok.end)
        if not m or not _ok_place_word(tok) or tok.low in _GENERIC:
            continue
        weak = m.group(1).lower() not in _STRONG_FACILITY
        if weak and tok.low in common and tok.low not in lexicon.hospitals():
            # ``Bell Rehab``, ``to STERLING REGIONAL``: an English word names the facility
            # when it is capitalised in a mixed-case note, or follows ``to``/``from``
            if m.group(1).lower() in _UNIT_WORDS:
                continue  # ``Addendum MICU``: a unit's name must be no English word
            titled = not upper and tok.text[:1].isupper() and tok.text[1:].islower()
            moved = i > 0 and toks[i - 1].low in _MOVE_PREP and m.group(1)[:1].isupper()
            if not ((titled and m.group(1)[:1].isupper()) or moved):
                continue
        start = i
        while start > 0 and i - start < 2:
            prev = toks[start - 1]
            if text[prev.end : toks[start].start] not in {" ", "-"}:
                break
            if not _ok_place_word(prev) or prev.low in _GENERIC:
                break
            start -= 1
        yield PhiSpan(toks[start].start, m.end(), "HOSPITAL")


def _wards(text: str, toks: list[Token]) -> Iterator[PhiSpan]:
    """``Quartermain 2``, ``quartermain7``: a building or ward (an unknown word + a digit)."""
    common = lexicon.common_words()
    for i, tok in enumerate(toks):
        if len(tok.low) < 5 or tok.low in common or not _ok_place_word(tok):
            continue
        if i == 0 or toks[i - 1].low not in _WARD_CONTEXT or tok.low.endswith("x"):
            continue
        m = _WARD_NUMBER.match(text, tok.end)
        if m:
            # ``quartermain2``: a digit written on the word is part of the ward's name
            end = tok.end + 1 if text[tok.end : tok.end + 1].isdigit() else tok.end
            yield PhiSpan(tok.start, end, "HOSPITAL")


def _saints(text: str, toks: list[Token]) -> Iterator[PhiSpan]:
    """``St. Agnes``, ``ST MARY``, ``St A.``: a saint's name is a hospital's."""
    firsts = lexicon.first_names()
    for i, tok in enumerate(toks[:-1]):
        if tok.low not in {"st", "saint"}:
            continue
        nxt = toks[i + 1]
        if text[tok.end : nxt.start] not in {" ", ". ", "."}:
            continue
        named = nxt.low in firsts and nxt.low not in FUNCTION_WORDS
        titled = nxt.text[:1].isupper() and not nxt.text.isupper()
        if named and nxt.low in lexicon.common_words() and not titled:
            named = False
        if named or (len(nxt.text) == 1 and nxt.text.isupper() and nxt.dotted):
            yield PhiSpan(tok.start, nxt.end, "HOSPITAL")


def _moves(text: str, toks: list[Token]) -> Iterator[PhiSpan]:
    common = lexicon.common_words()
    towns = lexicon.places()
    for i in range(len(toks) - 2):
        if toks[i].low not in _MOVE or toks[i + 1].low not in _MOVE_PREP:
            continue
        j = i + 2
        if toks[j].low in {"the", "back"} and j + 1 < len(toks):
            j += 1
        tok = toks[j]
        if not _ok_place_word(tok) or len(tok.low) < 4:
            continue
        if tok.low in common and not (tok.low in towns and tok.text[:1].isupper()):
            continue
        end = j
        if end + 1 < len(toks) and _ok_place_word(toks[end + 1]):
            nxt = toks[end + 1]
            if text[tok.end : nxt.start] == " " and nxt.low not in common:
                end += 1
        cat = "LOCATION" if toks[i].low in {"lives", "living", "resides"} else "HOSPITAL"
        yield PhiSpan(tok.start, toks[end].end, cat)


def _towns(text: str, toks: list[Token]) -> Iterator[PhiSpan]:
    towns = lexicon.places()
    common = lexicon.common_words()
    names = lexicon.first_names()
    multi = _multiword_places()
    for i, tok in enumerate(toks):
        low = tok.low
        for phrase in multi.get(low, ()):
            n = phrase.count(" ") + 1
            if i + n <= len(toks):
                words = " ".join(t.low for t in toks[i : i + n])
                if words == phrase and "\n" not in text[tok.start : toks[i + n - 1].end]:
                    titled = all(t.text[:1].isupper() for t in toks[i : i + n])
                    if titled or not all(t.low in common for t in toks[i : i + n]):
                        yield PhiSpan(tok.start, toks[i + n - 1].end, "LOCATION")
        if low in _STATE_NAMES:
            continue  # Safe Harbor keeps the state
        if low in towns and low not in common and low not in names and _ok_place_word(tok):
            yield PhiSpan(tok.start, tok.end, "LOCATION")


def _town_contexts(text: str, toks: list[Token]) -> Iterator[PhiSpan]:
    """``lives in Laurel``, ``from Bel Air``, ``Howard County``: towns that are English words,
    in a context that says they are places."""
    towns = lexicon.places()
    for i, tok in enumerate(toks):
        if tok.low == "county" and i > 0 and toks[i - 1].text[:1].isupper():
            prev = toks[i - 1]
            if _ok_place_word(prev) and text[prev.end : tok.start] == " ":
                yield PhiSpan(prev.start, tok.end, "LOCATION")
            continue
        if tok.low not in _HOME_WORDS or i + 2 >= len(toks) or toks[i + 1].low not in {"in", "at"}:
            continue
        cand = toks[i + 2]
        two = f"{cand.low} {toks[i + 3].low}" if i + 3 < len(toks) else ""
        if two in towns:
            yield PhiSpan(cand.start, toks[i + 3].end, "LOCATION")
        elif cand.low in towns and _ok_place_word(cand):
            yield PhiSpan(cand.start, cand.end, "LOCATION")
        elif cand.text in _STATE_CODES or cand.low in _STATE_NAMES:
            # ``lives in VT``: where a person lives is theirs, even a state
            yield PhiSpan(cand.start, cand.end, "LOCATION")
        elif (
            cand.text[:1].isupper()
            and len(cand.low) > 3
            and _ok_place_word(cand)
            and cand.low not in lexicon.common_words()
            and not misspelling(cand.low)
        ):
            yield PhiSpan(cand.start, cand.end, "LOCATION")


_PLACE_PREP: Final = word_set("in from to near of at")
_CITY_STATE: Final = re.compile(
    r"\b(?i:in|from|to|near|of|at)[ \t]+((?:[A-Z][A-Za-z'-]+[ \t]+){0,2}[A-Z][A-Za-z'-]+),[ \t]*"
    rf"(?:(?i:{_STATES})\b|(?:[A-Z]{{2}}|[A-Z][a-z]\.)(?![A-Za-z]))"
)
_OF_PLACE: Final = re.compile(r"[ \t]+of[ \t]+([A-Z][a-z'-]+(?:[ \t]+[A-Z][a-z'-]+)?)\b")


def _city_state(text: str) -> Iterator[PhiSpan]:
    """``from Frostburg, MD``, ``in Lantana, Florida``: a town before its state."""
    for m in _CITY_STATE.finditer(text):
        words = m.group(1).lower().split()
        if any(w in FUNCTION_WORDS or w in lexicon.clinical_words() for w in words):
            continue
        # ``IN ENZYMES, OR``: the town must be one, or at least no English word
        town = " ".join(words)
        if town not in lexicon.places() and any(w in lexicon.common_words() for w in words):
            continue
        state = text[m.end(1) :].lstrip(", \t")[:2]
        if state.isupper() and state not in _STATE_CODES:
            continue
        yield PhiSpan(m.start(1), m.end(1), "LOCATION")


def _relative_of(text: str, toks: list[Token], upper: bool) -> Iterator[PhiSpan]:
    """``daughter Maud of Brenwick``, ``nephew, Tomas Ruiz of Alder Creek``: where a relative
    comes from (capitalised words after ``of``, a name or two after a relation)."""
    if upper:
        return
    for i, tok in enumerate(toks):
        if tok.low not in RELATIONS:
            continue
        for k in range(i + 1, min(i + 4, len(toks))):
            m = _OF_PLACE.match(text, toks[k].end)
            if not m or not toks[k].text[:1].isupper():
                continue
            words = m.group(1).lower().split()
            if any(
                w in FUNCTION_WORDS or w in lexicon.clinical_words() or w in RELATIONS
                for w in words
            ):
                break
            yield PhiSpan(m.start(1), m.end(1), "LOCATION")
            break


def _towns_after_prep(text: str, toks: list[Token], upper: bool) -> Iterator[PhiSpan]:
    """``from Hampton``, ``IN CALVERT``: a capitalised town of the GeoNames list that is no
    English word, after a preposition (a town that is also a name counts here too)."""
    towns = lexicon.places()
    common = lexicon.common_words()
    for i, tok in enumerate(toks[1:], 1):
        low = tok.low
        if toks[i - 1].low not in _PLACE_PREP or low not in towns:
            continue
        # ``from Sterling``: a town that is also an English word, capitalised mid-sentence in a
        # mixed-case note, after ``from`` or ``near``
        if low in common and (upper or toks[i - 1].low not in {"from", "near"}):
            continue
        if (
            low in _STATE_NAMES
            or not _ok_place_word(tok)
            or text[toks[i - 1].end : tok.start] != " "
        ):
            continue
        if tok.text[:1].isupper() and (upper or tok.text[1:].islower()):
            yield PhiSpan(tok.start, tok.end, "LOCATION")


def find_places(text: str, toks: list[Token] | None = None) -> Iterator[PhiSpan]:
    """Hospitals and places in ``text`` (``toks``: its tokens, if already cut)."""
    if toks is None:
        toks = tokenize(text)
    yield from _hospital_names(text, toks)
    for m in _UNIVERSITY.finditer(text):
        yield PhiSpan(m.start(), m.end(), "HOSPITAL")
    upper = is_upper_text(text)
    yield from _facility_words(text, toks, upper)
    yield from _moves(text, toks)
    yield from _towns(text, toks)
    yield from _wards(text, toks)
    yield from _town_contexts(text, toks)
    yield from _towns_after_prep(text, toks, upper)
    yield from _saints(text, toks)
    yield from _city_state(text)
    yield from _relative_of(text, toks, upper)
    for m in _STREET.finditer(text):
        words = m.group(1).lower().split()
        if not any(w in FUNCTION_WORDS or w in lexicon.clinical_words() for w in words):
            yield PhiSpan(m.start(), m.end(), "LOCATION")
    for m in _ZIP.finditer(text):
        yield PhiSpan(m.start(1), m.end(1), "LOCATION")
