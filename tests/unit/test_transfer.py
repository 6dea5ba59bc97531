"""Reading FHIR files for import: NDJSON lines, Bundle entries (urn:uuid references rewritten,
a searchset's OperationOutcome left out), folders, and files that are not FHIR data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from carevault.transfer.bundles import BundleFile
from carevault.transfer.ndjson import NdjsonFile
from carevault.transfer.sources import UnreadableFile, expand


def write_bundle(path: Path, kind: str, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"resourceType": "Bundle", "type": kind, "entry": entries}))
    return path


def test_ndjson_items_are_numbered_by_line_and_blank_lines_skipped(tmp_path: Path) -> None:
    path = tmp_path / "Patient.ndjson"
    path.write_bytes(b'{"resourceType":"Patient","id":"a"}\n\n  \n{broken\n')
    items = list(NdjsonFile(path).items())
    assert [(i.position, i.raw) for i in items] == [
        (1, b'{"resourceType":"Patient","id":"a"}'),
        (4, b"{broken"),
    ]
    assert NdjsonFile(path).count_hint() == 4  # lines, blank or not: a progress bar's total
    path.write_bytes(b"{}\n{}")
    assert NdjsonFile(path).count_hint() == 2


def test_a_bundle_yields_its_resources_with_urn_references_rewritten(tmp_path: Path) -> None:
    patient = "urn:uuid:11111111-2222-4333-8444-555555555555"
    path = write_bundle(tmp_path / "b.json", "transaction", [
        {"fullUrl": patient, "resource": {"resourceType": "Patient"}},
        {"fullUrl": "urn:uuid:99999999-2222-4333-8444-555555555555",
         "resource": {"resourceType": "Condition", "id": "c1",
                      "subject": {"reference": patient, "display": "kept"}}},
        {"request": {"method": "DELETE", "url": "Patient/gone"}},
    ])  # fmt: skip
    items = list(BundleFile(path).items())
    assert [i.position for i in items] == [1, 2, 3]
    bodies = [orjson.loads(i.raw) for i in items]
    assert bodies[0] == {"resourceType": "Patient", "id": "11111111-2222-4333-8444-555555555555"}
    assert bodies[1]["subject"] == {
        "reference": "Patient/11111111-2222-4333-8444-555555555555",
        "display": "kept",
    }
    assert bodies[2] is None  # an entry without a resource: the import refuses it


def test_a_searchset_leaves_out_its_operation_outcome(tmp_path: Path) -> None:
    path = write_bundle(tmp_path / "s.json", "searchset", [
        {"resource": {"resourceType": "Patient", "id": "p"}, "search": {"mode": "match"}},
        {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
    ])  # fmt: skip
    assert [orjson.loads(i.raw)["id"] for i in BundleFile(path).items()] == ["p"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ('{"resourceType": "Bundle", "type": "history", "entry": []}', "a Bundle of type history"),
        ('{"resourceType": "Patient", "id": "p"}', "not a FHIR Bundle"),
        ('{"resourceType": "Bundle", "type": "batch", "entry": [', "not valid JSON"),
    ],
)
def test_a_bundle_file_that_cannot_be_imported_says_why(
    tmp_path: Path, content: str, reason: str
) -> None:
    path = tmp_path / "x.json"
    path.write_text(content)
    with pytest.raises(UnreadableFile, match=reason):
        list(BundleFile(path).items())


def test_a_folder_means_its_fhir_files_and_names_what_it_passed_over(tmp_path: Path) -> None:
    (tmp_path / "Patient.ndjson").write_text('{"resourceType":"Patient","id":"a"}\n')
    (tmp_path / "log.ndjson").write_text('{"exportId":"x","eventId":"kickoff"}\n')
    (tmp_path / "manifest.json").write_text('{"transactionTime":"2024-01-01T00:00:00Z"}')
    write_bundle(tmp_path / "bundle.json", "collection", [])
    (tmp_path / "notes.txt").write_text("not looked at")
    found = expand([tmp_path])
    assert sorted(Path(s.name).name for s in found.sources) == ["Patient.ndjson", "bundle.json"]
    assert sorted(Path(note.split(":")[0]).name for note in found.skipped) == [
        "log.ndjson",
        "manifest.json",
    ]
    with pytest.raises(UnreadableFile, match="no such file or folder"):
        expand([tmp_path / "missing.ndjson"])
    with pytest.raises(UnreadableFile, match=r"expected a \.ndjson file"):
        expand([tmp_path / "notes.txt"])
