"""One case for each of the context rules and word lists added to the free-text scrubber
(carevault.deid.text): a regression in any of them fails its case here."""

from __future__ import annotations

import pytest

from carevault.deid.text import find_phi, find_phi_in_notes, scoring


def covered(text: str, phrase: str, start: int = 0) -> bool:
    begin = text.index(phrase, start)
    return scoring.covered(begin, begin + len(phrase), find_phi(text))


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


# Rules of issue 6, part 2 (generalising the scrubber beyond its tuning half). Every string
# here is made up; none is a phrase of the PhysioNet corpus.


@pytest.mark.parametrize(
    ("text", "name"),
    [
        # after a verb of talking: a name of the lists, any case; a frequent first name in caps
        ("case manager spoke with miszczak today", "miszczak"),
        ("SPOKE WITH EARL ABOUT PLAN", "EARL"),
        ("family meeting with Sandy and Dr. Wojcik", "Sandy"),
        # a role before the name (weak titles), and a role as a heading
        ("met w/ caseworker Dawn re placement", "Dawn"),
        ("PCP: John Smith, will fax records", "John Smith"),
        # an O' surname written without its apostrophe; a second name word after a title
        ("Dr. o malley at bedside", "o malley"),
        ("dr. kessinger brandtmeier aware of k 3.1", "kessinger brandtmeier"),
        # the second doctor of ``Drs X and Y`` even when an English word
        ("DR'S NOVAK AND BISHOP AT BEDSIDE", "BISHOP"),
        # initials: a strict letter before a name-list word, a capital before a surname
        ("TO MEET S. KOWALCZYK AT 9AM", "S. KOWALCZYK"),
        ("Reported to D. Baker, no new orders.", "D. Baker"),
        ("Mr. S. is a 70 yo man", "S"),
        ("NOT INVOLVED WITH MS K. CARE AT ALL", "K"),
        # a capitalised word after Mr/Dr in a mixed-case note, a surname after a lower-case mr
        ("Mr Block received from the ED.", "Block"),
        ("mr baker had an uneventful night.", "baker"),
        # one word between a relation and what a relative does
        ("social: son fallow called twice for updates", "fallow"),
        ("his son, ivory, called this am", "ivory"),
        ("SON BROOKS HAS PHONED X2", "BROOKS"),
        ("Son Fearing in to visit.", "Fearing"),
        # a capitalised English word right after a relation, before a relation in parentheses
        ("spoke to daughter Marble by phone", "Marble"),
        ("Rose (daughter) called this evening", "Rose"),
        # names listed with a found name, whatever their case
        ("dr nowak and sallada aware", "sallada"),
        # a word that the text says is a name, quoted or capitalised, English word or not
        ('pt prefers to be called "Bud" by staff', "Bud"),
        ("wife named Pearl visited", "Pearl"),
        # a signature: a line that ends with a credential, whatever the words
        ("pain controlled. Silver Mantle, RN\n", "Silver Mantle"),
        # a surname of the 2010 Census only, in a note whose case says nothing
        ("no acute events overnight. family support given by miszczak today.", "miszczak"),
        ("NO ACUTE EVENTS. FAMILY SUPPORT GIVEN BY SCHUETZLE TODAY.", "SCHUETZLE"),
        # a note that ends with one name word on its own line
        ("CONT TO MONITOR.\n\nSCHUETZLE\n", "SCHUETZLE"),
    ],
)
def test_generalised_name_rules(text: str, name: str) -> None:
    assert covered(text, name), find_phi(text)


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("ECHO showed 3-4+MR. Given total 6u PRBC.", "Given"),  # MR. = mitral regurgitation
        ("Monitor for changes in MS. Aspiration precautions.", "Aspiration"),
        ("MS: Rec'd haldol with good effect", "Rec'd"),  # the mental-status heading
        ("Wife made aware of decision", "made"),
        ("Social: Several visitors today.", "Several"),
        ("SOCIAL: Multiple family members in today", "Multiple"),
        ("Addendum MICU 7a-7p", "Addendum"),
        ("pt agressive overnight; NP rr 20 sats 96%", "agressive"),  # a typo is no name
        ("pt agressive overnight; NP rr 20 sats 96%", "rr"),
        ("PT REMIAN STABLE ON VENT", "REMIAN"),  # a typo in an all-caps note too
        ("Will continue to monitor, RN\n", "monitor"),
        # in a mixed-case note, a lower-case rare surname needs a context
        ("No acute events. Family support given by miszczak today.", "miszczak"),
    ],
)
def test_generalised_rules_leave_clinical_words(text: str, word: str) -> None:
    start = text.index(word)
    hit = [s for s in find_phi(text) if s.start < start + len(word) and start < s.end]
    assert not hit, hit


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("went to Bell Rehab for two weeks", "Bell"),  # an English word names the facility
        ("SENT TO STERLING REHAB FOR PT", "STERLING"),
        ("transferred to Sterling today", "Sterling"),  # a town of the list, capitalised
        ("daughter drove up from Auburn tonight", "Auburn"),
        ("Sister is his proxy and lives in VT.", "VT"),  # where a person lives, even a state
        ("husband has a new job in Brixworth and visits weekends", "Brixworth"),
        ("records from Brenwick, Ohio arrived", "Brenwick"),  # a town, then its state
        ("nephew Tomas Ruiz of Brenwick visited today", "Brenwick"),
        ("transferred to Wexley MICU overnight", "Wexley MICU"),
    ],
)
def test_generalised_place_rules(text: str, phrase: str) -> None:
    assert covered(text, phrase), find_phi(text)


def test_no_town_in_a_list_of_findings() -> None:
    text = "CONTINUE TO MONITOR FOR CP, PEAK IN ENZYMES, OR EKG CHANGES, CONTINUE TO DIURESE"
    assert not any(s.category == "LOCATION" for s in find_phi(text)), find_phi(text)


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("for questions #24680 ok", "24680"),
        ("results to 4-5678 please", "4-5678"),
        ("reach the covering np at x 24680", "24680"),
        ("daughter's home 555.2468, cell unknown", "555.2468"),
        ("wife cell 410/555-2468", "410/555-2468"),
        ("home 555-1100 after 5pm", "555-1100"),  # a round number with a phone word near
    ],
)
def test_generalised_phone_forms(text: str, number: str) -> None:
    assert covered(text, number), find_phi(text)


@pytest.mark.parametrize(
    "text",
    [
        "SVR 954-1183; CO 4.6",
        "TV IMPROVED TO 900-1000. VENT WEANED.",
        "Pt voiding 575-1000 cc q shift",
        "resp: PSV 20/5. PH 7.44-7.46. bicarb gtt",
    ],
)
def test_ranges_and_measurements_are_no_phone_numbers(text: str) -> None:
    assert not any(s.category == "PHONE" for s in find_phi(text)), find_phi(text)


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("moved here in the spring of 2005", "2005"),
        ("on dialysis since 1998 via L AVF", "1998"),
        ("PMH: s/p appendectomy 85, TAH 92", "85"),
        ("PMH: s/p appendectomy 85, TAH 92", "92"),
    ],
)
def test_generalised_year_forms(text: str, year: str) -> None:
    assert covered(text, year, text.index(year)), find_phi(text)


def test_a_dose_of_a_round_number_is_no_year() -> None:
    assert not find_phi("gave a dose of 2000 units sq")


def test_a_fraction_is_a_date_only_after_a_date_word() -> None:
    assert covered("admitted 3/4 with CP", "3/4")
    assert not find_phi("started 1/2 NS at 100 cc/hr")
