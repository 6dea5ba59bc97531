"""`scrub_text`: replace PHI spans by a tag or by a deterministic, realistic surrogate.

A surrogate is chosen from HMAC-SHA256(key, category|original), so within one key (one
patient's secret) the same original always gives the same surrogate, and another key gives
another. Choices per category:

- NAME: Census first names / surnames (a first name for a first name), case kept;
- DATE: Safe Harbor keeps the year only: years stay (four digits, ``'92``, the last part of
  ``7/22/92``, a two-digit number above 31); day and month are replaced by surrogates in the
  same format
  (``7/22`` -> ``3/9``, ``July 29th`` -> ``March 4th``), so the text still reads as a date;
- AGE (over 89): ``90+``;
- PHONE, ID, OTHER: every digit and letter replaced, the format (separators) kept; phone
  exchanges become 555;
- EMAIL ``user…@example.org``, URL ``https://example.org/…``;
- LOCATION: a US town from the shipped list; HOSPITAL: a fictitious hospital name.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from functools import cache
from typing import Final, Literal

from . import lexicon
from .detect import find_phi
from .learned import NoteTagger
from .spans import PhiSpan

_HOSPITALS: Final = (
    "Riverside General",
    "Lakeview Medical Center",
    "Hillcrest Hospital",
    "Maplewood Memorial",
    "Cedar Valley Hospital",
    "Oak Ridge Medical Center",
    "Brookside Hospital",
    "Pinecrest Regional",
)
_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_YEAR4: Final = re.compile(r"(?:19|20)\d\d")


class _Rng:
    """Deterministic choices drawn from one HMAC digest (extended by counter when needed)."""

    def __init__(self, key: bytes, category: str, original: str) -> None:
        self._seed = hmac.new(key, f"{category}|{original}".encode(), hashlib.sha256).digest()
        self._pool = b""
        self._n = 0

    def below(self, n: int) -> int:
        if len(self._pool) < 4:
            self._pool += hashlib.sha256(self._seed + self._n.to_bytes(4, "big")).digest()
            self._n += 1
        value, self._pool = int.from_bytes(self._pool[:4], "big"), self._pool[4:]
        return value % n


@cache
def _sorted(which: str) -> tuple[str, ...]:
    source = {"first": lexicon.first_names, "last": lexicon.surnames, "town": lexicon.places}
    words = source[which]() - lexicon.common_words()
    return tuple(sorted(w for w in words if w.isalpha() and len(w) > 2))


def _case_like(model: str, word: str) -> str:
    if model.isupper() and len(model) > 1:
        return word.upper()
    if model.islower():
        return word.lower()
    return " ".join(w.capitalize() for w in word.split(" "))


def _name(rng: _Rng, original: str) -> str:
    parts = original.split()
    out = []
    for i, part in enumerate(parts):
        low = part.strip(".,").lower()
        if len(low) <= 1:
            out.append(_case_like(part, chr(ord("a") + rng.below(26))) + part[1:])
            continue
        first = (i == 0 and len(parts) > 1) or (
            len(parts) == 1 and low in lexicon.first_names() and low not in lexicon.surnames()
        )
        pool = _sorted("first" if first else "last")
        out.append(_case_like(part, pool[rng.below(len(pool))]))
    return " ".join(out)


def _digits(rng: _Rng, original: str, *, phone: bool = False) -> str:
    out = []
    for ch in original:
        if ch.isdigit():
            out.append(str(rng.below(10)))
        elif ch.isalpha():
            letter = chr(ord("a") + rng.below(26))
            out.append(letter.upper() if ch.isupper() else letter)
        else:
            out.append(ch)
    text = "".join(out)
    if phone:
        groups = re.findall(r"\d+", text)
        if len(groups) >= 2 and len(groups[-2]) == 3:
            idx = text.rfind(groups[-2], 0, text.rfind(groups[-1]))
            text = text[:idx] + "555" + text[idx + 3 :]
    return text


def _date(rng: _Rng, original: str) -> str:
    """Keep the year (four digits, a two-digit number above 31, a lone two-digit number, the
    third part of 7/22/92); replace day and month by surrogates in the same format."""
    stripped = original.strip("'sS")
    if _YEAR4.fullmatch(stripped) or re.fullmatch(r"\d\d", stripped):
        return original
    groups = list(re.finditer(r"\d+", original))
    keep = {len(groups) - 1} if len(groups) == 3 and len(groups[2].group(0)) == 2 else set()

    def number(m: re.Match[str]) -> str:
        s = m.group(0)
        index = next(i for i, g in enumerate(groups) if g.start() == m.start())
        if _YEAR4.fullmatch(s) or index in keep or (len(s) == 2 and int(s) > 31):
            return s
        value = 1 + rng.below(12 if int(s) <= 12 else 28)
        return str(value).zfill(2) if len(s) == 2 and s.startswith("0") else str(value)

    def month(m: re.Match[str]) -> str:
        word = m.group(0)
        if word.lower() in {"of", "and", "to"}:
            return word
        chosen = _MONTHS[rng.below(12)]
        full = word.lower() in {name.lower() for name in _MONTHS}
        return _case_like(word, chosen if full else chosen[:3])

    text = re.sub(r"\d+", number, original)
    text = re.sub(r"[A-Za-z]{3,}", month, text)
    return re.sub(r"(\d+)(st|nd|rd|th)\b", _ordinal, text, flags=re.IGNORECASE)


def _ordinal(m: re.Match[str]) -> str:
    n = int(m.group(1))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return m.group(1) + (suffix.upper() if m.group(2).isupper() else suffix)


def surrogate(category: str, original: str, key: bytes) -> str:
    """The surrogate for one original value of one category under ``key``."""
    rng = _Rng(key, category, original)
    if category == "NAME":
        return _name(rng, original)
    if category == "DATE":
        return _date(rng, original)
    if category == "AGE":
        return "90+"
    if category == "PHONE":
        return _digits(rng, original, phone=True)
    if category == "EMAIL":
        return f"user{rng.below(10**6):06d}@example.org"
    if category == "URL":
        return f"https://example.org/{rng.below(16**8):08x}"
    if category == "LOCATION":
        towns = _sorted("town")
        return _case_like(original, towns[rng.below(len(towns))])
    if category == "HOSPITAL":
        return _case_like(original, _HOSPITALS[rng.below(len(_HOSPITALS))])
    return _digits(rng, original)


STYLES: Final = ("tag", "surrogate")
"""How a PHI span is replaced: by its category tag, or by a realistic surrogate."""


def scrub_text(
    text: str,
    *,
    style: Literal["tag", "surrogate"] = "tag",
    key: bytes = b"",
    tagger: NoteTagger | None = None,
) -> tuple[str, list[PhiSpan]]:
    """``text`` with every PHI span replaced, and the spans (offsets into the input);
    ``tagger``: a trained notes model whose names and places count too."""
    if style not in STYLES:
        raise ValueError(f"unknown scrub style {style!r}")
    spans = find_phi(text, tagger)
    out: list[str] = []
    pos = 0
    for span in spans:
        out.append(text[pos : span.start])
        original = text[span.start : span.end]
        if style == "tag":
            out.append(f"[{span.category}]")
        else:
            out.append(surrogate(span.category, original, key))
        pos = span.end
    out.append(text[pos:])
    return "".join(out), spans
