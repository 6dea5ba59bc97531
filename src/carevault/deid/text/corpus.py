"""Reader for the PhysioNet deid gold standard (`id.text` and `id-phi.phrase`).

`id.text` holds records ``START_OF_RECORD=<patient>||||<note>||||`` + newline + the note +
``||||END_OF_RECORD``; offsets in `id-phi.phrase` count characters from the first character
after that header line's newline. Each phrase line is
``<patient> <note> <start> <end> <category> <text>`` (end exclusive)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_RECORD: Final = re.compile(
    r"START_OF_RECORD=(\d+)\|\|\|\|(\d+)\|\|\|\|\n(.*?)\|\|\|\|END_OF_RECORD", re.DOTALL
)

# The gold standard's categories, mapped onto ours.
GOLD_CATEGORY: Final = {
    "HCPName": "NAME",
    "PTName": "NAME",
    "PTNameInitial": "NAME",
    "RelativeProxyName": "NAME",
    "Date": "DATE",
    "DateYear": "DATE",
    "Age": "AGE",
    "Location": "LOCATION",
    "Phone": "PHONE",
    "Other": "OTHER",
}


@dataclass(frozen=True)
class GoldPhrase:
    start: int
    end: int
    category: str  # ours (GOLD_CATEGORY's values)
    gold_category: str
    text: str


@dataclass(frozen=True)
class Note:
    patient: int
    number: int
    text: str
    phrases: tuple[GoldPhrase, ...]


def read_corpus(folder: Path) -> list[Note]:
    """The notes of `folder`/id.text with their gold phrases, in file order."""
    raw = (folder / "id.text").read_text(encoding="utf-8", errors="replace")
    texts = {(int(m[1]), int(m[2])): m[3] for m in _RECORD.finditer(raw)}
    phrases: dict[tuple[int, int], list[GoldPhrase]] = {k: [] for k in texts}
    for line in (folder / "id-phi.phrase").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        patient, note, start, end, category, text = line.split(" ", 5)
        key = (int(patient), int(note))
        s, e = int(start), int(end)
        if texts[key][s:e] != text:
            raise ValueError(f"phrase {line!r} does not match its note's text")
        phrases[key].append(GoldPhrase(s, e, GOLD_CATEGORY[category], category, text))
    return [Note(p, n, t, tuple(phrases[(p, n)])) for (p, n), t in texts.items()]


def split(notes: list[Note], half: str) -> list[Note]:
    """``odd``: notes of odd-numbered patients (tuning); ``even``: held out; ``all``."""
    if half == "all":
        return notes
    parity = {"odd": 1, "even": 0}[half]
    return [n for n in notes if n.patient % 2 == parity]
