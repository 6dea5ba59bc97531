"""`POST /fhir/$deid-export`: a research extract over HTTP for the privacy officer, as an
asynchronous job (kick-off, progress, manifest, one download per file, cancel), its files
sealed at rest; refusals answered and audited before any job exists; an extract the
residual scan withholds keeps only its report. On SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import threading
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq  # type: ignore[import-untyped, unused-ignore]
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.deid.fhir import extract_jobs
from carevault.deid.fhir.export import ExportOptions
from carevault.deid.fhir.profile import load_profile
from carevault.privacy.bulk_jobs import JobFiles, OutputFile
from carevault.privacy.deid_release import releases
from carevault.privacy.export_models import export_jobs
from carevault.runtime import Runtime
from tests.integration.deid_fixtures import (
    SLUG,
    Loaded,
    identifying_values,
    load_synthea,
    synthea_subset,
)

ASYNC = {"Prefer": "respond-async"}
WAIT_SECONDS = 120
BASE = "http://testserver"


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthea_subset(tmp_path_factory.mktemp("synthea-http"), 2)


@pytest.fixture
def loaded(runtime: Runtime, subset: Path) -> Loaded:
    return load_synthea(runtime, subset)


def _parameters(**values: str) -> dict[str, Any]:
    return {"resourceType": "Parameters",
            "parameter": [{"name": k, "valueString": v} for k, v in values.items()]}  # fmt: skip


def _kick_off(client: TestClient, loaded: Loaded, **values: str) -> str:
    answer = client.post("/fhir/$deid-export", json=_parameters(**values),
                         headers=loaded.site.headers("privacy-officer", **ASYNC))  # fmt: skip
    assert answer.status_code == 202, answer.text
    location = answer.headers["content-location"]
    assert location.startswith(f"{BASE}/fhir/deid-status/")
    return location.removeprefix(BASE)


def _finished(runtime: Runtime, client: TestClient, loaded: Loaded, status: str) -> Any:
    assert runtime.exports.wait(status.rsplit("/", 1)[1], WAIT_SECONDS)
    return client.get(status, headers=loaded.site.headers("privacy-officer"))


def _get(client: TestClient, loaded: Loaded, url: str) -> Any:
    return client.get(url.removeprefix(BASE), headers=loaded.site.headers("privacy-officer"))


def test_the_privacy_officer_gets_a_sealed_ndjson_extract_once(
    runtime: Runtime, client: TestClient, loaded: Loaded
) -> None:
    status = _kick_off(client, loaded, profile="safe-harbor", format="ndjson",
                       project="diabetes-2027")  # fmt: skip
    answer = _finished(runtime, client, loaded, status)
    assert answer.status_code == 200, answer.text
    manifest = answer.json()
    assert manifest["requiresAccessToken"] is True
    by_type = {o["type"]: o for o in manifest["output"]}
    assert by_type["Patient"]["count"] == len(loaded.patients)
    job_id = status.rsplit("/", 1)[1]
    folder = runtime.settings.home / "exports" / job_id
    on_disk = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))
    listed = [o["url"].rsplit("/", 1)[1] for o in manifest["output"]]
    assert on_disk == sorted([*listed, "deid-report.json"])  # no parts, no plaintext copy
    for path in folder.iterdir():  # at rest, every file (the report too) is ciphertext
        assert b"resourceType" not in path.read_bytes()
        assert b"residual_scan" not in path.read_bytes()
    text = []
    for entry in manifest["output"]:
        body = _get(client, loaded, entry["url"])
        assert body.status_code == 200
        assert body.headers["content-type"].startswith("application/fhir+ndjson")
        assert hashlib.sha256(body.content).hexdigest() == entry["sha256"]
        assert len(body.content.splitlines()) == entry["count"]
        text.append(body.text)
        assert _get(client, loaded, entry["url"]).status_code == 404  # fetched once
    everything = "\n".join(text)
    for patient in loaded.patients:
        for value in identifying_values(patient):
            assert value not in everything
    report = _get(client, loaded, manifest["extension"]["deidReport"]).json()
    assert report["status"] == "complete"
    assert report["residual_scan"]["clean"] is True
    assert manifest["extension"]["dataDictionary"] is None  # NDJSON has none
    assert report["rows_per_file"] == {o["url"].rsplit("/", 1)[1]: o["count"]
                                       for o in manifest["output"]}  # fmt: skip
    (release,) = releases(runtime.gate_services, loaded.site.tenant_id)
    assert release["project"] == "diabetes-2027"
    assert release["release_id"] == report["release_id"]
    officer = runtime.identity.authenticate(loaded.site.tokens["privacy-officer"])
    assert release["detail"]["requested_by"] == officer.user_id  # the officer, not the job


def test_a_parquet_extract_comes_with_its_data_dictionary(
    runtime: Runtime, client: TestClient, loaded: Loaded
) -> None:
    status = _kick_off(client, loaded, format="parquet", profile="limited-data-set")
    manifest = _finished(runtime, client, loaded, status).json()
    patients = [o for o in manifest["output"] if o["type"] == "Patient"]
    assert patients
    assert all(o["url"].endswith(".parquet") for o in patients)
    rows = 0
    for entry in patients:
        body = _get(client, loaded, entry["url"])
        assert body.headers["content-type"] == "application/vnd.apache.parquet"
        table = pq.read_table(io.BytesIO(body.content))
        assert table.num_rows == entry["count"]
        rows += table.num_rows
    assert rows == len(loaded.patients)
    dictionary = _get(client, loaded, manifest["extension"]["dataDictionary"]).json()
    assert dictionary["profile"]["name"] == "limited-data-set"
    assert {c["name"] for c in dictionary["columns"]} >= {"patient", "zip", "resource"}


def test_progress_is_202_until_done_and_a_queued_extract_can_be_cancelled(
    runtime: Runtime, client: TestClient, loaded: Loaded
) -> None:
    officer = loaded.site.headers("privacy-officer")
    actor = runtime.identity.authenticate(loaded.site.tokens["privacy-officer"])
    held, release = threading.Event(), threading.Event()

    def busy(files: JobFiles) -> tuple[OutputFile, ...]:  # the worker's current job
        files.progress(7)
        held.set()
        release.wait(WAIT_SECONDS)
        return ()

    running = runtime.exports.start(actor, extract_jobs.LEVEL, f"{BASE}/fhir/$deid-export", busy)
    assert held.wait(WAIT_SECONDS)
    try:
        pending = client.get(f"/fhir/deid-status/{running}", headers=officer)
        assert pending.status_code == 202
        assert pending.headers["x-progress"] == "running: 7 patients de-identified"
        assert pending.headers["retry-after"] == "5"
        queued = _kick_off(client, loaded)
        waiting = client.get(queued, headers=officer)
        assert waiting.headers["x-progress"] == "queued: 0 patients de-identified"
        assert client.delete(queued, headers=officer).status_code == 202
        assert client.get(queued, headers=officer).status_code == 404
    finally:
        release.set()
    assert runtime.exports.wait(running, WAIT_SECONDS)
    assert runtime.exports.wait(queued.rsplit("/", 1)[1], WAIT_SECONDS)
    assert releases(runtime.gate_services, loaded.site.tenant_id) == []  # it never ran


def test_jobs_are_private_to_their_requester_and_of_their_kind(
    runtime: Runtime, client: TestClient, loaded: Loaded
) -> None:
    officer = loaded.site.headers("privacy-officer")
    status = _kick_off(client, loaded)
    assert _finished(runtime, client, loaded, status).status_code == 200
    job_id = status.rsplit("/", 1)[1]
    other = client.get(status, headers=loaded.site.headers("practitioner"))
    assert other.status_code == 404  # another user's job does not exist for them
    as_bulk = client.get(f"/fhir/bulk-status/{job_id}", headers=officer)
    assert as_bulk.status_code == 404  # a Bulk Data client is not handed a research extract
    report = f"/fhir/bulk-files/{job_id}/deid-report.json"
    assert client.get(report, headers=officer).status_code == 404
    assert client.delete(status, headers=officer).status_code == 202
    assert client.get(status, headers=officer).status_code == 404
    assert not (runtime.settings.home / "exports" / job_id).exists()


@pytest.mark.parametrize(
    ("role", "headers", "body", "status", "words"),
    [
        ("practitioner", ASYNC, _parameters(), 403, "privacy officer"),
        ("privacy-officer", {}, _parameters(), 400, "Prefer: respond-async"),
        ("privacy-officer", ASYNC, _parameters(shoe="9"), 400, "takes only"),
        ("privacy-officer", ASYNC, _parameters(profile="/etc/passwd"), 400, "profile is one of"),
        ("privacy-officer", ASYNC, _parameters(format="csv"), 400, "format"),
        ("privacy-officer", ASYNC, _parameters(style="blank"), 400, "style"),
        ("privacy-officer", ASYNC, _parameters(purpose="marketing"), 403, "does not allow"),
        ("privacy-officer", ASYNC, [1, 2], 400, "Parameters"),
        ("privacy-officer", ASYNC, {"resourceType": "Patient"}, 400, "takes only"),
    ],
)
def test_bad_kick_offs_are_refused_audited_and_start_nothing(
    runtime: Runtime,
    client: TestClient,
    loaded: Loaded,
    role: str,
    headers: dict[str, str],
    body: Any,
    status: int,
    words: str,
) -> None:
    answer = client.post("/fhir/$deid-export", json=body,
                         headers=loaded.site.headers(role, **headers))  # fmt: skip
    assert answer.status_code == status, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert words in outcome["issue"][0]["diagnostics"]
    with runtime.reader.connect() as conn:
        assert list(conn.execute(select(export_jobs))) == []
        denied = list(conn.execute(select(audit_entries).where(
            audit_entries.c.tenant_id == loaded.site.tenant_id,
            audit_entries.c.outcome.in_(("denied", "invalid")))))  # fmt: skip
    assert [e.outcome for e in denied] == ["denied" if status == 403 else "invalid"]


def test_an_extract_the_residual_scan_withholds_keeps_only_its_report(
    runtime: Runtime, client: TestClient, loaded: Loaded, tmp_path: Path
) -> None:
    shipped = Path(load_profile.__code__.co_filename).parent / "profiles" / "safe-harbor.toml"
    leaky = tmp_path / "leaky.toml"
    leaky.write_text(shipped.read_text().replace(
        "rules = [\n", 'rules = [\n  ["Patient.name", "keep", "name"],\n', 1))  # fmt: skip
    # Over HTTP only the shipped profiles are taken: the job is queued here as the face
    # queues it, with the leaky profile file, for the officer.
    actor = runtime.identity.authenticate(loaded.site.tokens["privacy-officer"])
    options = ExportOptions(SLUG, Path(), str(leaky), requested_by=actor.user_id)
    job_id = runtime.exports.start(
        actor, extract_jobs.LEVEL, f"{BASE}/fhir/$deid-export",
        lambda files: extract_jobs.produce_extract(
            runtime, options, files),
    )  # fmt: skip
    answer = _finished(runtime, client, loaded, f"/fhir/deid-status/{job_id}")
    assert answer.status_code == 422, answer.text
    message = answer.json()["issue"][0]["diagnostics"]
    assert "residual scan" in message
    assert "name" in message
    report_url = message.rsplit(" ", 1)[1]
    assert report_url.endswith("/deid-report.json")
    files = sorted(p.name for p in (runtime.settings.home / "exports" / job_id).iterdir())
    assert files == ["deid-report.json"]  # sealed, and nothing else left
    report = _get(client, loaded, report_url)
    assert report.status_code == 200
    assert report.json()["status"] == "failed"
    names = [n["family"] for p in loaded.patients for n in p.get("name", [])]
    assert not any(name in json.dumps(report.json()) for name in names)
    assert not any(name in message for name in names)
    assert releases(runtime.gate_services, loaded.site.tenant_id) == []


def test_the_manifest_lists_every_data_file_of_the_report(
    runtime: Runtime, client: TestClient, loaded: Loaded
) -> None:
    status = _kick_off(client, loaded)
    manifest = _finished(runtime, client, loaded, status).json()
    report = _get(client, loaded, manifest["extension"]["deidReport"]).json()
    listed = {o["url"].rsplit("/", 1)[1]: o["sha256"] for o in manifest["output"]}
    assert listed == report["files"]
    assert orjson.dumps(manifest).count(b"deid-files") == len(listed) + 1  # + the report
