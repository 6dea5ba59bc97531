"""FHIR Bulk Data `$export` over HTTP: kick-off (system, patient, group), status polling,
download of files sealed at rest and deleted once fetched, cancel, expiry by the clock,
jobs private to their requester, bad kick-offs; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import insert, select

from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.crypto.vault import patient_key_name
from carevault.demo.seed import DemoLogins, seed_demo
from carevault.fhir_types import DIRECTORY_TYPES
from carevault.identity.models import TenantKind
from carevault.identity.permissions import Role
from carevault.privacy.export_models import export_jobs
from carevault.privacy.sealed_files import BrokenFile, SealedWriter, read_sealed
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.integration.test_export import compartment

SEED, PATIENTS = 11, 3
SLUG = "riverside"
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
WAIT_SECONDS = 60


@pytest.fixture
def seeded(runtime: Runtime) -> DemoLogins:
    return seed_demo(
        runtime, seed=SEED, patients_per_tenant=PATIENTS, console=Console(file=io.StringIO())
    )


def auth(token: str, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **extra}


def token_of(seeded: DemoLogins, role: Role, slug: str = SLUG) -> str:
    return seeded.user(slug, role).token


def kick_off(
    client: TestClient, path: str, token: str, params: dict[str, str] | None = None
) -> str:
    """Start a job; its status URL path."""
    response = client.get(path, params=params or {}, headers=auth(token, **ASYNC))
    assert response.status_code == 202, response.text
    location = response.headers["content-location"]
    assert location.startswith("http://testserver/fhir/bulk-status/")
    return location.removeprefix("http://testserver")


def job_of(status_path: str) -> str:
    return status_path.rsplit("/", 1)[1]


def finish(runtime: Runtime, client: TestClient, status_path: str, token: str) -> dict[str, Any]:
    """Wait for the job (an Event, no sleeping), then read its manifest."""
    assert runtime.exports.wait(job_of(status_path), WAIT_SECONDS)
    response = client.get(status_path, headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    manifest: dict[str, Any] = response.json()
    return manifest


def download(client: TestClient, url: str, token: str) -> list[dict[str, Any]]:
    response = client.get(url.removeprefix("http://testserver"), headers=auth(token))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    return [orjson.loads(line) for line in response.content.splitlines()]


def export_all(
    runtime: Runtime, client: TestClient, path: str, token: str, **params: str
) -> dict[str, list[dict[str, Any]]]:
    manifest = finish(runtime, client, kick_off(client, path, token, params), token)
    found = {o["type"]: download(client, o["url"], token) for o in manifest["output"]}
    for output in manifest["output"]:
        assert output["count"] == len(found[output["type"]])
    return found


def test_system_export_manifest_files_sealed_at_rest_and_deleted_after_download(
    runtime: Runtime, settings: Settings, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    status_path = kick_off(client, "/fhir/$export", token, {"_outputFormat": "ndjson"})
    manifest = finish(runtime, client, status_path, token)
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert manifest["transactionTime"] == "2026-11-23T09:00:00.000000Z"
    assert manifest["request"] == "http://testserver/fhir/$export?_outputFormat=ndjson"
    types = {o["type"] for o in manifest["output"]}
    assert {"Patient", "Observation", "Practitioner"} <= types

    # at rest: sealed files under the data folder, no patient's name in clear
    folder = settings.home / "exports" / job_of(status_path)
    on_disk = sorted(folder.iterdir())
    assert {p.name for p in on_disk} == {f"{t}.ndjson" for t in types}
    names = [p.family.encode() for p in seeded.patients if p.tenant == SLUG]
    for path in on_disk:
        content = path.read_bytes()
        assert content
        assert b"resourceType" not in content
        assert not any(name in content for name in names)

    patient_file = next(o for o in manifest["output"] if o["type"] == "Patient")
    patients = download(client, patient_file["url"], token)
    assert len(patients) == patient_file["count"] == PATIENTS
    family = {n["family"] for p in patients for n in p["name"]}
    assert family == {p.family for p in seeded.patients if p.tenant == SLUG}
    for resource in patients:  # the stored JSON as the API reads it
        read = client.get(f"/fhir/Patient/{resource['id']}", headers=auth(token))
        assert read.json() == resource
    assert not (folder / "Patient.ndjson").exists()
    again = client.get(patient_file["url"].removeprefix("http://testserver"), headers=auth(token))
    assert again.status_code == 404
    assert (folder / "Observation.ndjson").exists()  # the others wait for their download


def test_a_job_is_audited_per_patient_as_its_requester(
    runtime: Runtime, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    actor = runtime.identity.authenticate(token)
    found = export_all(runtime, client, "/fhir/Patient/$export", token, _type="Observation")
    assert set(found) == {"Observation"}
    with runtime.reader.connect() as conn:
        entries = list(
            conn.execute(
                select(audit_entries).where(
                    audit_entries.c.tenant_id == actor.tenant_id,
                    audit_entries.c.action == "export",
                    audit_entries.c.actor_id == actor.user_id,
                )
            )
        )
    by_patient: dict[str, set[str]] = {}
    for entry in entries:
        (patient,) = orjson.loads(entry.patient_ids)
        by_patient.setdefault(patient, set()).update(orjson.loads(entry.resource_ids))
        assert entry.purpose == "TREAT"
        assert entry.detail == "bulk export; level=patient"
    expected: dict[str, set[str]] = {}
    for resource in found["Observation"]:
        expected.setdefault(str(compartment(resource)), set()).add(resource["id"])
    assert by_patient == expected
    assert runtime.audit_verification(actor.tenant_id).ok


def test_a_patient_exports_only_their_own_compartment(
    runtime: Runtime, client: TestClient, seeded: DemoLogins
) -> None:
    user = next(u for u in seeded.users if u.tenant == SLUG and u.role is Role.PATIENT)
    for path in ("/fhir/$export", "/fhir/Patient/$export"):
        found = export_all(runtime, client, path, user.token)
        assert [p["id"] for p in found["Patient"]] == [user.patient_id]
        assert found.get("Observation")
        for rtype, resources in found.items():
            if rtype in DIRECTORY_TYPES:
                assert path == "/fhir/$export"  # a patient-level export holds no directory
                continue
            assert {compartment(r) for r in resources} == {user.patient_id}, rtype


def test_a_practice_admin_exports_no_clinical_types(
    runtime: Runtime, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTICE_ADMIN)
    found = export_all(runtime, client, "/fhir/$export", token)
    assert found
    assert set(found) <= set(DIRECTORY_TYPES)
    bad = client.get("/fhir/$export?_type=Patient", headers=auth(token, **ASYNC))
    assert bad.status_code == 403
    patients = client.get("/fhir/Patient/$export", headers=auth(token, **ASYNC))
    assert patients.status_code == 202  # allowed, and empty: no compartment type is theirs
    status_path = patients.headers["content-location"].removeprefix("http://testserver")
    manifest = finish(runtime, client, status_path, token)
    assert manifest["output"] == []


def test_group_export_holds_the_members_compartments(
    runtime: Runtime, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    patients = client.get("/fhir/Patient", headers=auth(token)).json()["entry"]
    member = patients[0]["resource"]["id"]
    group = {"resourceType": "Group", "type": "person", "actual": True,
             "member": [{"entity": {"reference": f"Patient/{member}"}}]}  # fmt: skip
    created = client.post("/fhir/Group", json=group, headers=auth(token))
    assert created.status_code == 201, created.text
    found = export_all(runtime, client, f"/fhir/Group/{created.json()['id']}/$export", token)
    assert [p["id"] for p in found["Patient"]] == [member]
    for resources in found.values():
        assert {compartment(r) for r in resources} == {member}
    assert "Group" not in found
    assert "Practitioner" not in found

    missing = client.get("/fhir/Group/no-such-group/$export", headers=auth(token, **ASYNC))
    assert missing.status_code == 404
    patient = next(u for u in seeded.users if u.tenant == SLUG and u.role is Role.PATIENT)
    refused = client.get(
        f"/fhir/Group/{created.json()['id']}/$export", headers=auth(patient.token, **ASYNC)
    )
    assert refused.status_code == 403


def test_only_the_requester_sees_the_job(
    runtime: Runtime, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    status_path = kick_off(client, "/fhir/$export", token, {"_type": "Patient"})
    manifest = finish(runtime, client, status_path, token)
    url = manifest["output"][0]["url"].removeprefix("http://testserver")
    others = [token_of(seeded, Role.STAFF), token_of(seeded, Role.PRACTITIONER, "northlab")]
    for other in others:
        assert client.get(status_path, headers=auth(other)).status_code == 404
        assert client.get(url, headers=auth(other)).status_code == 404
        assert client.delete(status_path, headers=auth(other)).status_code == 404
    assert client.get(url).status_code == 401
    assert len(download(client, manifest["output"][0]["url"], token)) == PATIENTS


def test_delete_cancels_and_removes_the_files(
    runtime: Runtime, settings: Settings, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    status_path = kick_off(client, "/fhir/$export", token)
    cancelled = client.delete(status_path, headers=auth(token))
    assert cancelled.status_code == 202
    assert runtime.exports.wait(job_of(status_path), WAIT_SECONDS)
    assert client.get(status_path, headers=auth(token)).status_code == 404
    assert not (settings.home / "exports" / job_of(status_path)).exists()

    finished = kick_off(client, "/fhir/$export", token, {"_type": "Patient"})
    manifest = finish(runtime, client, finished, token)
    assert (settings.home / "exports" / job_of(finished) / "Patient.ndjson").exists()
    assert client.delete(finished, headers=auth(token)).status_code == 202
    assert not (settings.home / "exports" / job_of(finished)).exists()
    url = manifest["output"][0]["url"].removeprefix("http://testserver")
    assert client.get(url, headers=auth(token)).status_code == 404
    assert client.delete(finished, headers=auth(token)).status_code == 404


def test_jobs_expire_an_hour_after_they_end(
    runtime: Runtime,
    settings: Settings,
    client: TestClient,
    clock: ManualClock,
    seeded: DemoLogins,
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    status_path = kick_off(client, "/fhir/$export", token, {"_type": "Patient,Observation"})
    manifest = finish(runtime, client, status_path, token)
    folder = settings.home / "exports" / job_of(status_path)
    assert len(list(folder.iterdir())) == 2
    clock.advance(timedelta(minutes=59))
    assert client.get(status_path, headers=auth(token)).status_code == 200
    clock.advance(timedelta(minutes=2))
    assert client.get(status_path, headers=auth(token)).status_code == 404
    assert not folder.exists()
    url = manifest["output"][0]["url"].removeprefix("http://testserver")
    assert client.get(url, headers=auth(token)).status_code == 404


def test_a_job_that_cannot_finish_fails_cleanly(
    runtime: Runtime, settings: Settings, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    actor = runtime.identity.authenticate(token)
    shredded = next(p for p in seeded.users if p.role is Role.PATIENT and p.tenant == SLUG)
    assert shredded.patient_id is not None
    assert runtime.vault.shred(actor.tenant_id, patient_key_name(shredded.patient_id))
    status_path = kick_off(client, "/fhir/$export", token, {"_type": "Patient"})
    assert runtime.exports.wait(job_of(status_path), WAIT_SECONDS)
    failed = client.get(status_path, headers=auth(token))
    assert failed.status_code == 500
    assert failed.json()["resourceType"] == "OperationOutcome"
    assert not (settings.home / "exports" / job_of(status_path)).exists()


def test_an_export_with_nothing_in_it_completes_empty(
    runtime: Runtime, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    status_path = kick_off(client, "/fhir/$export", token, {"_since": "2030-01-01T00:00:00Z"})
    assert finish(runtime, client, status_path, token)["output"] == []


def test_a_running_job_answers_202_with_progress(
    runtime: Runtime, client: TestClient, seeded: DemoLogins
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    actor = runtime.identity.authenticate(token)
    # A job another process is running: its row is all this process knows of it.
    row = {"tenant_id": actor.tenant_id, "job_id": "elsewhere", "user_id": actor.user_id,
           "level": "system", "state": "running", "request_url": "http://testserver/fhir/$export",
           "transaction_time": "2026-11-23T09:00:00.000000Z", "progress": 42}  # fmt: skip
    with runtime.writer.begin() as conn:
        conn.execute(insert(export_jobs), row)
    pending = client.get("/fhir/bulk-status/elsewhere", headers=auth(token))
    assert pending.status_code == 202
    assert pending.headers["x-progress"] == "running: 42 resources exported"
    assert pending.headers["retry-after"] == "2"
    assert pending.content == b""
    assert (
        client.get("/fhir/bulk-files/elsewhere/Patient.ndjson", headers=auth(token)).status_code
        == 404
    )


@pytest.mark.parametrize(
    ("path", "params", "headers"),
    [
        ("/fhir/$export", {}, {}),  # no Prefer: respond-async
        ("/fhir/$export", {"_outputFormat": "text/csv"}, ASYNC),
        ("/fhir/$export", {"_typeFilter": "Observation?code=1"}, ASYNC),
        ("/fhir/$export", {"patient": "Patient/1"}, ASYNC),
        ("/fhir/$export", {"_type": "Nope"}, ASYNC),
        ("/fhir/$export", {"_type": "Patient,,Observation"}, ASYNC),
        ("/fhir/$export", {"_since": "last tuesday"}, ASYNC),
        ("/fhir/$export", {"_since": "2024-01-01T00:00:00"}, ASYNC),  # no time zone
        ("/fhir/Patient/$export", {"_type": "Practitioner"}, ASYNC),
    ],
)
def test_bad_kick_offs_are_400(
    runtime: Runtime,
    client: TestClient,
    seeded: DemoLogins,
    path: str,
    params: dict[str, str],
    headers: dict[str, str],
) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    response = client.get(path, params=params, headers=auth(token, **headers))
    assert response.status_code == 400, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "content-location" not in response.headers


def test_kick_off_needs_a_token_and_the_capability_statement_lists_export(
    client: TestClient, seeded: DemoLogins
) -> None:
    assert client.get("/fhir/$export", headers=ASYNC).status_code == 401
    assert client.get("/fhir/bulk-status/whatever").status_code == 401
    operations = client.get("/fhir/metadata").json()["rest"][0]["operation"]
    assert {
        "name": "export",
        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    } in operations


def test_unknown_jobs_are_404(client: TestClient, seeded: DemoLogins) -> None:
    token = token_of(seeded, Role.PRACTITIONER)
    assert client.get("/fhir/bulk-status/nope", headers=auth(token)).status_code == 404
    assert (
        client.get("/fhir/bulk-files/nope/Patient.ndjson", headers=auth(token)).status_code == 404
    )


def test_files_are_chunked_and_tampering_is_caught(runtime: Runtime, tmp_path: Path) -> None:
    tenant = runtime.identity.create_tenant("chunky", "Chunky", TenantKind.PRACTICE).tenant_id
    payload = b"".join(b'{"n":%d}\n' % i for i in range(300_000))  # several 1 MiB chunks
    path = tmp_path / "f.ndjson"
    writer = SealedWriter(runtime.vault, tenant, path, "job|f.ndjson")
    writer.write(payload)
    writer.close()
    assert b"".join(read_sealed(runtime.vault, tenant, path, "job|f.ndjson")) == payload
    with pytest.raises(BrokenFile):  # under another name
        b"".join(read_sealed(runtime.vault, tenant, path, "job|g.ndjson"))
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])  # cut short
    with pytest.raises(BrokenFile):
        b"".join(read_sealed(runtime.vault, tenant, path, "job|f.ndjson"))
