"""The scrubber on a slice of the PhysioNet deid gold standard (tuning half only: notes of
odd-numbered patients), so that a regression in recall fails a test. The held-out figures
are the benchmark's (bench/deid_text.py), not a test's."""

from __future__ import annotations

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
