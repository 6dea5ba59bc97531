"""FHIR NDJSON: one resource per line (the Bulk Data format)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson

from carevault.transfer.sources import Item


class NdjsonFile:
    unit = "line"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = str(path)
        self.size_bytes = path.stat().st_size

    def items(self) -> Iterator[Item]:
        """Each non-blank line, numbered from 1 as an editor numbers them."""
        with self.path.open("rb") as lines:
            for number, line in enumerate(lines, 1):
                stripped = line.strip()
                if stripped:
                    yield Item(number, stripped)

    def count_hint(self) -> int:
        """The lines, counted a megabyte at a time."""
        count = 0
        last = b"\n"
        with self.path.open("rb") as stream:
            while block := stream.read(1 << 20):
                count += block.count(b"\n")
                last = block[-1:]
        return count + (last != b"\n")


def looks_like_fhir_ndjson(path: Path) -> bool:
    """Whether the first non-blank line is a resource (a folder may hold an export's log)."""
    with path.open("rb") as lines:
        for line in lines:
            if line.strip():
                try:
                    first = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return True  # a broken first line is FHIR data gone wrong: report it
                return isinstance(first, dict) and "resourceType" in first
    return False
