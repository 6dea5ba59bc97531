"""Output files of a de-identified extract: NDJSON (one file per type) or Parquet (one dataset
folder per type, zstd, with a data dictionary). Partitions write part files; `finalize` joins
NDJSON parts. Files are owner-only (0600) in an owner-only folder, like `carevault export`,
or sealed in an export job's folder (`Output`)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from carevault.deid.fhir.engine import DATE_LIKE
from carevault.privacy.sealed_files import JobSealing

FORMATS: Final = ("ndjson", "parquet")
PARTS: Final = ".parts"
DICTIONARY: Final = "data-dictionary.json"
_CODE_ELEMENTS = ("code", "vaccineCode", "medicationCodeableConcept", "type", "class")
_DATE_ELEMENTS = ("effectiveDateTime", "onsetDateTime", "performedDateTime", "authoredOn",
                  "occurrenceDateTime", "recordedDate", "date", "issued", "created", "start",
                  "sent", "birthDate")  # fmt: skip
_PERIODS = ("period", "performedPeriod", "effectivePeriod", "servicedPeriod")

COLUMNS: Final = (
    ("id", pa.string(), "The resource's pseudonymous id in this project."),
    (
        "patient",
        pa.string(),
        "The patient's random re-identification code in this project "
        "(not derived from the patient's data; the tenant keeps the table, sealed).",
    ),
    ("status", pa.string(), "The resource's status element, when it has one."),
    (
        "code_system",
        pa.string(),
        "System of the first coding of code (or vaccineCode, "
        "medicationCodeableConcept, type, class).",
    ),
    ("code", pa.string(), "Code of that coding."),
    ("code_display", pa.string(), "Display of that coding."),
    (
        "year",
        pa.string(),
        "Year of the resource's main date (effective, onset, performed, "
        "period start …), as the profile leaves it.",
    ),
    ("gender", pa.string(), "Patient only: administrative gender."),
    ("state", pa.string(), "Patient only: state of the first address."),
    (
        "zip",
        pa.string(),
        "Patient only: ZIP of the first address as the profile leaves it "
        "(Safe Harbor: three digits or 000).",
    ),
    ("resource", pa.string(), "The whole de-identified resource, FHIR JSON."),
)
SCHEMA: Final = pa.schema([(name, kind) for name, kind, _ in COLUMNS])


class Output:
    """Where an extract's files go: plain files (0600 in 0700 folders, for the command line),
    or, for an export job (`sealed`), files sealed as they are written under the job's
    labels (privacy/sealed_files.py), flat, named as they are downloaded: no plaintext on
    disk. Every write returns the plaintext's SHA-256 for the report."""

    def __init__(self, folder: Path, sealed: JobSealing | None = None) -> None:
        self.folder = folder
        self.sealed = sealed

    def part_name(self, rtype: str, fmt: str, index: int) -> str:
        part = f"part-{index:05d}.{fmt}"
        if fmt == "ndjson":
            return f"{PARTS}/{rtype}/{part}"
        return f"{rtype}.{part}" if self.sealed else f"{rtype}/{part}"

    def write(self, relative: str, chunks: Iterable[bytes]) -> str:
        path = self.folder / relative
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        sha = hashlib.sha256()
        with self._opened(path, relative) as put:
            for chunk in chunks:
                sha.update(chunk)
                put(chunk)
        return sha.hexdigest()

    @contextmanager
    def _opened(self, path: Path, relative: str) -> Iterator[Callable[[bytes], object]]:
        if self.sealed is None:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                yield fh.write
            return
        writer = self.sealed.writer(path, relative)
        try:
            yield writer.write
        except BaseException:
            writer.abort()
            raise
        writer.close()

    def read(self, relative: str) -> Iterator[bytes]:
        path = self.folder / relative
        if self.sealed is None:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 20):
                    yield chunk
            return
        yield from self.sealed.chunks(path, relative)


def write_part(
    out: Output, fmt: str, index: int, rtype: str, rows: list[tuple[str, dict[str, Any]]]
) -> tuple[str, str]:
    """One partition's resources of one type; the part's name and SHA-256."""
    name = out.part_name(rtype, fmt, index)
    if fmt == "ndjson":
        return name, out.write(name, [b"".join(orjson.dumps(body) + b"\n" for _, body in rows)])
    table = pa.Table.from_pylist([_row(code, body) for code, body in rows], schema=SCHEMA)
    buffer = pa.BufferOutputStream()
    pq.write_table(table, buffer, compression="zstd")
    return name, out.write(name, [buffer.getvalue().to_pybytes()])


def _row(code: str, body: dict[str, Any]) -> dict[str, Any]:
    coding = _first_coding(body)
    address = (body.get("address") or [{}])[0] if body.get("resourceType") == "Patient" else {}
    return {
        "id": body.get("id"), "patient": code, "status": _str(body.get("status")),
        "code_system": coding.get("system"), "code": coding.get("code"),
        "code_display": coding.get("display"), "year": _year(body),
        "gender": _str(body.get("gender")) if body.get("resourceType") == "Patient" else None,
        "state": _str(address.get("state")), "zip": _str(address.get("postalCode")),
        "resource": orjson.dumps(body).decode(),
    }  # fmt: skip


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _first_coding(body: dict[str, Any]) -> dict[str, Any]:
    for name in _CODE_ELEMENTS:
        value = body.get(name)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, dict):
            if value.get("coding"):
                return dict(value["coding"][0])
            if "code" in value and "system" in value:
                return value
    return {}


def _year(body: dict[str, Any]) -> str | None:
    candidates = [body.get(n) for n in _DATE_ELEMENTS]
    candidates += [(body.get(p) or {}).get("start") for p in _PERIODS]
    for value in candidates:
        if isinstance(value, str) and DATE_LIKE.fullmatch(value):
            return value[:4]
    return None


def finalize(out: Output, fmt: str, types: Iterable[str]) -> dict[str, str]:
    """Join NDJSON parts into one file per type (in partition order); their SHA-256 by name."""
    if fmt != "ndjson":
        return {}
    found = {}
    for rtype in sorted(types):
        folder = out.folder / PARTS / rtype
        parts = sorted(p.name for p in folder.glob("part-*.ndjson"))
        chunks = (c for part in parts for c in out.read(f"{PARTS}/{rtype}/{part}"))
        found[f"{rtype}.ndjson"] = out.write(f"{rtype}.ndjson", chunks)
        shutil.rmtree(folder)
    if (out.folder / PARTS).exists():
        (out.folder / PARTS).rmdir()
    return found


def write_dictionary(out: Output, profile: dict[str, str], types: Iterable[str]) -> dict[str, str]:
    """The data dictionary of a Parquet extract: every column, its type and its meaning."""
    document = {
        "format": "parquet (zstd), one dataset folder per resource type"
        if out.sealed is None
        else "parquet (zstd), files named <resource type>.part-<n>.parquet",
        "profile": profile,
        "tables": sorted(types),
        "columns": [{"name": n, "type": str(t), "description": d} for n, t, d in COLUMNS],
    }
    return {DICTIONARY: out.write(DICTIONARY, [json.dumps(document, indent=2).encode()])}
