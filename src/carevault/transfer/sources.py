"""What an import reads: files of FHIR resources, each item with where it came from."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Item:
    """One resource as read: its raw JSON and its place (line or entry number) in its file."""

    position: int
    raw: bytes


class Source(Protocol):
    @property
    def name(self) -> str:
        """The file as the operator named it: errors are reported as `name:position`."""
        ...

    @property
    def size_bytes(self) -> int:
        """How much there is to read (it decides whether checking runs in worker processes)."""
        ...

    @property
    def unit(self) -> str:
        """What a position counts: "line" or "entry"."""
        ...

    def items(self) -> Iterator[Item]:
        """Every resource, streamed in file order (never the whole file in memory)."""
        ...

    def count_hint(self) -> int | None:
        """About how many items there are, if that is cheap to know (a progress bar's total)."""
        ...


class UnreadableFile(Exception):
    """The file as a whole cannot be read (not JSON, not a Bundle); the message names no value."""


@dataclass(frozen=True)
class Expansion:
    sources: list[Source]
    skipped: list[str]
    """Files in a named folder that are not FHIR data (say, a bulk export's log), and why."""


def expand(paths: list[Path]) -> Expansion:
    """The sources of the named files and folders (a folder: its *.ndjson and *.json files)."""
    from carevault.transfer.bundles import BundleFile, looks_like_bundle
    from carevault.transfer.ndjson import NdjsonFile, looks_like_fhir_ndjson

    sources: list[Source] = []
    skipped: list[str] = []
    for path in paths:
        if not path.exists():
            raise UnreadableFile(f"{path}: no such file or folder")
        if path.is_dir():
            for found in sorted([*path.glob("*.ndjson"), *path.glob("*.json")]):
                if found.suffix == ".ndjson" and looks_like_fhir_ndjson(found):
                    sources.append(NdjsonFile(found))
                elif found.suffix == ".json" and looks_like_bundle(found):
                    sources.append(BundleFile(found))
                else:
                    skipped.append(f"{found}: not FHIR data (no resourceType), skipped")
        elif path.suffix in (".ndjson", ".jsonl"):
            sources.append(NdjsonFile(path))
        elif path.suffix == ".json":
            sources.append(BundleFile(path))
        else:
            raise UnreadableFile(f"{path}: expected a .ndjson file, a .json Bundle or a folder")
    return Expansion(sources, skipped)
