"""The scrubber on a slice of the PhysioNet deid gold standard (tuning half only: notes of
odd-numbered patients), so that a regression in recall fails a test. The held-out figures
are the benchmark's (bench/deid_text.py), not a test's."""

from __future__ import annotations

from pathlib import Path

import pytest

from carevault.deid.text import find_phi
from carevault.deid.text.corpus import read_corpus, split
from carevault.deid.text.scoring import Score, score_note
from tests.shared_data import DATA

CORPUS = DATA / "physionet-deid"

pytestmark = pytest.mark.skipif(
    not (CORPUS / "id.text").is_file(),
    reason=f"PhysioNet deid gold standard not found in {CORPUS} (set CAREVAULT_SHARED_DATA)",
)


def test_reader_finds_every_note_and_phrase() -> None:
    notes = read_corpus(CORPUS)
    assert len(notes) == 2434
    assert sum(len(n.phrases) for n in notes) == 1779
    odd, even = split(notes, "odd"), split(notes, "even")
    assert len(odd) + len(even) == len(notes)
    assert {n.patient % 2 for n in odd} == {1}
    assert {n.patient % 2 for n in even} == {0}
    for note in notes[:200]:
        for phrase in note.phrases:
            assert note.text[phrase.start : phrase.end] == phrase.text


def test_recall_on_a_slice_of_the_tuning_half() -> None:
    notes = [n for n in split(read_corpus(CORPUS), "odd") if n.patient <= 61]
    score = Score()
    for note in notes:
        score_note(score, note.text, note.phrases, find_phi(note.text))
    assert score.gold.total() > 300
    assert score.recall() >= 0.95, (score.recall(), score.missed[:20])
    assert score.precision() >= 0.75, (score.precision(), score.false_positives[:20])
    assert score.recall("DATE") >= 0.97


def test_a_model_trained_on_one_part_of_the_tuning_half_finds_names_in_the_other(
    tmp_path: Path,
) -> None:
    from carevault.deid.text.learned import NoteTagger, train
    from carevault.deid.text.spans import merge_spans
    from carevault.deid.text.tokens import tokenize
    from carevault.deid.text.training import examples

    tuning = split(read_corpus(CORPUS), "odd")
    taught = [n for n in tuning if n.patient > 61]
    tested = [n for n in tuning if n.patient <= 61]
    train(examples(taught, copies=0), tmp_path / "notes.crf", iterations=50)
    tagger = NoteTagger(tmp_path / "notes.crf")
    rules, both, alone = Score(), Score(), Score()
    for note in tested:
        learned = [p for p in note.phrases if p.category in ("NAME", "LOCATION")]
        score_note(rules, note.text, note.phrases, find_phi(note.text))
        score_note(both, note.text, note.phrases, find_phi(note.text, tagger))
        found = merge_spans(note.text, tagger.spans(note.text, tokenize(note.text)))
        score_note(alone, note.text, learned, found)
    # by itself the model finds most names and places of notes it never saw, rarely wrongly
    assert alone.recall() >= 0.6, alone.missed[:10]
    assert alone.precision() >= 0.8, alone.false_positives[:10]
    # and with the rules it loses nothing (the rules were tuned on these notes: ~0.98)
    assert both.found.total() >= rules.found.total()
    assert both.precision() >= 0.75, both.false_positives[:20]


def test_scoring_counts_partial_cover_as_a_miss() -> None:
    from carevault.deid.text.corpus import GoldPhrase
    from carevault.deid.text.spans import PhiSpan

    text = "Dr Mary Souza saw him"
    gold = [GoldPhrase(3, 13, "NAME", "HCPName", "Mary Souza")]
    partial, whole = Score(), Score()
    score_note(partial, text, gold, [PhiSpan(3, 7, "NAME"), PhiSpan(18, 21, "NAME")])
    score_note(whole, text, gold, [PhiSpan(3, 13, "NAME")])
    assert partial.recall() == 0.0
    assert partial.precision() == 0.5
    assert whole.recall() == 1.0
    assert whole.precision() == 1.0
    assert whole.f2() == 1.0
