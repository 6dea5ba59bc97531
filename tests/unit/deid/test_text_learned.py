"""The learned notes model (deid/text/learned.py): what it learns from, that it adds what
its context shows to the rules' finds, that it holds no name of the notes it learned
from, and the swapped copies it is trained on (deid/text/augment.py)."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from carevault.deid.text import find_phi, lexicon
from carevault.deid.text.augment import swapped
from carevault.deid.text.learned import NoteTagger, token_features, token_labels, train
from carevault.deid.text.tokens import tokenize
from tests.unit.deid.notes_model import NAMES, TRAINED, annotated


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "notes.crf"
    assert train(annotated(TRAINED), path, iterations=60) == len(TRAINED)
    return path


def test_the_invented_names_are_in_no_word_list() -> None:
    for name in NAMES:
        low = name.lower()
        assert low not in lexicon.common_words()
        assert low not in lexicon.first_names()
        assert low not in lexicon.surnames()


def test_the_model_flags_a_new_name_in_a_context_it_learned(model: Path) -> None:
    text = "QUIET SHIFT. TALKED WITH BRIXWICK AT THE DESK ABOUT THE PLAN FOR TOMORROW."
    start = text.index("BRIXWICK")
    rules = find_phi(text)
    assert not any(s.start <= start < s.end for s in rules)  # the rules alone miss it
    learned = find_phi(text, NoteTagger(model))
    hit = [s for s in learned if s.start <= start < s.end]
    assert hit
    assert hit[0].category == "NAME"
    assert text[hit[0].start : hit[0].end] == "BRIXWICK"
    assert "DESK" not in [text[s.start : s.end] for s in learned]


def test_the_model_holds_none_of_the_names_it_learned_from(model: Path) -> None:
    data = model.read_bytes().lower()
    for name in TRAINED:
        assert name.lower().encode() not in data
    assert b"talked" in data  # English words are features by their identity


def test_a_word_in_no_list_is_a_feature_only_by_its_shape() -> None:
    text = "Talked with Quelthorp at the desk, 555-0142 ext 37"
    features = token_features(text, tokenize(text))
    keys = " ".join(k for f in features for k in f)
    assert "quelthorp" not in keys.lower()
    around = [k for f in features for k in f if k.startswith(("before=", "after="))]
    assert "before='00 '" in around  # digits between words are seen as 0s only
    assert not any(c in "123456789" for k in around for c in k)
    assert "word=talked" in keys
    assert "word=<unk>" in keys


def test_labels_mark_the_tokens_of_names_and_places_only() -> None:
    text = "Dr Vordane saw him 7/22 in Baltimore"
    toks = tokenize(text)
    phrases = [(3, 10, "NAME"), (19, 23, "DATE"), (27, 36, "LOCATION")]
    labels = token_labels(toks, phrases)
    assert dict(zip([t.text for t in toks], labels, strict=True)) == {
        "Dr": "O", "Vordane": "NAME", "saw": "O", "him": "O", "in": "O", "Baltimore": "LOCATION",
    }  # fmt: skip


def test_training_on_no_note_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no annotated note"):
        train([], tmp_path / "m.crf")


def test_a_missing_or_foreign_model_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        NoteTagger(tmp_path / "absent.crf")
    junk = tmp_path / "junk.crf"
    junk.write_bytes(b"not a model at all" * 10)
    with pytest.raises(ValueError, match="not a notes model"):
        NoteTagger(junk)


def test_swapped_copies_move_the_phrases_with_the_text() -> None:
    text = "Seen by Dr Vordane on 7/22; wife Mary called from Baltimore. Plan: rest."
    phrases = [
        (text.index("Vordane"), text.index("Vordane") + 7, "NAME"),
        (text.index("7/22"), text.index("7/22") + 4, "DATE"),
        (text.index("Mary"), text.index("Mary") + 4, "NAME"),
        (text.index("Baltimore"), text.index("Baltimore") + 9, "LOCATION"),
    ]
    copy, moved = swapped(text, phrases, random.Random(3))  # noqa: S311
    assert [c for _, _, c in moved] == ["NAME", "DATE", "NAME", "LOCATION"]
    pieces = [copy[s:e] for s, e, _ in moved]
    assert pieces[1] == "7/22"  # only names and places are swapped
    assert "Vordane" not in copy
    assert "Baltimore" not in copy
    assert pieces[0][0].isupper()  # written as the original (capitalised)
    assert pieces[3].lower() in lexicon.places()
    assert copy.startswith("Seen by Dr ")
    assert copy.endswith(". Plan: rest.")


def test_swapped_copies_of_an_all_caps_note_are_in_capitals() -> None:
    text = "E. VORDANE AWARE OF LABS. WIFE AT BEDSIDE."
    copy, moved = swapped(text, [(3, 10, "NAME")], random.Random(1))  # noqa: S311
    ((start, end, _),) = moved
    assert copy[start:end].isupper()
    assert copy[start:end] != "VORDANE"
    assert copy[end:] == " AWARE OF LABS. WIFE AT BEDSIDE."
