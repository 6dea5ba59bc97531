"""`carevault deid export` on the Synthea 10-patient set, through the gate, on SQLite and
PostgreSQL: NDJSON and Parquet extracts with their report, the residual scan failing on a
planted identifier, stable pseudonyms per project, and the same job on a Dask LocalCluster."""

from __future__ import annotations

import base64
import hashlib
import json
import stat
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.deid.fhir.export import ExportOptions, ResidualFound, export
from carevault.deid.fhir.job import close_worker_runtimes, export_actor
from carevault.deid.fhir.profile import load_profile
from carevault.errors import Forbidden
from carevault.identity.models import system_actor
from carevault.privacy.deid_models import deid_pseudonyms
from carevault.privacy.deid_pseudonyms import DeidPseudonyms
from carevault.privacy.deid_release import releases
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.cli_process import run_cli
from tests.integration.deid_fixtures import (
    SLUG,
    Loaded,
    identifying_values,
    load_synthea,
    read_ndjson,
    synthea_subset,
)
from tests.unit.deid.notes_model import NAMES, TRAINED, small_model


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three Synthea patients: the whole set is exported once, by the first test."""
    return synthea_subset(tmp_path_factory.mktemp("synthea-3"), 3)


@pytest.fixture
def loaded(runtime: Runtime, subset: Path) -> Loaded:
    return load_synthea(runtime, subset)


@pytest.fixture
def loaded_all(runtime: Runtime) -> Loaded:
    return load_synthea(runtime)


def _report(out: Path) -> dict[str, Any]:
    return dict(json.loads((out / "deid-report.json").read_text()))


def _all_text(out: Path) -> str:
    """Every output file, with base64 notes decoded, as one string."""
    parts = []
    for path in sorted(out.glob("*.ndjson")):
        for body in read_ndjson(path):
            parts.append(orjson.dumps(body).decode())
            for content in body.get("content", []):
                data = content.get("attachment", {}).get("data")
                if data:
                    parts.append(base64.b64decode(data).decode())
    return "\n".join(parts)


def test_cli_safe_harbor_ndjson_on_synthea(
    runtime: Runtime, settings: Settings, loaded_all: Loaded, tmp_path: Path
) -> None:
    loaded = loaded_all
    out = tmp_path / "extract"
    done = run_cli(settings, "deid", "export", "--tenant", SLUG, "--profile", "safe-harbor",
                   "--format", "ndjson", "--out", str(out), timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    report = _report(out)
    assert report["status"] == "complete"
    assert report["patients"] == len(loaded.patients) == 15
    assert report["residual_scan"]["clean"] is True
    assert report["profile"]["name"] == "safe-harbor"
    assert report["profile"]["sha256"] == load_profile("safe-harbor").sha256
    assert report["counts"]["removed"]["name"] > 0
    assert report["counts"]["removed"]["identifier:SS"] == 13
    assert report["counts"]["transformed"]["date"] > 1000
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert set(report["files"]) == {p.name for p in out.glob("*.ndjson")}
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600

    text = _all_text(out)
    for patient in loaded.patients:
        for value in identifying_values(patient):
            assert value not in text, "an original identifying value is in the extract"
    patients = read_ndjson(out / "Patient.ndjson")
    assert all(len(p.get("birthDate", "")) in (0, 4) for p in patients)
    assert all(len(a.get("postalCode", "")) in (0, 3) for p in patients
               for a in p.get("address", []))  # fmt: skip
    codes = {p["id"] for p in patients}
    for path in out.glob("*.ndjson"):
        for body in read_ndjson(path):
            subject = body.get("subject") or body.get("patient")
            if subject:
                assert subject["reference"].removeprefix("Patient/") in codes

    # audited: the reads per patient (as the named system actor, HRESCH) and the release
    with runtime.reader.connect() as conn:
        entries = conn.execute(select(audit_entries).where(
            audit_entries.c.tenant_id == loaded.site.tenant_id,
            audit_entries.c.actor_id == "system:de-identification export",
        )).all()  # fmt: skip
    reads = [e for e in entries if e.action == "export" and e.patient_ids != "[]"]
    assert reads
    assert all(e.purpose == "HRESCH" for e in entries)
    assert any("de-identified release" in (e.detail or "") for e in entries)
    (release,) = releases(runtime.gate_services, loaded.site.tenant_id)
    assert release["kind"] == "export"
    assert release["project"] == "default"
    assert release["detail"]["files"] == report["files"]


def test_cli_parquet_with_a_data_dictionary(
    settings: Settings, loaded: Loaded, tmp_path: Path
) -> None:
    import pyarrow.dataset as ds

    out = tmp_path / "extract"
    done = run_cli(settings, "deid", "export", "--tenant", SLUG, "--format", "parquet",
                   "--out", str(out), timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = _report(out)
    dictionary = json.loads((out / "data-dictionary.json").read_text())
    assert {c["name"] for c in dictionary["columns"]} >= {"id", "patient", "code", "resource"}
    for rtype, count in report["resources_per_type"].items():
        table = ds.dataset(out / rtype, format="parquet").to_table()
        assert table.num_rows == count
        assert table.schema.names == [c["name"] for c in dictionary["columns"]]
    patients = ds.dataset(out / "Patient", format="parquet").to_table().to_pylist()
    assert {p["zip"] for p in patients} <= {None, "000"} | {f"{n:03d}" for n in range(1000)}
    assert all(json.loads(p["resource"])["id"] == p["id"] == p["patient"] for p in patients)


def test_the_residual_scan_fails_an_export_whose_profile_keeps_a_name(
    runtime: Runtime, settings: Settings, loaded: Loaded, tmp_path: Path
) -> None:
    shipped = Path(load_profile.__code__.co_filename).parent / "profiles" / "safe-harbor.toml"
    leaky = tmp_path / "leaky.toml"
    leaky.write_text(shipped.read_text().replace(
        "rules = [\n", 'rules = [\n  ["Patient.name", "keep", "name"],\n', 1))  # fmt: skip
    out = tmp_path / "extract"
    done = run_cli(settings, "deid", "export", "--tenant", SLUG, "--profile", str(leaky),
                   "--out", str(out), timeout=300)  # fmt: skip
    assert done.returncode == 1
    assert "residual scan found" in done.stderr
    assert sorted(p.name for p in out.iterdir()) == ["deid-report.json"]  # nothing else left
    report = _report(out)
    assert report["status"] == "failed"
    kinds = {f["kind"] for f in report["residual_scan"]["findings"]}
    assert kinds == {"name"}
    names = [n["family"] for p in loaded.patients for n in p.get("name", [])]
    assert not any(name in json.dumps(report) for name in names)  # no PHI in the report
    assert releases(runtime.gate_services, loaded.site.tenant_id) == []


def _plant_note(runtime: Runtime, loaded: Loaded, text: str) -> None:
    """A message about the fixture's patient whose text is ``text``."""
    gate = runtime.gate(system_actor(loaded.site.tenant_id, "test fixture"))
    gate.create("Communication", {
        "resourceType": "Communication", "status": "completed",
        "subject": {"reference": f"Patient/{loaded.site.patient_id}"},
        "payload": [{"contentString": text}],
    })  # fmt: skip


def test_a_name_planted_in_a_note_is_masked_even_where_the_scrubber_misses_it(
    runtime: Runtime, loaded: Loaded, tmp_path: Path
) -> None:
    other = loaded.patients[0]["name"][0]["family"]  # a Synthea patient's surname
    _plant_note(runtime, loaded, f"neighbour {other} and Quintero called from 555-0142")
    report = export(runtime, ExportOptions(SLUG, tmp_path / "x"))
    assert report.status == "complete"
    (message,) = read_ndjson(tmp_path / "x" / "Communication.ndjson")
    text = message["payload"][0]["contentString"]
    assert other not in text
    assert "Quintero" not in text
    assert "0142" not in text


def test_an_export_with_a_notes_model_scrubs_what_it_finds_and_names_it_in_the_report(
    runtime: Runtime, loaded: Loaded, tmp_path: Path
) -> None:
    model = small_model(tmp_path / "notes.crf")
    new = next(n for n in NAMES if n not in TRAINED).upper()
    _plant_note(runtime, loaded, f"QUIET SHIFT. TALKED WITH {new} AT THE DESK.")
    rules = export(runtime, ExportOptions(SLUG, tmp_path / "rules"))
    both = export(runtime, ExportOptions(SLUG, tmp_path / "both", notes_model=model))
    assert rules.status == both.status == "complete"

    def message(out: Path) -> str:
        (found,) = read_ndjson(out / "Communication.ndjson")
        return str(found["payload"][0]["contentString"])

    assert new in message(tmp_path / "rules")  # the rules alone cannot tell it is a name
    assert new not in message(tmp_path / "both")
    assert "[NAME]" in message(tmp_path / "both")
    assert _report(tmp_path / "rules")["free_text"] == {"detector": "rules"}
    assert _report(tmp_path / "both")["free_text"] == {
        "detector": "rules+model", "model": "notes.crf",
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
    }  # fmt: skip


def test_an_export_refuses_a_notes_model_it_cannot_read(
    runtime: Runtime, loaded: Loaded, tmp_path: Path
) -> None:
    from carevault.errors import Invalid

    junk = tmp_path / "junk.crf"
    junk.write_bytes(b"not a model" * 20)
    for model in (junk, tmp_path / "absent.crf"):
        with pytest.raises(Invalid, match="train one"):
            export(runtime, ExportOptions(SLUG, tmp_path / "x", notes_model=model))
        assert not (tmp_path / "x").exists()
    assert releases(runtime.gate_services, loaded.site.tenant_id) == []


def test_cli_export_names_an_unreadable_notes_model_and_writes_nothing(
    settings: Settings, loaded: Loaded, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.crf"
    junk.write_bytes(b"not a model" * 20)
    out = tmp_path / "extract"
    done = run_cli(settings, "deid", "export", "--tenant", SLUG, "--out", str(out),
                   "--notes-model", str(junk))  # fmt: skip
    assert done.returncode != 0
    assert "notes model cannot be read" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert not out.exists()


def test_an_age_observation_over_89_is_capped_and_counted_in_the_report(
    runtime: Runtime, loaded: Loaded, tmp_path: Path
) -> None:
    gate = runtime.gate(system_actor(loaded.site.tenant_id, "test fixture"))
    subject = {"reference": f"Patient/{loaded.site.patient_id}"}
    months = {"value": 1100, "unit": "mo", "code": "mo", "system": "http://unitsofmeasure.org"}
    for value in ({"valueQuantity": months}, {"valueString": "ninety-one"}):
        gate.create("Observation", {
            "resourceType": "Observation", "status": "final", "subject": subject,
            "code": {"coding": [{"system": "http://loinc.org", "code": "30525-0"}]}, **value,
        })  # fmt: skip
    baseline = export(runtime, ExportOptions(SLUG, tmp_path / "lds", profile="limited-data-set"))
    report = export(runtime, ExportOptions(SLUG, tmp_path / "x"))
    assert report.status == "complete"
    assert report.residual_scan["clean"] is True
    assert report.counts["transformed"]["age"] >= 1
    assert report.counts["removed"]["age"] >= 1
    ages = [o for o in read_ndjson(tmp_path / "x" / "Observation.ndjson")
            if o["code"]["coding"][0].get("code") == "30525-0"]  # fmt: skip
    capped = {"value": 90, "comparator": ">=", "unit": "a", "code": "a",
              "system": "http://unitsofmeasure.org"}  # fmt: skip
    assert capped in [o.get("valueQuantity") for o in ages]
    assert not any("ninety-one" in json.dumps(o) for o in ages)
    # the limited data set keeps ages (164.514(e)), as it keeps every *Age
    assert baseline.status == "complete"
    assert not baseline.counts["removed"].get("age")
    kept = [o.get("valueQuantity") for o in read_ndjson(tmp_path / "lds" / "Observation.ndjson")]
    assert months in kept


def _ids(out: Path) -> set[str]:
    return {b["id"] for path in out.glob("*.ndjson") for b in read_ndjson(path)}


def test_pseudonyms_are_stable_within_a_project_and_differ_across_projects(
    runtime: Runtime, loaded: Loaded, tmp_path: Path
) -> None:
    first = export(runtime, ExportOptions(SLUG, tmp_path / "a1", project="study-a"))
    again = export(runtime, ExportOptions(SLUG, tmp_path / "a2", project="study-a"))
    other = export(runtime, ExportOptions(SLUG, tmp_path / "b", project="study-b"))
    assert first.resources == again.resources == other.resources
    assert _ids(tmp_path / "a1") == _ids(tmp_path / "a2")
    assert not _ids(tmp_path / "a1") & _ids(tmp_path / "b")
    codes = {p["id"] for p in read_ndjson(tmp_path / "a1" / "Patient.ndjson")}
    assert all(len(c) == 32 for c in codes)
    assert not codes & {p["id"] for p in loaded.patients}
    # the tenant can re-identify (its sealed table); no one else reaches it
    store, actor = DeidPseudonyms(runtime.gate_services), export_actor(loaded.site.tenant_id)
    project = store.project(actor, "study-a", create=False)
    originals = {store.reidentify(actor, project, code) for code in codes}
    assert originals == {p["id"] for p in loaded.patients}
    practitioner = runtime.identity.authenticate(loaded.site.tokens["practitioner"])
    with pytest.raises(Forbidden):
        store.project(practitioner, "study-a", create=False)
    with runtime.reader.connect() as conn:
        sealed = conn.execute(select(deid_pseudonyms.c.sealed)).scalars().all()
    assert sealed
    assert not any(code.encode() in blob for code in codes for blob in sealed)


def test_the_limited_data_set_keeps_dates_and_zip(
    runtime: Runtime, loaded: Loaded, tmp_path: Path
) -> None:
    report = export(runtime, ExportOptions(SLUG, tmp_path / "lds", profile="limited-data-set"))
    assert report.status == "complete"
    patients = read_ndjson(tmp_path / "lds" / "Patient.ndjson")
    births = {p.get("birthDate") for p in patients}
    assert births & {p.get("birthDate") for p in loaded.patients} - {None}
    zips = {a.get("postalCode") for p in patients for a in p.get("address", [])}
    assert any(z and len(z) >= 5 for z in zips)
    assert not any("name" in p or "telecom" in p or "identifier" in p for p in patients)


def test_the_same_job_on_a_dask_local_cluster(
    runtime: Runtime, loaded: Loaded, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster:  # fmt: skip
        address = cluster.scheduler_address
        options = ExportOptions(SLUG, tmp_path / "dask", project="p", dask=address,
                                partition_patients=3)  # fmt: skip
        on_cluster = export(runtime, options)
    here = export(runtime, ExportOptions(SLUG, tmp_path / "here", project="p"))
    assert on_cluster.status == "complete"
    assert on_cluster.partitions == 2
    assert on_cluster.patients == here.patients
    assert on_cluster.resources == here.resources
    for path in (tmp_path / "here").glob("*.ndjson"):
        assert sorted(path.read_bytes().splitlines()) == sorted(
            (tmp_path / "dask" / path.name).read_bytes().splitlines()
        )


def test_an_export_refuses_an_existing_directory_and_an_unknown_format(
    runtime: Runtime, loaded: Loaded, tmp_path: Path
) -> None:
    from carevault.errors import Conflict, Invalid

    with pytest.raises(Conflict):
        export(runtime, ExportOptions(SLUG, tmp_path))
    with pytest.raises(Invalid):
        export(runtime, ExportOptions(SLUG, tmp_path / "x", fmt="csv"))
    assert not (tmp_path / "x").exists()
    assert ResidualFound.__doc__


def test_cli_dask_workers_open_their_own_runtime(
    settings: Settings, loaded: Loaded, tmp_path: Path
) -> None:
    """`--dask tcp://…` from the command: the workers (threads of this test process, which
    registered no runtime) open the data folder themselves, as a remote worker would."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  protocol="tcp", dashboard_address=None) as cluster:  # fmt: skip
        out = tmp_path / "extract"
        try:
            done = run_cli(settings, "deid", "export", "--tenant", SLUG, "--out", str(out),
                           "--dask", cluster.scheduler_address, timeout=300)  # fmt: skip
        finally:
            close_worker_runtimes()
    assert done.returncode == 0, done.stderr
    report = _report(out)
    assert report["status"] == "complete"
    assert report["dask_scheduler"].startswith("tcp://")
    assert report["patients"] == len(loaded.patients)
