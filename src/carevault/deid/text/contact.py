"""Telephone and pager numbers, emails, URLs and IP addresses, and identifying numbers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from .spans import PhiSpan
from .tokens import word_set

_I: Final = re.IGNORECASE

_EMAIL: Final = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){0,8}\.[A-Za-z]{2,24}"
    r"(?![\w-])"
)
_URL: Final = re.compile(
    r"\b(?:https?|ftp)://[^\s<>\"')\]]+"
    r"|\bwww\.[^\s<>\"')\]]+"
    r"|\b[A-Za-z0-9][A-Za-z0-9-]{0,62}(?:\.[A-Za-z0-9][A-Za-z0-9-]{0,62}){1,8}"
    r"(?:/[^\s<>\"')\]]*)?",
    _I,
)
_TLDS: Final = word_set("com org net edu gov io info biz us uk ca de fr mil int co me")
_IP: Final = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)

# North-American numbers: (301) 555-1234, 301-555-1234, 301.555.1234, +1 301 555 1234
_PHONE10: Final = re.compile(
    r"(?<!\d)(?<!\d-)(?:\+?1[\s.-]?)?\(?\d{3}\)?[\s./-]{0,3}\d{3}[\s.-]?\d{4}(?![\d])"
    r"|\(\s*\d{3}[\s-]+\d{3}[\s-]+\d{4,5}\s*\)"
)
_PHONE_WORD: Final = (
    r"(?:pager|pgr|pg|beeper|beep|bpr|phone|ph|tel|telephone|cell|cellphone|mobile|fax|ext|"
    r"extension|page|paged|call|contact|reached|number)"
)
_PHONE_WEAK: Final = r"(?:home|work|office|w|h|c|day|night|at)"
_KEYED_PHONE: Final = re.compile(
    rf"\b{_PHONE_WORD}\.?\s*(?:number|no\.?|num|#|at|is|:)*\s*#?\s*:?\s*"
    r"(\(?\d[\d\s().-]{2,14}\d)(?!\d|\.\d|\s*(?:mg|mcg|cc|ml|%|am|pm|hrs?|min|units)\b)",
    _I,
)
_WEAK_PHONE: Final = re.compile(
    rf"\b{_PHONE_WEAK}\s*(?:number|no\.?|#|:)+\s*(\(?\d[\d\s().-]{{5,14}}\d)(?![\d.])", _I
)
_EXTENSION: Final = re.compile(
    r"\bx\s?(\d-\d{4})(?![\d.])"
    # ``555-1234 x1234``, ``ext. 12``: an extension after a number, or ``x54321`` alone
    r"|(?<=\d{3}[-.]\d{4})[ \t]*(?:x|ext\.?|extension)[ \t]*(\d{1,5})\b"
    r"|\b(?:ext\.?|extension)[ \t]*#?[ \t]*(\d{2,5})\b"
    r"|\bx(\d{4,5})\b(?![ \t]*(?:mg|mcg|cc|ml|units?|hrs?|days?|min)\b)",
    _I,
)
_FAR_PHONE: Final = re.compile(
    r"\b(?:pager|pgr|beeper|beep|page|paged|call|contact|reach|reached|cell|phone)"
    r"(?:[ \t]+[A-Za-z]{1,8}){1,3}[ \t]*(?:at|is|#|:)[ \t]*#?[ \t]*(\d{5,}|\d-\d{4})(?![\d.])",
    _I,
)
_SEVEN: Final = re.compile(
    r"(?<![\d.-])[2-9]\d{2}[-.]\d{4}(?![\d-]|\.\d|\s*(?:cc|ml|mg|kcal|cal)\b)", _I
)
# ``#54321``, ``x 4-1234``, ``4-1234``: a hospital's five-digit pager or extension forms
_HASH_FIVE: Final = re.compile(r"(?<![\w#])#[ \t]?(\d{5})(?![\d.])")
_DASHED_EXT: Final = re.compile(
    r"(?<![\d/.:-])(\d-\d{4})(?![\d.,/-]|\s*(?:mg|mcg|cc|ml|units?|u|iu|kcal|cal|gm?|%)\b)", _I
)
_X_SPACE: Final = re.compile(
    r"\bx[ \t](\d{4,5})\b(?![ \t]*(?:mg|mcg|cc|ml|units?|hrs?|days?|min|kcal|cal|gm?)\b)", _I
)

# ``PH 7.44-7.46``: a decimal is a measurement, not a phone number's group
_DECIMAL: Final = re.compile(r"\d\.\d{1,2}(?!\d)")

# ``TV 900-1000``, ``voiding 575-1000``: after a measurement word, a range (see `_range`)
_MEASURE_BEFORE: Final = re.compile(
    r"\b(?:svr|pvr|tv|vt|is|uo|u/o|uop|voiding|volumes?|output|intake|in\s+the|to|from|"
    r"between|range[sd]?|ranging)\s*:?\s*$",
    _I,
)
_NEAR_PHONE: Final = re.compile(rf"\b(?:{_PHONE_WORD}|home|work|office|h|w|c)\b", _I)
_SSN: Final = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_ID_WORD: Final = (
    r"(?:mrn|mr\s*#|mr\s+no|medical\s+record(?:\s+(?:number|no))?|unit\s+(?:number|no)|"
    r"record\s+(?:number|no|#)|acct|account|ssn|social\s+security(?:\s+number)?|policy|"
    r"member\s+id|subscriber|id|ref|reference|case|claim|licen[cs]e|lic|dea|npi|serial|"
    r"s/n|sn|order|confirmation|accession|requisition|specimen|tracking|plate|vin)"
)
_KEYED_ID: Final = re.compile(
    rf"\b{_ID_WORD}\s*(?:number|no\.?|num|#|:)*\s*#?\s*:?\s*"
    r"((?=[A-Za-z-]*\d)[A-Za-z0-9][A-Za-z0-9-]{2,})",
    _I,
)
_LONG_NUMBER: Final = re.compile(r"(?<![\d.,/])\d{7,}(?![\d.,/])")


def _range(found: str) -> bool:
    """``954-1183``, ``900-1000``: a rising range or round numbers, not a phone number (only
    asked after a measurement word; a number with a phone word near is taken whatever its
    digits)."""
    low, high = (int(x) for x in found.split("-"))
    return found.endswith("00") or 0 < high - low <= 400


def find_contacts(text: str) -> Iterator[PhiSpan]:
    """Emails, URLs, IP addresses and telephone/pager numbers."""
    for m in _EMAIL.finditer(text):
        yield PhiSpan(m.start(), m.end(), "EMAIL")
    for m in _URL.finditer(text):
        found = m.group(0)
        if "://" not in found and not found.lower().startswith("www."):
            host = found.split("/", 1)[0]
            if host.rsplit(".", 1)[-1].lower() not in _TLDS or host[:1].isdigit():
                continue
        end = m.start() + len(found.rstrip(".,;:!?"))
        if "@" not in text[max(0, m.start() - 1) : m.start()]:
            yield PhiSpan(m.start(), end, "URL")
    for m in _IP.finditer(text):
        yield PhiSpan(m.start(), m.end(), "URL")
    for m in _PHONE10.finditer(text):
        end = m.end() + (text[m.start()] == "(" and text[m.end() : m.end() + 1] == ")")
        yield PhiSpan(m.start(), end, "PHONE")
    for rx in (_KEYED_PHONE, _WEAK_PHONE):
        for m in rx.finditer(text):
            digits = sum(ch.isdigit() for ch in m.group(1))
            if digits >= 4 and not _DECIMAL.search(m.group(1)):
                yield PhiSpan(m.start(1), m.end(1), "PHONE")
    for m in _FAR_PHONE.finditer(text):
        yield PhiSpan(m.start(1), m.end(1), "PHONE")
    for m in _EXTENSION.finditer(text):
        g = next(i for i in (1, 2, 3, 4) if m.group(i))
        yield PhiSpan(m.start(g), m.end(g), "PHONE")
    for m in _SEVEN.finditer(text):
        keyed = _NEAR_PHONE.search(text, max(0, m.start() - 24), m.start())
        measured = _MEASURE_BEFORE.search(text, max(0, m.start() - 16), m.start())
        if keyed or not measured or "-" not in m.group(0) or not _range(m.group(0)):
            yield PhiSpan(m.start(), m.end(), "PHONE")
    for rx in (_HASH_FIVE, _DASHED_EXT, _X_SPACE):
        for m in rx.finditer(text):
            yield PhiSpan(m.start(1), m.end(1), "PHONE")


def find_ids(text: str) -> Iterator[PhiSpan]:
    """Social security, record, account, licence and other identifying numbers."""
    for m in _SSN.finditer(text):
        yield PhiSpan(m.start(), m.end(), "ID")
    for m in _KEYED_ID.finditer(text):
        yield PhiSpan(m.start(1), m.end(1), "ID")
    for m in _LONG_NUMBER.finditer(text):
        yield PhiSpan(m.start(), m.end(), "ID")
