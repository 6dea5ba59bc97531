"""Dates (every element but the year is PHI under Safe Harbor; we flag years too) and ages
over 89, found by regular expressions with a little context."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from .spans import PhiSpan

_I: Final = re.IGNORECASE
_MONTH: Final = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|march|apr(?:il)?|june?|july?|aug(?:ust)?"
    r"|sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|december)"
)
# words that are also other words: a month only next to a day or a year
_MONTH_AMBIG: Final = r"(?:may|mar|dec)"
_ANY_MONTH: Final = rf"(?:{_MONTH}|{_MONTH_AMBIG})\.?"
_DAY: Final = r"(?:0?[1-9]|[12]\d|3[01])"
_MON_NUM: Final = r"(?:0?[1-9]|1[0-2])"
_ORD: Final = r"(?:st|nd|rd|th)"
_YEAR: Final = r"(?:'?(?:19|20)\d\d|'?\d\d)"

_NUMERIC_FULL: Final = re.compile(
    rf"(?<![\d/.xX])(?:{_MON_NUM}([/.-]){_DAY}\1(?:(?:19|20)\d\d|\d\d)"
    rf"|(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))(?![\d/%])"
)
_NUMERIC_DOT_YEAR: Final = re.compile(
    rf"(?<![\d/.]){_MON_NUM}/{_DAY}(?:\.\d\d|/{_MON_NUM}/{_DAY})(?![\d/.])"
)
# 7/22, 10/15, 8/87 (month/two-digit year), but not 120/80, 5.8/27, 1/2 NS
_MONTH_DAY: Final = re.compile(
    rf"(?<![\d/.,xX])(?<!\d:)({_MON_NUM})/({_DAY}|[4-9]\d)(?![\d/%]|[:.]\d|\s*(?:mg|mcg|cc|ml|mmhg|x)\b)",
    _I,
)
_VENT_CONTEXT: Final = re.compile(
    r"\b(?:peep|ps|psv|cpap|bipap|ipap|epap|vent|settings?|support|simv|imv|pressure|"
    r"map|bp|sbp|nbp|abp|art|cvp|pap|pa|ratio|grade|strength|ns|x|ie|i:e|tv|rate|"
    r"motor|power|murmur|\+)\s*:?\s*$",
    _I,
)
_VENT_NEAR: Final = re.compile(
    r"\b(?:peep|ps|psv|ips|cpap|bipap|vent|flowby|fio2|simv|imv|a/?c|mask|weaning|"
    r"trial|rsbi)\b",
    _I,
)
_AFTER_VENT: Final = re.compile(r"^\s*(?:peep|bipap|cpap|ps|psv|ips|fio2|%|\d+%)", _I)
_PAIN_NEAR: Final = re.compile(r"pain|\bcp\b|discomfort|ache|scale|c/o|#", _I)
_MURMUR_NEAR: Final = re.compile(r"sem|murmur|hsm|\bsm\b|holosystolic", _I)
_FRACTIONS: Final = frozenset({"1/2", "1/3", "2/3", "1/4", "3/4", "1/8"})
_MONTH_NAME_DATE: Final = re.compile(
    rf"\b{_ANY_MONTH}\s*(?:{_DAY}{_ORD}?\b)(?:\s*,?\s*{_YEAR}\b)?"
    rf"|\b{_DAY}{_ORD}?(?:\s*(?:->|-|to|&|and)\s*{_DAY}{_ORD}?)?\s*(?:of\s+)?{_ANY_MONTH}"
    rf"(?![a-z])(?:\s*,?\s*{_YEAR}\b)?"
    rf"|\b{_ANY_MONTH}\s*,?\s*(?:of\s+)?(?:'\d\d|(?:19|20)\d\d)\b"
    rf"|\b{_MONTH}\b\.?",
    _I,
)
_YEAR4: Final = re.compile(r"(?<![\d.:/-])((?:19[3-9]\d|20[0-3]\d)(?:'?s)?)(?!\d|[.:]\d|%)", _I)
_AND_YEAR: Final = re.compile(r"\s*(?:and|&|,)\s*'?(\d\d)\b(?![\d.%/:])", _I)
_TIME_BEFORE: Final = re.compile(
    r"(?:\bat|@|\bfrom|\bsince|\buntil|\btill|\bby|\bto|-|->|>|\bbetween|\bafter|\bbefore|"
    r"\bapprox\.?|~|\baround|\babout|\bthru|\bthrough|\band|\bof|\bx|\bmn|\bq|\bstarting|"
    r"\bbegin|\bbegun|\bstarted|\bgiven|\bin\s+at|\bfor)\s*$",
    _I,
)
_TIME_AFTER: Final = re.compile(
    r"^\s*(?:-|->|to\b|hrs?\b|h\b|pm\b|am\b|shift|o'?clock|until|till|units?\b|cc|ml|mg|"
    r"mcg|kcal|cal|gm?\b|x\b|/|%|\)|-\s*\d)",
    _I,
)
_APOS_YEAR: Final = re.compile(
    r"(?<![\w'])'(\d\d)(?![\d'%]|\.\d|s\b)|(?<![\d.-])(\d\d)'(?![\d\"sS])"
)
_FEET: Final = re.compile(r"(?:hob|ambulat\w*|walk\w*|feet|ft|up|x|distance)\s*$", _I)
_YEAR_WORD: Final = re.compile(
    r"(?:\bin|\bis|\bof|\byear|\byr|\bduring|\bearly|\blate|\bmid|\bcirca|\bspring|\bsummer|"
    r"\bfall|\bwinter|\bsince|\bmi|\bcabg|\bcva|\bdx|\bdiagnosed|\bsurgery|\brepair|"
    r"\bs/p|\bborn|,|')\s*$",
    _I,
)
_HISTORY_YEAR: Final = re.compile(
    r"\b(?:s/p\s+)?(?:mi|ami|nstemi|stemi|imi|cabg(?:\s*x\s*\d)?|cva|tia|ptca|stents?|redo|avr|mvr|"
    r"repair|chole(?:cystectomy)?|ablation|pacer|pacemaker|aicd|dx'?d|diagnosed|surgery|"
    r"resection|nephrectomy|chemo|xrt|ca|cancer|hip|knee|replacement|dx|aaa|appy|appendectomy|"
    r"hysterectomy|tah|bso|turp|lobectomy|mastectomy|lumpectomy|colectomy|thyroidectomy|"
    r"cardioversion|angioplasty|pci|dvt|stroke|sdh|gib|ugib|lgib|fx|fracture|orif|thr|tkr|"
    r"laminectomy|fusion|cea|endarterectomy|bypass|transplant|amputation|bka|carcinoma|"
    r"lymphoma|leukemia|radiation|chemotherapy|ppm|mvr|hx)"
    r"\s+(?:in\s+)?(\d\d)(?![\d.%/:]|\s*(?:mg|cc|ml|%|min|hr|units|beats|bpm|mm|cm|kg|y|yo|yr)\b)",
    _I,
)
_ORDINAL_DAY: Final = re.compile(
    rf"\b(?:on\s+)?the\s+({_DAY}{_ORD})\b(?!\s+(?:dose|time|day|hour|week|attempt|floor|"
    r"percentile|try|unit|bag|one|set|liter|degree|lumen|intercostal|rib|icu|ventricle|"
    r"toe|finger|digit|cranial|nerve|lead|heart|sound|trimester|grade))",
    _I,
)
_ON_DASH: Final = re.compile(
    rf"\b(?:on|since|until|date|dated)\s*:?\s+({_MON_NUM}-{_DAY})"
    r"(?=\s+(?:for|with|and|at|to)\b|[.,;]|\s*$)",
    _I | re.MULTILINE,
)
_MONTH_YEAR4: Final = re.compile(rf"(?<![\d/.]){_MON_NUM}/(?:19|20)\d\d(?![\d/])")
_ON_ORDINAL: Final = re.compile(
    rf"\b(?:on|since|until|by)\s+({_DAY}{_ORD})\b(?=\s*(?:[.,;)(]|$|of\b|and\b|at\b|in\b))",
    _I | re.MULTILINE,
)
_HOLIDAY: Final = re.compile(
    r"\b(?:christmas|xmas|thanksgiving|easter|halloween|new\s+year'?s(?:\s+(?:eve|day))?|"
    r"independence\s+day|memorial\s+day|labor\s+day|valentine'?s\s+day)\b",
    _I,
)
# ``spring of 2005``, ``end of 1999``: ``of`` that names a year, not a dose (``dose of 2000``)
_PART_OF_YEAR: Final = re.compile(
    r"\b(?:spring|summer|fall|autumn|winter|end|beginning|start|middle|mid|early|late|"
    r"part|rest|year|years|since|until|as)\s+of\s*$",
    _I,
)
_DATE_WORDS: Final = re.compile(
    r"\b(?:on|since|from|until|till|seen|dated?|admit(?:ted)?|adm|admission|discharged|"
    r"through|thru|s/p)\s*:?\s*$",
    _I,
)

_AGE: Final = re.compile(
    r"(?<![\d.])(9\d|1[01]\d)\s*-?\s*(?=(?:yo|y/o|y\.o\.?|yrs?\.?|years?|y)\b(?:\s*-?\s*old)?)"
    r"|\bage[ds]?\s*:?\s*(9\d|1[01]\d)\b"
    r"|(?:^|\n)[ \t]*(9\d|1[01]\d)(?=\s+(?:s/p|m|f|male|female|man|woman|gentleman|lady|w/|with)\b)"
    r"|\b((?:ninety|one\s+hundred)(?:[- ](?:and[- ])?(?:one|two|three|four|five|six|seven|eight|"
    r"nine|ten))?)(?=[- ](?:years?|yr)[- ]?old\b)",
    _I,
)


def _not_a_date(text: str, m: re.Match[str]) -> bool:
    """Ventilator settings (10/5), pain scores (4/10), murmur grades (3/6), ranges (5-6/3)."""
    start, end = m.start(), m.end()
    month, day = int(m.group(1)), int(m.group(2))
    before = text[max(0, start - 40) : start]
    if _VENT_CONTEXT.search(text, max(0, start - 16), start):
        return True
    if day <= 10 and (_VENT_NEAR.search(before) or _AFTER_VENT.match(text, end)):
        return True
    near = text[max(0, start - 25) : end + 12]
    if day == 10 and month <= 10 and _PAIN_NEAR.search(near):
        return True
    if day == 6 and month <= 6 and (before.endswith("+") or _MURMUR_NEAR.search(near)):
        return True
    return bool(re.search(r"\d-$", before)) and not re.search(r"/\d{1,2}\s*-$", before)


def _numeric(text: str) -> Iterator[PhiSpan]:
    for m in _NUMERIC_FULL.finditer(text):
        yield PhiSpan(m.start(), m.end(), "DATE")
    for m in _NUMERIC_DOT_YEAR.finditer(text):
        yield PhiSpan(m.start(), m.end(), "DATE")
    for m in _MONTH_DAY.finditer(text):
        if m.group(0) in _FRACTIONS:
            dated = _DATE_WORDS.search(text, max(0, m.start() - 14), m.start())
            if not dated:
                continue
        elif _not_a_date(text, m):
            continue
        yield PhiSpan(m.start(), m.end(), "DATE")
    for m in _ON_DASH.finditer(text):
        yield PhiSpan(m.start(1), m.end(1), "DATE")
    for m in _MONTH_YEAR4.finditer(text):
        yield PhiSpan(m.start(), m.end(), "DATE")


def _years(text: str) -> Iterator[PhiSpan]:
    for m in _YEAR4.finditer(text):
        before = text[max(0, m.start() - 14) : m.start()]
        after = text[m.end() : m.end() + 12]
        # ``since 1998``: no time of day has 98 minutes, so only a unit after it says no
        clock = int(m.group(1)[2:4]) < 60
        timed = clock and _TIME_BEFORE.search(before) and not _PART_OF_YEAR.search(before)
        if timed or _TIME_AFTER.match(after):
            continue
        if m.group(1)[:2] == "20" and int(m.group(1)[2:4]) < 60 and not _YEAR_WORD.search(before):
            continue  # 2000-2059 is also a time of day
        yield PhiSpan(m.start(1), m.end(1), "DATE")
    for m in _APOS_YEAR.finditer(text):
        g = 1 if m.group(1) else 2
        if g == 2 and _FEET.search(text, max(0, m.start() - 14), m.start()):
            continue
        yield PhiSpan(m.start(g), m.end(g), "DATE")
    for m in _HISTORY_YEAR.finditer(text):
        yield PhiSpan(m.start(1), m.end(1), "DATE")
        more = _AND_YEAR.match(text, m.end())
        if more:
            yield PhiSpan(more.start(1), more.end(1), "DATE")


def find_dates(text: str) -> Iterator[PhiSpan]:
    """Numeric dates, dates with month names, years, and day ordinals (``the 11th``)."""
    yield from _numeric(text)
    for m in _MONTH_NAME_DATE.finditer(text):
        yield PhiSpan(m.start(), m.end(), "DATE")
    yield from _years(text)
    for rx in (_ORDINAL_DAY, _ON_ORDINAL):
        for m in rx.finditer(text):
            yield PhiSpan(m.start(1), m.end(1), "DATE")
    for m in _HOLIDAY.finditer(text):
        yield PhiSpan(m.start(), m.end(), "DATE")


def find_ages(text: str) -> Iterator[PhiSpan]:
    """Ages over 89 (Safe Harbor keeps younger ages)."""
    for m in _AGE.finditer(text):
        g = next(i for i in (1, 2, 3, 4) if m.group(i))
        yield PhiSpan(m.start(g), m.end(g), "AGE")
