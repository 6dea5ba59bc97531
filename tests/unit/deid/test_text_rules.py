"""One case for each of the context rules and word lists added to the free-text scrubber
(carevault.deid.text): a regression in any of them fails its case here."""

from __future__ import annotations

import pytest

from carevault.deid.text import find_phi, find_phi_in_notes


def covered(text: str, phrase: str, start: int = 0) -> bool:
    begin = text.index(phrase, start)
    end = begin + len(phrase)
    pos = begin
    for span in find_phi(text):
        if span.start <= pos < span.end:
            pos = span.end
    return pos >= end


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # English nicknames that the Census lacks
        ("has one son Rob who is spokesperson", "Rob"),
        # a name after a verb of talking
        ("Spoke with Hank about the plan.", "Hank"),
        # a capitalised first name, then a capitalised surname, both English words
        ("Plan reviewed, Morris Halfpenny agrees.", "Morris Halfpenny"),
        # two capitalised words that no list knows
        ("very devoted. Trevannion Qualesbyx cell phone on chart", "Trevannion Qualesbyx"),
        # capitalised words listed after a relation
        ("Sons Smokey, Morris and Roger in to visit", "Morris"),
        ("Sons Smokey, Morris and Roger in to visit", "Roger"),
        # a name listed with a name already found
        ("Both Suzette and Hank are his appointed proxies.", "Hank"),
        # a clinical word as a surname, between a first name and a credential
        ("on servo vent (same settings). \nBernard Foley CRT \n", "Bernard Foley"),
        # a surname only the 2010 Census lists, capitalised
        ("Plan discussed; Piantedosi agrees.", "Piantedosi"),
        # an Irish surname written with its apostrophe
        ("O'Halloran agrees with the plan.", "O'Halloran"),
    ],
)
def test_added_name_rules(text: str, name: str) -> None:
    assert covered(text, name), find_phi(text)


def test_a_context_name_that_is_a_word_is_flagged_again_where_written_so() -> None:
    text = "Son Hank called tonight. Plan to call Hank tomorrow, hank of hair noted."
    assert covered(text, "Hank", text.index("call ")), find_phi(text)
    assert not covered(text, "hank of"), find_phi(text)


def test_across_notes_too() -> None:
    notes = ["Son Hank called tonight.", "Update given to Hank by phone."]
    spans = find_phi_in_notes(notes)[1]
    start = notes[1].index("Hank")
    assert any(s.start <= start < s.end for s in spans), spans


def test_misspelt_words_are_no_surnames() -> None:
    text = "bowel sounds present, pt stabel overnight, bowell regimen given"
    found = {text[s.start : s.end] for s in find_phi(text)}
    assert "stabel" not in found, found
    assert "bowell" not in found, found


def test_a_misspelling_after_a_first_name_is_still_a_surname() -> None:
    # guards the misspelling filter: it must not drop a surname that follows a first name
    text = "will consult with patty hoeller re skin care."
    assert covered(text, "patty hoeller"), find_phi(text)


@pytest.mark.parametrize(
    ("text", "phrase", "category"),
    [
        # a town that is also a name, after a preposition, is a place
        ("She lives near Hampton now.", "Hampton", "LOCATION"),
        ("plan to get oob. transfer to quartermain2.", "quartermain2", "HOSPITAL"),
    ],
)
def test_added_place_rules(text: str, phrase: str, category: str) -> None:
    spans = find_phi(text)
    assert covered(text, phrase), spans
    assert any(s.category == category for s in spans), spans


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("call daughter 617-555-1234 x4321 today", "4321"),
        ("page the team at ext. 12 if needed", "12"),
        ("covering resident pager x54321 overnight", "54321"),
    ],
)
def test_phone_extensions(text: str, number: str) -> None:
    assert covered(text, number), find_phi(text)


@pytest.mark.parametrize("text", ["gave lasix x2 and 2000 cc out", "2 x 3 cm wound, x1000 units"])
def test_no_extension_without_a_number_shape(text: str) -> None:
    assert not any(s.category == "PHONE" for s in find_phi(text)), find_phi(text)
