"""The word lists that ship in `lexicon/`, loaded once and kept as frozen sets (lower case)."""

from __future__ import annotations

from functools import cache
from importlib import resources


def _read(name: str) -> frozenset[str]:
    text = resources.files(__package__).joinpath("lexicon", name).read_text(encoding="utf-8")
    words: set[str] = set()
    for line in text.splitlines():
        entry = line.split("#", 1)[0].strip().lower()
        if entry:
            words.add(entry)
    return frozenset(words)


@cache
def first_names() -> frozenset[str]:
    return _read("first_names.txt") | _read("extra_names.txt")


@cache
def frequent_first_names() -> frozenset[str]:
    """The Census's 500 most frequent male and female first names, and nicknames."""
    return _read("frequent_first_names.txt") | _read("extra_names.txt")


@cache
def common_surnames() -> frozenset[str]:
    """The 1990 Census and Faker surnames, and the Irish and Italian ones also with their
    apostrophe (the Census writes ``obrien``, notes write ``O'Brien``)."""
    base = _read("surnames.txt")
    marked = {f"{w[0]}'{w[1:]}" for w in base if w[:1] in {"o", "d"} and len(w) > 4}
    return base | frozenset(marked)


@cache
def rare_surnames() -> frozenset[str]:
    """Surnames only the 2010 Census lists (100 bearers or more): many are also abbreviations
    (``dispo``, ``tol``), so they count as names only in a context or when capitalised."""
    return _read("census2010_surnames.txt") - common_surnames()


@cache
def surnames() -> frozenset[str]:
    return common_surnames() | rare_surnames()


@cache
def common_words() -> frozenset[str]:
    """English words and clinical words: a name that is one of them needs context."""
    return _read("common_words.txt") | _read("clinical_words.txt")


@cache
def clinical_words() -> frozenset[str]:
    """Clinical words and abbreviations that are never taken as a name or a place."""
    return _read("clinical_words.txt")


@cache
def places() -> frozenset[str]:
    """US towns (single and multi-word), lower case."""
    return _read("us_places.txt")


@cache
def hospitals() -> frozenset[str]:
    """Hospital names and the words that make one (``sacred heart``, ``mercy``, ``gh``)."""
    return _read("hospitals.txt")


@cache
def unambiguous_names() -> frozenset[str]:
    """Names that are no English or clinical word: taken as a name wherever they stand."""
    return (first_names() | common_surnames()) - common_words()
