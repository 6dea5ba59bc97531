"""Export through the gate (`Gate.export`) and the `carevault export` command: NDJSON files
equal to what the API reads, owner-only files, per-patient audit entries, `--type` and
`--since`, deletions left out, refusals; on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import stat
from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from rich.console import Console
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.clock import ManualClock, isoformat
from carevault.demo.seed import DemoLogins, seed_demo
from carevault.errors import Conflict, Forbidden, Invalid
from carevault.fhir_types import DIRECTORY_TYPES, PATIENT_COMPARTMENT
from carevault.identity.models import system_actor
from carevault.identity.permissions import Role
from carevault.runtime import Runtime
from carevault.settings import Settings
from carevault.transfer.export_command import export_tenant
from tests.cli_process import run_cli

SEED, PATIENTS = 11, 3
SLUG = "riverside"


def quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture
def seeded(runtime: Runtime) -> DemoLogins:
    return seed_demo(runtime, seed=SEED, patients_per_tenant=PATIENTS, console=quiet())


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def tenant_id(rt: Runtime, slug: str = SLUG) -> str:
    return rt.identity.tenant_by_slug(slug).tenant_id


def export_entries(rt: Runtime, tenant: str) -> list[Any]:
    with rt.reader.connect() as conn:
        return list(
            conn.execute(
                select(audit_entries).where(
                    audit_entries.c.tenant_id == tenant, audit_entries.c.action == "export"
                )
            )
        )


def test_cli_export_files_equal_the_api_reads(
    runtime: Runtime, settings: Settings, client: TestClient, seeded: DemoLogins, tmp_path: Path
) -> None:
    out = tmp_path / "export"
    done = run_cli(settings, "export", "--tenant", SLUG, "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    files = sorted(out.iterdir())
    assert {f.name for f in files} >= {"Patient.ndjson", "Observation.ndjson", "Encounter.ndjson"}
    token = seeded.user(SLUG, Role.PRACTITIONER).token
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        rtype = path.name.removesuffix(".ndjson")
        lines = read_ndjson(path)
        # every live resource of the type, once; in the summary table with its count
        search = client.get(f"/fhir/{rtype}", params={"_count": "1"}, headers=auth(token))
        assert search.json()["total"] == len(lines) == len({r["id"] for r in lines}), rtype
        assert f"{rtype} {len(lines)} {path.name}" in " ".join(done.stdout.split())
        for resource in lines:
            assert resource["resourceType"] == rtype
            read = client.get(f"/fhir/{rtype}/{resource['id']}", headers=auth(token))
            assert read.status_code == 200, read.text
            assert read.json() == resource


def test_cli_export_refuses_an_existing_directory_and_unknown_types(
    runtime: Runtime, settings: Settings, seeded: DemoLogins, tmp_path: Path
) -> None:
    taken = tmp_path / "taken"
    taken.mkdir()
    done = run_cli(settings, "export", "--tenant", SLUG, "--out", str(taken))
    assert done.returncode == 2
    assert "exists already" in done.stderr
    fresh = tmp_path / "fresh"
    done = run_cli(settings, "export", "--tenant", SLUG, "--out", str(fresh), "--type", "Nope")
    assert done.returncode == 2
    assert "not served" in done.stderr
    assert "Traceback" not in done.stderr
    assert not fresh.exists()  # nothing is created before the export is decided


def test_every_patient_in_a_batch_gets_an_audit_entry(
    runtime: Runtime, seeded: DemoLogins, tmp_path: Path
) -> None:
    tenant = tenant_id(runtime)
    before = len(export_entries(runtime, tenant))
    # small batches: several batches per type, each audited before it leaves the gate
    summary = export_tenant(runtime, SLUG, tmp_path / "out", console=quiet(), batch_size=4)
    entries = export_entries(runtime, tenant)[before:]
    assert entries
    named: set[tuple[str | None, str, str]] = set()
    for entry in entries:
        patients = orjson.loads(entry.patient_ids)
        assert len(patients) <= 1  # one entry per patient (or one for the rest)
        assert entry.outcome == "success"
        assert entry.actor_id == "system:ndjson export"
        for rid in orjson.loads(entry.resource_ids):
            named.add((patients[0] if patients else None, entry.resource_type, rid))
    exported: set[tuple[str | None, str, str]] = set()
    for rtype in summary.counts:
        for resource in read_ndjson(summary.file(rtype)):
            exported.add((compartment(resource), rtype, resource["id"]))
    assert named == exported
    assert {p for p, _, _ in exported if p} == {
        r["id"] for r in read_ndjson(summary.file("Patient"))
    }
    assert runtime.audit_verification(tenant).ok


def compartment(resource: dict[str, Any]) -> str | None:
    """The patient whose compartment holds a resource, read from the element FHIR names for
    it (None for directory types), independently of the store's own bookkeeping."""
    rtype = resource["resourceType"]
    if rtype == "Patient":
        return str(resource["id"])
    path = PATIENT_COMPARTMENT.get(rtype)
    if path is None:
        return None
    nodes: list[Any] = [resource]
    for step in path.split("."):
        values = [node.get(step) for node in nodes if isinstance(node, dict)]
        nodes = [v for value in values for v in (value if isinstance(value, list) else [value])]
    references = [n.get("reference", "") for n in nodes if isinstance(n, dict)]
    patients = {r.removeprefix("Patient/") for r in references if r.startswith("Patient/")}
    assert len(patients) <= 1
    return next(iter(patients), None)


def test_batches_of_any_size_give_the_same_export(
    runtime: Runtime, seeded: DemoLogins, tmp_path: Path
) -> None:
    whole = export_tenant(runtime, SLUG, tmp_path / "whole", console=quiet())
    small = export_tenant(runtime, SLUG, tmp_path / "small", console=quiet(), batch_size=3)
    assert whole.counts == small.counts
    for rtype in whole.counts:
        assert whole.file(rtype).read_bytes() == small.file(rtype).read_bytes()


def test_types_since_and_deletions(
    runtime: Runtime, clock: ManualClock, seeded: DemoLogins, tmp_path: Path
) -> None:
    tenant = tenant_id(runtime)
    gate = runtime.gate(system_actor(tenant, "test export"))
    only = export_tenant(
        runtime, SLUG, tmp_path / "two", types=["Patient", "Observation"], console=quiet()
    )
    assert set(only.counts) == {"Patient", "Observation"}
    observations = read_ndjson(only.file("Observation"))
    patients = read_ndjson(only.file("Patient"))

    clock.advance(timedelta(minutes=5))
    cutoff = isoformat(clock.now())
    clock.advance(timedelta(minutes=5))
    changed = dict(patients[0], gender="other")
    gate.update("Patient", changed["id"], changed)
    gate.delete("Observation", observations[0]["id"])

    later = export_tenant(runtime, SLUG, tmp_path / "since", since=cutoff, console=quiet())
    assert later.counts == {"Patient": 1}  # a deletion is a change, but not exported
    (exported,) = read_ndjson(later.file("Patient"))
    assert exported["id"] == changed["id"]
    assert exported["gender"] == "other"
    assert exported["meta"]["versionId"] == "2"

    everything = export_tenant(runtime, SLUG, tmp_path / "after", console=quiet())
    ids = {r["id"] for r in read_ndjson(everything.file("Observation"))}
    assert observations[0]["id"] not in ids
    assert len(ids) == len(observations) - 1


def test_an_export_sees_only_what_the_actor_may_read(runtime: Runtime, seeded: DemoLogins) -> None:
    tenant = tenant_id(runtime)
    patient_user = next(u for u in seeded.users if u.tenant == SLUG and u.role is Role.PATIENT)
    patient = runtime.identity.authenticate(patient_user.token)
    (mine,) = patient.patient_ids
    counts: Counter[str] = Counter()
    for batch in runtime.gate(patient).export():
        counts[batch.resource_type] += len(batch.bodies)
        for body in batch.bodies:
            resource = orjson.loads(body)
            if batch.resource_type not in DIRECTORY_TYPES:
                assert compartment(resource) == mine
    assert counts["Patient"] == 1
    assert counts["Observation"] > 0
    assert "Group" not in counts

    admin = runtime.identity.authenticate(seeded.user(SLUG, Role.PRACTICE_ADMIN).token)
    types = {b.resource_type for b in runtime.gate(admin).export()}
    assert types
    assert types <= set(DIRECTORY_TYPES)
    with pytest.raises(Forbidden):
        runtime.gate(admin).export(["Observation"])
    with pytest.raises(Invalid):
        runtime.gate(admin).export(["Nope"])
    with pytest.raises(Invalid):
        runtime.gate(admin).export(since="yesterday")
    refusals = [e for e in export_entries(runtime, tenant) if e.outcome != "success"]
    assert [e.status for e in refusals][-3:] == [403, 400, 400]


def test_export_refuses_an_existing_directory(
    runtime: Runtime, seeded: DemoLogins, tmp_path: Path
) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(Conflict):
        export_tenant(runtime, SLUG, tmp_path / "out", console=quiet())
