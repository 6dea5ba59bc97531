"""`carevault deid train-notes`: a model trained from a corpus in the PhysioNet deid format
(the real command, in a child process), and the corpora it refuses without quoting them."""

from __future__ import annotations

import stat
from pathlib import Path

from carevault.deid.text.learned import NoteTagger
from carevault.settings import Settings
from tests.cli_process import run_cli
from tests.unit.deid.notes_model import TRAINED, annotated


def _corpus(folder: Path, *, broken: bool = False) -> Path:
    """The notes of tests/unit/deid/notes_model.py in id.text / id-phi.phrase, patients 1, 2."""
    folder.mkdir()
    records, phrases = [], []
    for number, (text, found) in enumerate(annotated(TRAINED), start=1):
        patient = 1 + number % 2
        records.append(f"START_OF_RECORD={patient}||||{number}||||\n{text}||||END_OF_RECORD\n")
        for start, end, _ in found:
            shown = "SOMEONE ELSE" if broken else text[start:end]
            phrases.append(f"{patient} {number} {start} {end} PTName {shown}")
    (folder / "id.text").write_text("".join(records), encoding="utf-8")
    (folder / "id-phi.phrase").write_text("\n".join(phrases) + "\n", encoding="utf-8")
    return folder


def test_train_notes_writes_a_private_model_from_the_tuning_half(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")  # training opens no database
    out = tmp_path / "models" / "notes.crf"
    done = run_cli(settings, "deid", "train-notes", "--corpus", str(_corpus(tmp_path / "c")),
                   "--out", str(out), "--copies", "1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    odd = sum(1 for n in range(1, len(TRAINED) + 1) if (1 + n % 2) % 2 == 1)
    assert f"learned from {2 * odd} notes" in done.stdout  # odd patients, each and a copy
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert NoteTagger(out).path == out

    again = run_cli(settings, "deid", "train-notes", "--corpus", str(tmp_path / "c"),
                    "--out", str(out))  # fmt: skip
    assert again.returncode == 2
    assert "exists" in again.stderr


def test_train_notes_refuses_a_corpus_it_cannot_read_without_quoting_it(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home")
    out = tmp_path / "notes.crf"
    broken = _corpus(tmp_path / "broken", broken=True)
    for corpus, message in ((tmp_path / "nowhere", "no id.text"), (broken, "cannot be read")):
        done = run_cli(settings, "deid", "train-notes", "--corpus", str(corpus),
                       "--out", str(out))  # fmt: skip
        assert done.returncode == 2, done.stdout
        assert message in done.stderr
        assert "Traceback" not in done.stderr
        assert "SOMEONE ELSE" not in done.stderr
        assert not any(name.upper() in done.stderr for name in TRAINED)
        assert not out.exists()
    bad_half = run_cli(settings, "deid", "train-notes", "--corpus", str(broken), "--out",
                       str(out), "--half", "even")  # fmt: skip
    assert bad_half.returncode == 2
    assert "odd or all" in bad_half.stderr
