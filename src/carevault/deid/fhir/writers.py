"""Output files of a de-identified extract: NDJSON (one file per type) or Parquet (one dataset
folder per type, zstd, with a data dictionary). Partitions write part files; `finalize` joins
NDJSON parts. Files are owner-only (0600) in an owner-only folder, like `carevault export`."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Final

import orjson
import pyarrow as pa  # type: ignore[import-untyped, unused-ignore]
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]

from carevault.deid.fhir.engine import DATE_LIKE

FORMATS: Final = ("ndjson", "parquet")
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


def create(path: Path) -> Any:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(fd, "wb")


def part_path(out: Path, rtype: str, fmt: str, index: int) -> Path:
    folder = out / ".parts" / rtype if fmt == "ndjson" else out / rtype
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    return folder / f"part-{index:05d}.{fmt}"


def write_part(
    out: Path, fmt: str, index: int, rtype: str, rows: list[tuple[str, dict[str, Any]]]
) -> Path:
    path = part_path(out, rtype, fmt, index)
    if fmt == "ndjson":
        with create(path) as fh:
            fh.write(b"".join(orjson.dumps(body) + b"\n" for _, body in rows))
        return path
    table = pa.Table.from_pylist([_row(code, body) for code, body in rows], schema=SCHEMA)
    with create(path) as fh:
        pq.write_table(table, fh, compression="zstd")
    return path


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


def finalize(out: Path, fmt: str, types: Iterable[str]) -> list[str]:
    """Join NDJSON parts into one file per type (in partition order); returns the file names."""
    names = []
    for rtype in sorted(types):
        if fmt == "parquet":
            names.append(f"{rtype}/")
            continue
        parts = sorted((out / ".parts" / rtype).glob("part-*.ndjson"))
        with create(out / f"{rtype}.ndjson") as target:
            for part in parts:
                with part.open("rb") as source:
                    while chunk := source.read(1 << 20):
                        target.write(chunk)
                part.unlink()
        (out / ".parts" / rtype).rmdir()
        names.append(f"{rtype}.ndjson")
    if (out / ".parts").exists():
        (out / ".parts").rmdir()
    return names


def write_dictionary(out: Path, profile: dict[str, str], types: Iterable[str]) -> None:
    """The data dictionary of a Parquet extract: every column, its type and its meaning."""
    document = {
        "format": "parquet (zstd), one dataset folder per resource type",
        "profile": profile,
        "tables": sorted(types),
        "columns": [{"name": n, "type": str(t), "description": d} for n, t, d in COLUMNS],
    }
    with create(out / "data-dictionary.json") as fh:
        fh.write(json.dumps(document, indent=2).encode())
