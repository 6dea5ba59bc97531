"""Person names: after a title (``Dr.``, ``Mr``), after a relation (``son``, ``wife``), before
a credential (``, RN``), and any word of the Census name lists that is no English word."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from . import lexicon
from .spans import PhiSpan
from .tokens import (
    FUNCTION_WORDS,
    Token,
    gap,
    is_lower_text,
    is_upper_text,
    tokenize,
    word_set,
)

TITLES: Final = word_set("dr drs doctor dr's drs' mr mrs ms miss mister prof professor")
# after these the next word must be name-like (not an English word) to count
WEAK_TITLES: Final = word_set(
    """md np rn pa attending resident intern fellow surgeon cardiologist neurologist
    nephrologist physician nurse rrt pcp hcp chaplain therapist dietician dietitian sw
    coordinator pharmacist tech agent caseworker manager worker liaison interpreter
    translator representative rep volunteer staff housestaff cm"""
)
RELATIONS: Final = word_set(
    """son sons daughter daughters dtr dtrs dau wife husband hsb hubby brother brothers sister
    sisters niece nephew mother father mom dad grandson granddaughter grandaughter
    grandaughters granddaughters grandchildren aunt uncle cousin friend friends fiance fiancee
    partner proxy hcp guardian neighbor boyfriend girlfriend spouse sibling siblings children
    child stepson stepdaughter sil dil social neice nieces nephews poa caregiver companion
    roommate landlord pastor priest rabbi minister godson goddaughter"""
)
_CREDENTIALS: Final = (
    r"(?:rn|r\.n\.?|rrt|crt|md|m\.d\.?|np|pa-c|pa|lpn|cna|msw|licsw|lcsw|rd|pharmd|bsn|ccrn|"
    r"slp|otr|ms\s*iii|sn)"
)
_CREDENTIAL: Final = re.compile(rf"[ \t]*,?[ \t]*{_CREDENTIALS}\b", re.IGNORECASE)
_CREDENTIAL_TAIL: Final = re.compile(rf"[ \t]*,?[ \t]*{_CREDENTIALS}[ \t.]*$", re.IGNORECASE)
# ``... given. Thrill Safe, RN`` at the end of a line: the writer's signature, whatever the
# words (two or three capitalised words or initials after a line or sentence start)
_SIGNED: Final = re.compile(
    r"(?:^|(?<=[.:;!?])[ \t]+)[ \t]*((?:[A-Z][A-Za-z'-]+|[A-Z]\.)(?:[ \t]+(?:[A-Z][A-Za-z'-]+|"
    rf"[A-Z]\.)){{1,2}})[ \t]*,?[ \t]*{_CREDENTIALS}[ \t.]*$",
    re.MULTILINE | re.IGNORECASE,
)
# words that follow a title but are not names (``Dr. aware``, ``MD notified``)
_NOT_AFTER_TITLE: Final = FUNCTION_WORDS | word_set(
    """aware notified paged called informed made here team service order orders note notes
    consult consulted present office said says stated states visit visited came in_to"""
)


def _plain(tok: Token) -> bool:
    """Not a function word nor a clinical word, and long enough to be a name."""
    low = tok.low
    return (
        len(low) > 1
        and low not in FUNCTION_WORDS
        and low not in RELATIONS
        and low not in lexicon.clinical_words()
    )


def _unknown(tok: Token) -> bool:
    """In no English word list: a surname the Census lists lack, or a misspelling."""
    return _plain(tok) and tok.low not in lexicon.common_words()


def _namey(tok: Token, *, loose: bool) -> bool:
    """A word that may be a name. ``loose``: also first names that are English words
    (``bill``, ``carol``) and unknown words."""
    if not _plain(tok):
        return False
    if tok.low in lexicon.unambiguous_names():
        return True
    return loose and (
        tok.low in lexicon.frequent_first_names() or tok.low not in lexicon.common_words()
    )


def _titled(tok: Token, text_upper: bool) -> bool:
    return not text_upper and tok.text[:1].isupper() and not tok.text.isupper()


def _initial(tok: Token) -> bool:
    return len(tok.text) == 1 and tok.text.isalpha()


def _continues(text: str, cur: Token, nxt: Token, upper: bool) -> bool:
    """Does ``nxt`` continue the name that ends with ``cur``?"""
    between = gap(text, cur, nxt)
    if between not in {" ", "-", ". ", "  "} or not _plain(nxt):
        return False
    if nxt.low in lexicon.unambiguous_names():
        return True
    if between == "-" and _namey(nxt, loose=True):
        return True
    after_first = cur.low in lexicon.first_names() or _initial(cur)
    in_lists = nxt.low in lexicon.surnames() or nxt.low in lexicon.first_names()
    if after_first and between != ". " and (in_lists or _unknown(nxt)):
        return (
            not upper
            or _unknown(nxt)
            or nxt.low in lexicon.unambiguous_names()
            or nxt.low in lexicon.frequent_first_names()
        )
    return _titled(cur, upper) and _titled(nxt, upper) and between == " " and in_lists


def _extend(text: str, toks: list[Token], i: int, limit: int = 2) -> int:
    """From a name at ``i``, take following words that continue it; the last index taken."""
    upper = _upper_of(text)
    j = i
    while j + 1 < len(toks) and j - i < limit and _continues(text, toks[j], toks[j + 1], upper):
        j += 1
    return j


def _second_word(text: str, toks: list[Token], k: int) -> bool:
    """Is ``toks[k + 1]`` a second name word after a title's name at ``k``: a word of the
    name lists or of no list that is no English word nor a misspelt one."""
    nxt = toks[k + 1]
    low = nxt.low
    if gap(text, toks[k], nxt) != " " or not _plain(nxt) or len(low) < 3:
        return False
    if low in lexicon.common_words():
        return False
    return low in lexicon.surnames() or low in lexicon.first_names() or not misspelling(low)


def _after_title(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    for i, tok in enumerate(toks[:-1]):
        strong = tok.low in TITLES
        if not (strong or tok.low in WEAK_TITLES):
            continue
        j = i + 1
        between = gap(text, tok, toks[j])
        # ``PCP: John Smith``, ``Attending: Dr. X``: a role as a heading, then the name
        heading = between in {": ", ":  "} and tok.low not in {"ms", "mr", "mrs", "miss"}
        if (
            between not in {" ", "  ", ". ", ".", ".  "}
            and not heading
            and not (tok.dotted and between == "")
        ):
            continue  # (``MS: Rec'd haldol`` is the mental-status heading)
        # initials: Dr. L. Ruuska, Q. Lander
        while j < len(toks) - 1 and _initial(toks[j]) and toks[j].dotted:
            j += 1
        nxt = toks[j]
        # ``Dr. o malley``: an O'/D' surname written without its apostrophe
        if (
            nxt.low in {"o", "d"}
            and j + 1 < len(toks)
            and gap(text, nxt, toks[j + 1]) == " "
            and _plain(toks[j + 1])
            and len(toks[j + 1].low) > 2
        ):
            yield nxt.start, toks[j + 1].end
            continue
        if nxt.low in _NOT_AFTER_TITLE:
            if j > i + 1 and strong and toks[i + 1].text.isupper():
                yield toks[i + 1].start, toks[j - 1].end  # ``Mr. S. is``: the initial alone
            continue
        # ``Mr Block``, ``Dr. Drake``: a capitalised word after a title in a mixed-case note is
        # a name, English word or not (``MS`` without a period is also a diagnosis)
        upper = _upper_of(text)
        capital = (
            (tok.low != "ms" or tok.dotted)
            and not tok.text.isupper()  # ``MR.``, ``MS.``: mitral regurgitation, mental status
            and tok.low not in WEAK_TITLES
            and _titled(nxt, upper)
            and len(nxt.low) > 2
            and _plain(nxt)
        )
        if capital:
            ok = True
        elif tok.low in {"ms", "mr"}:
            # ``Mr. K.``, ``MS K. CARE``: a patient's initial (an undotted one only after Mr)
            initial = _initial(nxt) and (tok.low == "mr" or (nxt.dotted and nxt.text.isupper()))
            ok = _namey(nxt, loose=True) or initial
            # ``mr hatcher``: a surname that is also a word, after a title not in capitals
            # (``MR`` is also mitral regurgitation)
            ok = ok or (
                tok.low == "mr"
                and not tok.text.isupper()
                and len(nxt.low) > 2
                and nxt.low in lexicon.common_surnames()
                and _plain(nxt)
            )
        elif strong:
            ok = len(nxt.low) > 1 and (
                nxt.low not in lexicon.common_words()
                or nxt.low in lexicon.surnames()
                or nxt.low in lexicon.first_names()
            )
        else:
            ok = _namey(nxt, loose=True) and nxt.low not in lexicon.clinical_words()
        if not ok:
            if j > i + 1 and strong and toks[i + 1].text.isupper():
                yield toks[i + 1].start, toks[j - 1].end  # ``MS K. CARE``: the initial alone
            continue
        end = _extend(text, toks, j)
        if end == j and strong and end + 1 < len(toks) and _second_word(text, toks, end):
            end += 1  # ``Dr. shoberg schlarmann``, ``MR. SOUTHERLY CUNNINGTON``
        yield toks[i + 1].start, toks[end].end
        # Drs Camarda and Clifford, Dr. Griffin and Swackhamer
        if end + 2 < len(toks) and toks[end + 1].low == "and" and strong:
            other = toks[end + 2]
            plural = tok.text.lower() in {"drs", "dr's", "drs'"}
            if other.low not in _NOT_AFTER_TITLE and (plural or _namey(other, loose=True)):
                yield other.start, toks[_extend(text, toks, end + 2)].end


def _after_relation(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    for i, tok in enumerate(toks[:-1]):
        if tok.low not in RELATIONS:
            continue
        j = i + 1
        while j < len(toks):
            nxt = toks[j]
            between = gap(text, toks[j - 1], nxt)
            if len(between) > 4 or "\n" in between or between.strip(" ,:-(") not in {"", "&"}:
                break
            if nxt.low in {"and", "is", "named", "name", "in", "law", "step"} and j + 1 < len(toks):
                j += 1
                continue
            if not _namey(nxt, loose=True) or nxt.low in RELATIONS:
                break
            end = _extend(text, toks, j, limit=1)
            yield nxt.start, toks[end].end
            j = end + 1


def _before_relation(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    """``Hank Przybylo (son)``, ``Nancy Cetrone his niece``: the name before the relation."""
    for i, tok in enumerate(toks):
        if tok.low not in RELATIONS or i < 1:
            continue
        j = i - 1
        paren = text[toks[j].end : tok.start].strip().startswith("(")
        if toks[j].low in {"his", "her", "pt", "patient", "pts"} and i >= 2:
            j -= 1
        elif not paren:
            continue
        upper = _upper_of(text)
        end = j
        start = j
        while start >= 0 and end - start < 2 and _namey(toks[start], loose=True):
            if start < end and text[toks[start].end : toks[start + 1].start] != " ":
                break
            start -= 1
        start += 1
        # ``Rose (daughter)``: in parentheses the relation names a capitalised English word too
        if start <= end and any(
            _unknown(t)
            or t.low in lexicon.unambiguous_names()
            or (paren and _titled(t, upper) and t.low in lexicon.first_names())
            for t in toks[start : end + 1]
        ):
            yield toks[start].start, toks[end].end


def _first_before(text: str, toks: list[Token], i: int) -> bool:
    """``Bernard Foley, CRT``: a capitalised first name right before ``toks[i]``, so that a
    clinical word there is a surname."""
    if i == 0 or not toks[i].text[:1].isupper():
        return False
    prev = toks[i - 1]
    return (
        gap(text, prev, toks[i]) == " "
        and prev.low in lexicon.first_names()
        and _plain(prev)
        and prev.text[:1].isupper()
    )


def _before_credential(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    for i, tok in enumerate(toks):
        if not _CREDENTIAL.match(text, tok.end):
            continue
        if not (_namey(tok, loose=True) or _initial(tok) or tok.low in lexicon.surnames()):
            continue
        if not _plain(tok) and not _initial(tok) and not _first_before(text, toks, i):
            continue
        start = i
        while start > 0 and i - start < 3:
            prev = toks[start - 1]
            between = gap(text, prev, toks[start])
            if between not in {" ", "-", ". ", "  ", ""}:
                break
            if not (_namey(prev, loose=True) or _initial(prev)):
                break
            start -= 1
        first = toks[start]
        if start == i and tok.low in lexicon.common_words():
            continue
        if (
            first.low not in lexicon.first_names()
            and not _initial(first)
            and not any(
                _unknown(t) or t.low in lexicon.unambiguous_names() for t in toks[start : i + 1]
            )
        ):
            continue
        yield first.start, tok.end


def _initials(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    """``W. Marotta``, ``d. renna``: an initial, then a name-like word."""
    for i, tok in enumerate(toks[:-1]):
        if not (_initial(tok) and tok.dotted):
            continue
        nxt = toks[i + 1]
        if gap(text, tok, nxt) != ". ":
            continue
        # ``s.``, ``c.``, ``p.`` are also abbreviations: their name must be no English word
        strict = tok.low in {"x", "s", "c", "p", "a", "i", "o"}
        # ``D. Pascal``: a capital initial and a capitalised surname that is also a word
        surname = (
            nxt.low in lexicon.common_surnames()
            and _plain(nxt)
            and tok.text.isupper()
            and _titled(nxt, _upper_of(text))
            and text[max(0, tok.start - 1) : tok.start] in {" ", ""}
        )
        if strict:
            if not (_namey(nxt, loose=False) and len(nxt.low) > 2):
                continue
        elif not (_namey(nxt, loose=True) or surname):
            continue
        if i > 0 and _initial(toks[i - 1]) and toks[i - 1].dotted:
            continue  # p.o., b.i.d.
        yield tok.start, toks[_extend(text, toks, i + 1)].end


def _sign_off(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    """A note that ends with one name word on its own line (``SANDRA``, ``Wojcik``): the
    writer's signature, when the word is in the name lists or in no English list."""
    if not toks or text[toks[-1].end :].strip(" \t\n.,-") != "":
        return
    last = toks[-1]
    if len(toks) > 1 and "\n" not in text[toks[-2].end : last.start]:
        return
    low = last.low
    if len(low) < 3 or not _plain(last) or low in lexicon.common_words():
        return
    if low in lexicon.first_names() or low in lexicon.surnames() or not misspelling(low):
        yield last.start, last.end


def _signed(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    """``Feather Banning RN``, ``Ply Begun, R.N.``: the words before a credential that ends
    a line, when none is a clinical or function word."""
    for m in _SIGNED.finditer(text):
        body = m.group(1)
        if not body[:1].isupper():
            continue  # IGNORECASE is for the credential only
        words = [w.strip(".").lower() for w in body.split()]
        if any(w in FUNCTION_WORDS or w in lexicon.clinical_words() for w in words):
            continue
        if all(len(w) == 1 for w in words):
            continue
        yield m.start(1), m.end(1)


def _signature_lines(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    """A line that is only a first name and a surname (and maybe a credential)."""
    pos = 0
    for line in text.split("\n"):
        if len(line) > 60 or not line.strip():
            pos += len(line) + 1
            continue
        body = _CREDENTIAL_TAIL.sub("", line).strip(" \t,.")
        words = body.replace(".", " ").split()
        if 2 <= len(words) <= 4 and all(
            w.replace("-", "").replace("'", "").isalpha() for w in words
        ):
            first = words[0].lower()
            rest_ok = all(
                w.lower() in lexicon.surnames()
                or w.lower() in lexicon.first_names()
                or (len(w) == 1)
                or w.lower() not in lexicon.common_words()
                for w in words[1:]
            )
            clean = not any(w.lower() in lexicon.clinical_words() for w in words)
            if first in lexicon.first_names() and rest_ok and clean:
                start = pos + line.index(words[0])
                yield start, start + len(body)
        pos += len(line) + 1


_LETTERS: Final = "abcdefghijklmnopqrstuvwxyz"


def misspelling(low: str) -> bool:
    """One letter away (dropped, added, changed or swapped) from an English word of four
    letters or more: ``stabel``, ``bowell``, ``nore`` are typos, not surnames."""
    common = lexicon.common_words()
    for k in range(len(low) + 1):
        head, tail = low[:k], low[k:]
        cands = [head + c + tail for c in _LETTERS]
        if tail:
            cands.append(head + tail[1:])
            cands.extend(head + c + tail[1:] for c in _LETTERS)
        if len(tail) > 1:
            cands.append(head + tail[1] + tail[0] + tail[2:])
        if any(len(w) > 3 and w != low and w in common for w in cands):
            return True
    return False


def _typo(tok: Token, upper: bool) -> bool:
    """A word that looks like a misspelt English word and is no frequent first name, written
    in lower case in a mixed-case note or anyhow in an all-caps note: a name only if some
    context says so."""
    if tok.low in lexicon.frequent_first_names():
        return False
    # in an all-caps note case says nothing: ``REMIAN``, ``BILOUS`` are typos there too
    return (upper or tok.text.islower()) and misspelling(tok.low)


def _rare(tok: Token, upper: bool, lower: bool = False) -> bool:
    """A surname of the 2010 Census only, written as a name (``Piantedosi``) in a mixed-case
    note, or in a note whose case says nothing (all capitals, all lower case), and not a
    misspelt English word."""
    written = _titled(tok, upper) or upper or (lower and tok.text.islower())
    return (
        written
        and len(tok.low) > 3
        and tok.low in lexicon.rare_surnames()
        and tok.low not in lexicon.common_words()
        and not misspelling(tok.low)
    )


def _dictionary(text: str, toks: list[Token]) -> Iterator[tuple[int, int]]:
    unambiguous = lexicon.unambiguous_names()
    firsts = lexicon.first_names()
    upper = _upper_of(text)
    lower = is_lower_text(text)
    for i, tok in enumerate(toks):
        if (
            len(tok.low) > 2
            and _plain(tok)
            and (tok.low in unambiguous or _rare(tok, upper, lower))
        ):
            start = tok.start
            prev = toks[i - 1] if i > 0 else None
            if prev and prev.low in firsts and gap(text, prev, tok) == " " and _plain(prev):
                start = prev.start
            elif _typo(tok, upper):
                continue
            yield start, toks[_extend(text, toks, i)].end


_UPPER_CACHE: dict[int, tuple[str, bool]] = {}


def _upper_of(text: str) -> bool:
    hit = _UPPER_CACHE.get(id(text))
    if hit is not None and hit[0] is text:
        return hit[1]
    value = is_upper_text(text)
    _UPPER_CACHE.clear()
    _UPPER_CACHE[id(text)] = (text, value)
    return value


def context_names(text: str, toks: list[Token]) -> list[PhiSpan]:
    """Names that their context proves: after a title or a relation, before a credential,
    an initial's surname, a signature line."""
    out: list[PhiSpan] = []
    rules = (
        _after_title,
        _after_relation,
        _before_relation,
        _before_credential,
        _initials,
        _signature_lines,
        _sign_off,
        _signed,
    )
    for rule in rules:
        out.extend(PhiSpan(start, end, "NAME") for start, end in rule(text, toks))
    return out


def dictionary_names(text: str, toks: list[Token]) -> list[PhiSpan]:
    """Words of the name lists that are no English word, with the name words around them."""
    return [PhiSpan(start, end, "NAME") for start, end in _dictionary(text, toks)]


def find_names(text: str, toks: list[Token] | None = None) -> Iterator[PhiSpan]:
    """Person names in ``text`` (``toks``: its tokens, if already cut)."""
    if toks is None:
        toks = tokenize(text)
    yield from context_names(text, toks)
    yield from dictionary_names(text, toks)
