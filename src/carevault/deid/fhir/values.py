"""The original identifying values of a partition's patients, and a matcher for them.

Collected from the resources before they are de-identified: names (the patient's, their
contacts', a mother's maiden name), identifiers (every resource's, device serials and UDIs,
the original resource ids), telecom, street lines, city and full ZIP, and every full date.
The matcher looks for them token by token (case-folded, so "ROW 12" is not "12 Row" but
"12 row" is), digits also without their punctuation, and dates in ISO, US and spelled-out
forms: linear in the text, whatever the number of values. It reports kinds and spans only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

_TOKEN = re.compile(r"[A-Za-z0-9]+")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_US = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})\b")
_SPELLED = re.compile(
    r"\b(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?"
    r"\s+(\d{4})\b",
    re.IGNORECASE,
)
_DAY_FIRST = re.compile(
    r"\b(\d{1,2})(?:st|nd|rd|th)?\s+(jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?"
    r"\s+(\d{4})\b",
    re.IGNORECASE,
)
_YEARISH = re.compile(r"\d{4}")
MIN_NAME_TOKEN = 3
MIN_IDENTIFIER_CHARS = 5
MIN_PHONE_DIGITS = 7
_NAME_URLS = ("mothersMaidenName",)


@dataclass(frozen=True)
class Hit:
    start: int
    end: int
    kind: str


def _tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text)]


def _canonical(year: str, month: str, day: str) -> str | None:
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def dates_in(text: str) -> Iterator[tuple[int, int, str]]:
    """(start, end, YYYY-MM-DD) of every full date written in a common form."""
    for m in _ISO.finditer(text):
        if (d := _canonical(m[1], m[2], m[3])) is not None:
            yield m.start(), m.end(), d
    for m in _US.finditer(text):
        if (d := _canonical(m[3], m[1], m[2])) is not None:
            yield m.start(), m.end(), d
    for m in _SPELLED.finditer(text):
        month = str(_MONTHS.index(m[1].lower()[:3]) + 1)
        if (d := _canonical(m[3], month, m[2])) is not None:
            yield m.start(), m.end(), d
    for m in _DAY_FIRST.finditer(text):
        month = str(_MONTHS.index(m[2].lower()[:3]) + 1)
        if (d := _canonical(m[3], month, m[1])) is not None:
            yield m.start(), m.end(), d


@dataclass
class KnownValues:
    """Token sequences and full dates to look for, each with its kind."""

    sequences: dict[tuple[str, ...], str] = field(default_factory=dict)
    dates: dict[str, str] = field(default_factory=dict)
    _first: dict[str, list[int]] = field(default_factory=dict)
    """First token -> the lengths of the sequences it starts, longest first."""

    def __len__(self) -> int:
        return len(self.sequences) + len(self.dates)

    def add(self, kind: str, value: str) -> None:
        tokens = tuple(_tokens(value))
        if not tokens:
            return
        if kind == "date":
            if len(value) >= 10 and (d := _canonical(value[:4], value[5:7], value[8:10])):
                self.dates[d] = kind
            return
        digits = "".join(ch for ch in value if ch.isdigit())
        if kind == "name" and len(tokens) == 1 and len(tokens[0]) < MIN_NAME_TOKEN:
            return
        if kind == "identifier" and sum(len(t) for t in tokens) < MIN_IDENTIFIER_CHARS:
            return
        if kind in ("street", "geography") and len(tokens) == 1 and len(tokens[0]) < 3:
            return  # "12" or "NY" alone would match everywhere: not a usable value
        self._put(tokens[:8], kind)
        if (
            kind in ("identifier", "telecom")
            and len(tokens) > 1
            and len(digits) >= (MIN_PHONE_DIGITS if kind == "telecom" else MIN_IDENTIFIER_CHARS)
            and digits == "".join(tokens)
        ):
            self._put((digits,), kind)  # "555-810-7203" also as "5558107203"
        if kind == "telecom" and len(digits) == 11 and digits.startswith("1"):
            self._put((digits[1:],), kind)

    def _put(self, tokens: tuple[str, ...], kind: str) -> None:
        if tokens in self.sequences:
            return
        self.sequences[tokens] = kind
        lengths = self._first.setdefault(tokens[0], [])
        if len(tokens) not in lengths:
            lengths.append(len(tokens))
            lengths.sort(reverse=True)

    def find(self, text: str, kinds: frozenset[str] | None = None) -> list[Hit]:
        """Every occurrence of a known value in the text (optionally of some kinds only)."""
        hits: list[Hit] = []
        if self.sequences:
            # spans only when something matched (rare); lower() per token keeps the indexes
            words = [w.lower() for w in _TOKEN.findall(text)]
            matches: list[re.Match[str]] | None = None
            first = self._first
            for i, word in enumerate(words):
                for n in first.get(word, ()):
                    if i + n > len(words):
                        continue
                    kind = self.sequences.get(tuple(words[i : i + n]))
                    if kind is not None and (kinds is None or kind in kinds):
                        matches = matches or list(_TOKEN.finditer(text))
                        hits.append(Hit(matches[i].start(), matches[i + n - 1].end(), kind))
                        break
        dated = self.dates and (kinds is None or "date" in kinds)
        if dated and len(text) > 7 and _YEARISH.search(text):
            hits += [Hit(s, e, "date") for s, e, d in dates_in(text) if d in self.dates]
        return hits


def collect(values: KnownValues, body: dict[str, Any]) -> None:
    """Add one original resource's identifying values."""
    rtype, rid = body.get("resourceType"), body.get("id")
    if isinstance(rid, str):
        values.add("identifier", rid)
    if rtype == "Patient":
        _person(values, body)
        for contact in body.get("contact", []) or []:
            if isinstance(contact, dict):
                _person(values, contact)
        for ext in body.get("extension", []) or []:
            if not isinstance(ext, dict):
                continue
            url = str(ext.get("url", ""))
            if any(u in url for u in _NAME_URLS) and isinstance(ext.get("valueString"), str):
                values.add("name", ext["valueString"])
            if isinstance(ext.get("valueAddress"), dict):
                _address(values, ext["valueAddress"])
    for key, value in _walk(body):
        if key in ("identifier", "udiCarrier"):
            for item in value if isinstance(value, list) else [value]:
                for leaf in _strings(item, ("value", "deviceIdentifier", "carrierHRF")):
                    values.add("identifier", leaf)
        elif key in ("serialNumber", "lotNumber", "distinctIdentifier", "uid", "accession"):
            for leaf in _strings(value, None):
                values.add("identifier", leaf)
        elif isinstance(value, str) and len(value) >= 10 and _ISO.match(value):
            values.add("date", value)


def _person(values: KnownValues, person: dict[str, Any]) -> None:
    names = person.get("name", [])
    for name in names if isinstance(names, list) else [names]:
        if not isinstance(name, dict):
            continue
        given = name.get("given") or []
        parts = [name.get("family"), *([given] if isinstance(given, str) else given)]
        for part in [p for p in parts if isinstance(p, str)]:
            values.add("name", part)
            for word in part.split():
                values.add("name", word)
        if isinstance(name.get("text"), str):
            values.add("name", name["text"])
    telecoms = person.get("telecom") or []
    for telecom in telecoms if isinstance(telecoms, list) else [telecoms]:
        if isinstance(telecom, dict) and isinstance(telecom.get("value"), str):
            values.add("telecom", telecom["value"])
    addresses = person.get("address", [])
    for address in addresses if isinstance(addresses, list) else [addresses]:
        if isinstance(address, dict):
            _address(values, address)


def _address(values: KnownValues, address: dict[str, Any]) -> None:
    lines = address.get("line") or []
    for line in [lines] if isinstance(lines, str) else lines:
        if isinstance(line, str):
            values.add("street", line)
    if isinstance(address.get("city"), str):
        values.add("geography", address["city"])
    postal = str(address.get("postalCode", ""))
    if len(postal) >= 5 and postal[:5].isdigit():
        values.add("geography", postal[:5])


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _strings(node: Any, keys: Iterable[str] | None) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key in keys or node.keys():
            if isinstance(node.get(key), str):
                yield node[key]
