"""Free-text PHI scrubbing, one identifier type at a time (carevault.deid.text)."""

from __future__ import annotations

import itertools

import pytest

from carevault.deid.text import CATEGORIES, PhiSpan, find_phi, scoring, scrub_text


def flagged(text: str) -> dict[str, str]:
    """Each flagged substring -> its category."""
    return {text[s.start : s.end]: s.category for s in find_phi(text)}


def covered(text: str, phrase: str) -> bool:
    start = text.index(phrase)
    return scoring.covered(start, start + len(phrase), find_phi(text))


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("Seen by Dr. Healey this morning.", "Healey"),
        ("dr vasquez aware of the abg", "vasquez"),
        ("DR. L. RUUSKA PRONOUNCED THE PATIENT.", "RUUSKA"),
        ("Mr. Nicholson ambulated in the hall.", "Nicholson"),
        ("Mrs Przybylo is anxious.", "Przybylo"),
        ("Drs Camarda and Clifford at bedside.", "Clifford"),
        ("daughter Veronica will be spokesperson", "Veronica"),
        ("SOCIAL: HUSBAND RICH MARTINO IN TO VISIT", "RICH"),
        ("son bill called for an update", "bill"),
        ("Patricia Nolan, RN", "Patricia Nolan"),
        ("Q. LANDER RRT", "LANDER"),
        ("Per W. MAROTTA the milrinone is off.", "MAROTTA"),
        ("Karen Yanulis from case management called.", "Karen Yanulis"),
        ("NP Carol ordered the lines out.", "Carol"),
        ("Sister in law Maureen O'Driscoll visited.", "Maureen O'Driscoll"),
    ],
)
def test_names_with_titles_relations_and_signatures(text: str, name: str) -> None:
    assert covered(text, name), find_phi(text)


@pytest.mark.parametrize(
    "text",
    [
        "Pt is alert and oriented, MAE, PERRLA.",
        "BP 120/80, HR 70s, sats 98% on 2L NC.",
        "Foley draining clear yellow urine.",
        "Plan: wean vent, PS 10/5, PEEP 5.",
        "Pain 4/10 in the incision, given tylenol.",
        "Murmur 3/6 SEM at the apex.",
        "Pt to get 1/2 NS at 100 cc/hr.",
        "MD aware, will continue to monitor.",
        "hr in the 90's, sbp 100-110.",
    ],
)
def test_clinical_text_is_left_alone(text: str) -> None:
    assert find_phi(text) == []


@pytest.mark.parametrize(
    ("text", "date"),
    [
        ("admitted 7/22 with chest pain", "7/22"),
        ("CABG on 10/13/82 uneventful", "10/13/82"),
        ("seen 8/28/1995 pre-op", "8/28/1995"),
        ("dated 2004-07-23", "2004-07-23"),
        ("on 07.23.2004 he fell", "07.23.2004"),
        ("MI in '92 and CABG '95", "92"),
        ("CVA 74' with residual weakness", "74"),
        ("PMH: MI 1992, CVA 2004", "1992"),
        ("s/p CABG 81, redo 84", "81"),
        ("stated it was July 29th", "July 29th"),
        ("Nursing note 21 Apr, 21", "21 Apr, 21"),
        ("in March of 1993", "March of 1993"),
        ("on the 11th he spiked", "11th"),
        ("echo 8/87 showed EF 20%", "8/87"),
        ("admitted 12/2003", "12/2003"),
        ("treated 10/03/10/04 with XRT", "10/03/10/04"),
        ("went home for Christmas", "Christmas"),
        ("pmh: htn, dx 11/21.93", "11/21.93"),
    ],
)
def test_dates_in_many_formats(text: str, date: str) -> None:
    assert covered(text, date), find_phi(text)
    assert any(s.category == "DATE" for s in find_phi(text))


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("98 yo gentleman admitted via the cath lab", "98"),
        ("a 93 year old woman", "93"),
        ("103 y/o female from home", "103"),
        ("Age: 91, lives alone", "91"),
        ("ninety-two year old man", "ninety-two"),
    ],
)
def test_ages_over_89_are_phi(text: str, age: str) -> None:
    assert flagged(text).get(age) == "AGE"


@pytest.mark.parametrize("text", ["58 YEAR OLD FEMALE", "89 yo man", "a 45 y/o male", "age 72"])
def test_ages_under_90_are_kept(text: str) -> None:
    assert not any(s.category == "AGE" for s in find_phi(text))


@pytest.mark.parametrize(
    ("text", "phone"),
    [
        ("cell# 410-322-1419 home", "410-322-1419"),
        ("call (617) 555-1234 anytime", "(617) 555-1234"),
        ("phone 617.555.1234", "617.555.1234"),
        ("reached at 555-1234", "555-1234"),
        ("Pager # 98765", "98765"),
        ("PG 33445", "33445"),
        ("beeper number 55037 for consents", "55037"),
        ("son dave (240444-1243) was in", "(240444-1243)"),
        ("tel: +1 617 555 1234", "+1 617 555 1234"),
        ("ext. 4567 in the office", "4567"),
    ],
)
def test_phone_formats(text: str, phone: str) -> None:
    assert covered(text, phone), find_phi(text)


@pytest.mark.parametrize(
    ("text", "ident"),
    [
        ("MRN: 1234567", "1234567"),
        ("medical record number 00123456", "00123456"),
        ("SSN 123-45-6789 on file", "123-45-6789"),
        ("insurance policy #RG17", "RG17"),
        ("ref # 8336652 for the shipment", "8336652"),
        ("account no. A-99812", "A-99812"),
    ],
)
def test_record_and_other_numbers(text: str, ident: str) -> None:
    assert covered(text, ident), find_phi(text)


def test_emails_urls_and_ip_addresses() -> None:
    text = (
        "mail jane.doe+x@example.org, see https://portal.example.com/p?id=3 or www.x.org,"
        " ip 10.0.0.12, pH 7.35"
    )
    got = flagged(text)
    assert got["jane.doe+x@example.org"] == "EMAIL"
    assert got["https://portal.example.com/p?id=3"] == "URL"
    assert got["www.x.org"] == "URL"
    assert got["10.0.0.12"] == "URL"
    assert "7.35" not in got  # a pH is not an address


@pytest.mark.parametrize(
    ("text", "place"),
    [
        ("transferred from Calvert Hospital for care", "Calvert"),
        ("to go to Sacred Heart Memorial tomorrow", "Sacred Heart"),
        ("She went via ambulance to St. Mary Hospital.", "St. Mary"),
        ("admitted to GH on 7/18", "GH"),
        ("lives in Catonsville with her husband", "Catonsville"),
        ("Nephew of Towson visited", "Towson"),
        ("will transfer to Quartermain 2 in the am", "Quartermain"),
        ("Team to call family in San Diego.", "San Diego"),
        ("lives at 19 Clover Street in Lansdowne", "19 Clover Street"),
        ("pt lives in Laurel, MD", "Laurel"),
        ("TAKEN TO UNION HOSPITAL WHERE EKG POS", "UNION"),
    ],
)
def test_hospitals_and_locations(text: str, place: str) -> None:
    assert covered(text, place), find_phi(text)
    assert {s.category for s in find_phi(text)} & {"LOCATION", "HOSPITAL"}


def test_spans_are_sorted_disjoint_and_typed() -> None:
    text = "Dr. Smith saw Mr. Jones on 7/22 at GH; call 617-555-1234. Age 95."
    spans = find_phi(text)
    assert spans == sorted(spans, key=lambda s: s.start)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert all(s.category in CATEGORIES for s in spans)
    assert all(isinstance(s, PhiSpan) for s in spans)


def test_tag_style_replaces_each_span_by_its_category() -> None:
    out, spans = scrub_text("Dr. Healey saw her on 7/22, call 410-322-1419.")
    assert out == "Dr. [NAME] saw her on [DATE], call [PHONE]."
    assert [s.category for s in spans] == ["NAME", "DATE", "PHONE"]


def test_span_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="category"):
        PhiSpan(0, 1, "SECRET")
    with pytest.raises(ValueError, match="span"):
        PhiSpan(3, 3, "NAME")
    with pytest.raises(ValueError, match="style"):
        scrub_text("x", style="blank")  # type: ignore[arg-type]


def test_a_patients_notes_share_what_one_of_them_reveals() -> None:
    from carevault.deid.text import find_phi_in_notes

    notes = ["Seen by Dr. Zorbelli today.", "zorbelli aware of the abg.", "", "MAE, PERRLA."]
    first, second, empty, clinical = find_phi_in_notes(notes)
    assert [(notes[0][s.start : s.end], s.category) for s in first] == [("Zorbelli", "NAME")]
    assert [(notes[1][s.start : s.end], s.category) for s in second] == [("zorbelli", "NAME")]
    assert empty == []
    assert clinical == []
    assert find_phi(notes[1]) == []  # alone, the second note says nothing about the word
