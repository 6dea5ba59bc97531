"""Properties of the free-text scrubber: generated phones, dates and emails are always caught,
surrogates are consistent within a key, and no input (odd encodings, control characters, the
empty string) makes it fail."""

from __future__ import annotations

import itertools
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carevault.deid.text import CATEGORIES, find_phi, lexicon, scrub_text
from carevault.deid.text.names import RELATIONS, misspelling
from carevault.deid.text.people import _NOT_NAME, _NOT_RELATIVE_NAME
from carevault.deid.text.scoring import covered
from carevault.deid.text.surrogate import surrogate
from carevault.deid.text.tokens import FUNCTION_WORDS

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_MONTHS = ["January", "February", "March", "April", "June", "July", "August", "September"]
_MONTHS += ["October", "November", "December", "Jan", "Feb", "Apr", "Aug", "Sept", "Oct", "Nov"]


def _covered(text: str, start: int, end: int) -> bool:
    return covered(start, end, find_phi(text))


@st.composite
def phones(draw: st.DrawFn) -> str:
    area = draw(st.integers(200, 999))
    exchange = draw(st.integers(200, 999))
    line = draw(st.integers(0, 9999))
    fmt = draw(
        st.sampled_from(
            [
                "({a}) {e}-{l}",
                "{a}-{e}-{l}",
                "{a}.{e}.{l}",
                "{a} {e} {l}",
                "+1 {a} {e} {l}",
                "{a}{e}{l}",
                "{e}-{l}",
            ]
        )
    )
    return fmt.format(a=area, e=exchange, l=f"{line:04d}")


@st.composite
def dates(draw: st.DrawFn) -> str:
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    year = draw(st.integers(1930, 2029))
    name = draw(st.sampled_from(_MONTHS))
    fmt = draw(
        st.sampled_from(
            [
                "{m}/{d}/{y}",
                "{m:02d}/{d:02d}/{yy:02d}",
                "{m}-{d}-{y}",
                "{y}-{m:02d}-{d:02d}",
                "{n} {d}, {y}",
                "{d} {n} {y}",
                "{n} {d}",
                "{m}/{d}",
                "{n} {d}th",
                "{m}/{y}",
            ]
        )
    )
    if fmt == "{m}/{d}" and day <= 8 and month < day:
        day += 10  # 1/2, 2/3, 3/4 ... read as fractions (documented): not generated as dates
    return fmt.format(m=month, d=day, y=year, yy=year % 100, n=name)


emails = st.from_regex(
    r"\A[a-z][a-z0-9_+-]{0,12}(\.[a-z0-9]{1,6})?@[a-z][a-z0-9-]{0,10}[a-z0-9]\.(com|org|net|edu)\Z"
)
contexts = st.sampled_from(
    ["call {} today", "Pt seen on {} in clinic.", "{}", "NOTE:\n{}\n", "(see {})", "x {} y"]
)


@FAST
@given(phones(), contexts)
def test_generated_phone_numbers_are_caught(phone: str, context: str) -> None:
    text = context.format(phone)
    start = text.index(phone)
    assert _covered(text, start, start + len(phone)), (text, find_phi(text))


@FAST
@given(dates(), st.sampled_from(["admitted {} with CP", "seen on {}.", "CABG {}, stable", "{}"]))
def test_generated_dates_are_caught(date: str, context: str) -> None:
    text = context.format(date)
    start = text.index(date)
    assert _covered(text, start, start + len(date)), (text, find_phi(text))


@FAST
@given(emails, contexts)
def test_generated_emails_are_caught(email: str, context: str) -> None:
    text = context.format(email)
    start = text.index(email)
    assert _covered(text, start, start + len(email)), (text, find_phi(text))
    assert email not in scrub_text(text)[0]


@FAST
@given(st.text(max_size=300))
def test_any_text_gives_sorted_disjoint_in_bounds_spans(text: str) -> None:
    spans = find_phi(text)
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert all(s.category in CATEGORIES for s in spans)
    scrubbed, again = scrub_text(text, style="surrogate", key=b"k")
    assert again == spans
    assert isinstance(scrubbed, str)


def test_empty_and_blank_text() -> None:
    assert find_phi("") == []
    assert scrub_text("") == ("", [])
    assert scrub_text("   \n\t ", style="surrogate", key=b"k") == ("   \n\t ", [])


def test_odd_encodings_and_control_characters() -> None:
    raw = "Dr. M\u00fcller saw Zo\u00eb on 7/22.\x00\x1b[31m call 410-322-1419\r\n\ufeff\u202e"
    text = (
        raw + "caf\u00e9 \U0001f600 " + b"\xff\xfe MRN 1234567".decode("utf-8", "surrogateescape")
    )
    out, spans = scrub_text(text)
    assert "410-322-1419" not in out
    assert "7/22" not in out
    assert "1234567" not in out
    assert all(0 <= s.start < s.end <= len(text) for s in spans)
    surrogate_out, _ = scrub_text(text, style="surrogate", key=b"patient")
    assert "410-322-1419" not in surrogate_out


def test_surrogates_are_consistent_within_a_key_and_differ_across_keys() -> None:
    note_1 = "Dr. Healey saw Mr. Nicholson on 7/22; call 410-322-1419. Lives in Catonsville."
    note_2 = "Mr. Nicholson is better; Dr. Healey aware. Phone 410-322-1419."
    a1, spans = scrub_text(note_1, style="surrogate", key=b"patient-a")
    a2, _ = scrub_text(note_2, style="surrogate", key=b"patient-a")
    b1, _ = scrub_text(note_1, style="surrogate", key=b"patient-b")
    assert a1 == scrub_text(note_1, style="surrogate", key=b"patient-a")[0]
    for original in ("Healey", "Nicholson", "410-322-1419", "Catonsville", "7/22"):
        assert original not in a1
        assert original not in b1
    healey_a = surrogate("NAME", "Healey", b"patient-a")
    assert healey_a in a1
    assert healey_a in a2
    assert surrogate("PHONE", "410-322-1419", b"patient-a") in a2
    originals = ["Healey", "Nicholson", "Smith", "Jones", "Vasquez", "Rizzo"]
    assert [surrogate("NAME", o, b"patient-a") for o in originals] != [
        surrogate("NAME", o, b"patient-b") for o in originals
    ]
    assert a1 != b1
    assert [s.category for s in spans][:2] == ["NAME", "NAME"]


def test_surrogates_look_like_what_they_replace() -> None:
    key = b"k"
    assert re.fullmatch(r"\(\d{3}\) 555-\d{4}", surrogate("PHONE", "(617) 333-1234", key))
    assert re.fullmatch(r"user\d{6}@example\.org", surrogate("EMAIL", "a@b.com", key))
    assert surrogate("AGE", "95", key) == "90+"
    assert surrogate("DATE", "1992", key) == "1992"  # Safe Harbor keeps the year
    shifted = surrogate("DATE", "7/22", key)
    assert re.fullmatch(r"\d{1,2}/\d{1,2}", shifted)
    assert surrogate("NAME", "HEALEY", key).isupper()
    assert surrogate("NAME", "healey", key).islower()
    assert re.fullmatch(r"[A-Z][a-z]+ \d{1,2}(st|nd|rd|th)", surrogate("DATE", "July 29th", key))
    assert surrogate("DATE", "10/13/82", key).endswith("/82")  # the year is kept
    assert surrogate("DATE", "92", key) == "92"
    assert scrub_text("MI '92, CABG 2004", style="surrogate", key=key)[0] == "MI '92, CABG 2004"


def test_pathological_inputs_stay_linear() -> None:
    """Long runs that make naive regular expressions backtrack (a dashed digit run once took
    10 s for 20,000 characters)."""
    import time

    for text in ("1-" * 10000, "a." * 10000, "a@" * 10000, "Dr. " * 5000, "x1" * 10000):
        t0 = time.perf_counter()
        find_phi(text)
        assert time.perf_counter() - t0 < 3.0, text[:10]


# Made-up words (no English, clinical or name-list word): the context rules must take them
# as names whatever they are, so the property does not depend on the word lists.
_MADE_UP = st.from_regex(r"\A[A-Z][a-z]{3,8}\Z").filter(
    lambda w: w.lower() not in lexicon.common_words() and not misspelling(w.lower())
)


# Surnames that are English words (``son fallow called``), but no function word, relation or
# word the rule passes over (``made``, ``never``), no adverb or participle
_NOT_A_NAME = FUNCTION_WORDS | RELATIONS | _NOT_RELATIVE_NAME | _NOT_NAME
_ENGLISH = sorted(
    w
    for w in lexicon.common_words() & lexicon.common_surnames()
    if w.isalpha()
    and 4 <= len(w) <= 9
    and w not in _NOT_A_NAME
    and w not in lexicon.clinical_words()
    and not w.endswith(("ly", "ed", "ing"))
)


@FAST
@given(
    st.one_of(_MADE_UP, st.sampled_from(_ENGLISH)),
    st.sampled_from(["son", "daughter", "wife", "dtr"]),
    st.sampled_from(["called", "visited", "phoned", "is aware", "in to visit"]),
)
def test_a_word_between_a_relation_and_what_the_relative_does_is_a_name(
    name: str, relation: str, verb: str
) -> None:
    for written in (name, name.lower(), name.upper()):
        text = f"social: {relation} {written} {verb} tonight."
        start = text.index(written, len("social: "))
        assert _covered(text, start, start + len(written)), (text, find_phi(text))


@FAST
@given(_MADE_UP, _MADE_UP, st.sampled_from([" RN", ", RN", ", R.N.", " RRT", ", NP"]))
def test_a_line_that_ends_with_a_credential_is_a_signature(
    first: str, last: str, credential: str
) -> None:
    text = f"Plan: continue to wean.\n{first} {last}{credential}\n"
    start = text.index(first)
    assert _covered(text, start, start + len(first) + 1 + len(last)), (text, find_phi(text))
