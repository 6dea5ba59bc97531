"""Import of FHIR NDJSON and Bundle files through the gate, on SQLite and PostgreSQL: the
Synthea sets, conditional references, broken lines under `abort` and `skip`, Bundles,
re-import, and the `carevault import` command end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from carevault.errors import Forbidden
from carevault.identity.models import system_actor
from carevault.identity.permissions import Role
from carevault.privacy.gate import Gate
from carevault.privacy.importer import ImportReport, OnError
from carevault.runtime import Runtime
from carevault.settings import Settings
from carevault.transfer.sources import expand
from tests.conftest import Clinic, make_site
from tests.shared_data import DATA

SYNTHEA_10 = DATA / "synthea-10"
SYNTHEA_100 = DATA / "synthea-100"
NPI = "http://hl7.org/fhir/sid/us-npi"
DIRECTORY_FILES = ("Organization", "Location", "Practitioner", "PractitionerRole", "Patient")
NOT_JSON = b'{"resourceType": "Encounter", "id": "broken-1", "status": '
SECRET_NAME = "Zebulon-Quistgaard"


def needs(folder: Path) -> None:
    if not folder.is_dir():
        pytest.skip(f"{folder} is not there (shared/data beside the repository)")


def import_gate(runtime: Runtime, tenant_id: str) -> Gate:
    return runtime.gate(system_actor(tenant_id, "import"))


def run_import(runtime: Runtime, tenant_id: str, *paths: Path, **kw: Any) -> ImportReport:
    return import_gate(runtime, tenant_id).import_resources(expand(list(paths)).sources, **kw)


def lines_per_type(*files: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for path in files:
        for line in path.read_bytes().splitlines():
            try:
                counts[json.loads(line)["resourceType"]] += 1
            except (json.JSONDecodeError, TypeError, KeyError):
                continue  # not a resource: the import refuses it
    return counts


def stored_per_type(runtime: Runtime, tenant_id: str) -> Counter[str]:
    with runtime.reader.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT resource_type, count(*) FROM resources "
                "WHERE tenant_id = :t AND deleted = false GROUP BY resource_type"
            ),
            {"t": tenant_id},
        )
        return Counter({rtype: int(count) for rtype, count in rows})


def import_audits(runtime: Runtime, tenant_id: str) -> list[dict[str, Any]]:
    with runtime.reader.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT outcome, resource_type, resource_ids, patient_ids, detail "
                "FROM audit_entries WHERE tenant_id = :t AND action = 'import' ORDER BY seq"
            ),
            {"t": tenant_id},
        ).mappings()
        return [
            {**row, "resource_ids": json.loads(row["resource_ids"]),
             "patient_ids": json.loads(row["patient_ids"])}
            for row in rows
        ]  # fmt: skip


def write_subset(folder: Path, encounters: int = 30) -> Path:
    """A small Synthea set: the directory types and patients whole, the first encounters."""
    folder.mkdir(parents=True, exist_ok=True)
    for rtype in DIRECTORY_FILES:
        (folder / f"{rtype}.ndjson").write_bytes((SYNTHEA_10 / f"{rtype}.000.ndjson").read_bytes())
    with (SYNTHEA_10 / "Encounter.000.ndjson").open("rb") as source:
        head = [next(source) for _ in range(encounters)]
    (folder / "Encounter.ndjson").write_bytes(b"".join(head))
    return folder


def npi_practitioner(npi: str) -> str:
    """The id of the Synthea Practitioner that carries this NPI."""
    for line in (SYNTHEA_10 / "Practitioner.000.ndjson").read_bytes().splitlines():
        body = json.loads(line)
        if any(i.get("system") == NPI and i.get("value") == npi for i in body["identifier"]):
            return str(body["id"])
    raise AssertionError(f"no Practitioner with NPI {npi}")


# -- the Synthea sets ------------------------------------------------------------------


def test_synthea_10_imports_cleanly_with_conditional_references_resolved(
    runtime: Runtime, client: TestClient
) -> None:
    needs(SYNTHEA_10)
    site = make_site(runtime, "north")
    before = stored_per_type(runtime, site.tenant_id)
    expansion = expand([SYNTHEA_10])
    assert [Path(s.split(":")[0]).name for s in expansion.skipped] == ["log.ndjson"]

    report = import_gate(runtime, site.tenant_id).import_resources(expansion.sources)

    expected = lines_per_type(*SYNTHEA_10.glob("[A-Z]*.ndjson"))
    assert sum(expected.values()) == 7160
    assert [str(r) for r in report.refused] == []
    assert report.written == expected
    assert stored_per_type(runtime, site.tenant_id) - before == expected

    # Audited per batch and type: every written id once, and the patients named.
    audits = [a for a in import_audits(runtime, site.tenant_id) if a["outcome"] == "success"]
    audited = Counter(a["resource_type"] for a in audits for _ in a["resource_ids"])
    assert audited == expected
    encounter_audits = [a for a in audits if a["resource_type"] == "Encounter"]
    assert all(a["patient_ids"] for a in encounter_audits)

    # A conditional reference, read back through the API, names the Practitioner by its NPI.
    first = json.loads((SYNTHEA_10 / "Encounter.000.ndjson").open("rb").readline())
    conditional = first["participant"][0]["individual"]
    assert conditional["reference"].startswith("Practitioner?identifier=")
    npi = conditional["reference"].rsplit("|", 1)[1]
    response = client.get(f"/fhir/Encounter/{first['id']}", headers=site.headers())
    assert response.status_code == 200, response.text
    individual = response.json()["participant"][0]["individual"]
    assert individual == {
        "reference": f"Practitioner/{npi_practitioner(npi)}",
        "display": conditional["display"],
    }
    location = response.json()["location"][0]["location"]["reference"]
    assert location.startswith("Location/")
    assert client.get(f"/fhir/{location}", headers=site.headers()).status_code == 200


@pytest.mark.slow
def test_synthea_100_needs_the_operators_word_for_references_it_does_not_carry(
    runtime: Runtime, request: pytest.FixtureRequest
) -> None:
    """synthea-100 is a partial export: most Immunizations name Encounters it does not hold.
    By default those lines are refused; with keep_unresolved everything imports."""
    needs(SYNTHEA_100)
    if "slow" not in (request.config.getoption("-m") or ""):
        pytest.skip("the 3,306-resource set runs under -m slow")
    site = make_site(runtime, "north")
    refused = run_import(runtime, site.tenant_id, SYNTHEA_100)
    assert refused.aborted
    assert refused.total_written == 0
    assert {r.reason for r in refused.refused} == {
        "a reference to Encounter names no resource in this import or the tenant"
    }
    assert {Path(r.source).name for r in refused.refused} == {"Immunization.000.ndjson"}

    report = run_import(runtime, site.tenant_id, SYNTHEA_100, keep_unresolved=True)
    expected = lines_per_type(*SYNTHEA_100.glob("*.ndjson"))
    assert [str(r) for r in report.refused] == []
    assert report.written == expected
    assert report.unresolved_kept == Counter({"Encounter": len(refused.refused)})


def test_unresolved_references_are_kept_only_when_asked(
    runtime: Runtime, clinic: Clinic, tmp_path: Path
) -> None:
    """A partial export names resources it does not carry. Refused by default; kept with
    keep_unresolved, except the patient whose compartment holds the resource."""
    site = clinic.north
    immunization = {
        "resourceType": "Immunization", "id": "imm-1", "status": "completed",
        "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
        "patient": {"reference": f"Patient/{site.patient_id}"},
        "encounter": {"reference": "Encounter/elsewhere"},
        "occurrenceDateTime": "2024-01-01T10:00:00Z",
    }  # fmt: skip
    orphan = {**immunization, "id": "imm-2", "patient": {"reference": "Patient/nobody"}}
    path = tmp_path / "Immunization.ndjson"
    path.write_text(json.dumps(immunization) + "\n" + json.dumps(orphan) + "\n")

    refused = run_import(runtime, site.tenant_id, path, on_error=OnError.SKIP)
    assert [(r.position, r.reason) for r in refused.refused] == [
        (1, "a reference to Encounter names no resource in this import or the tenant"),
        (2, "a reference to Encounter names no resource in this import or the tenant"),
    ]
    kept = run_import(runtime, site.tenant_id, path, on_error=OnError.SKIP, keep_unresolved=True)
    assert [(r.position, r.reason) for r in kept.refused] == [
        (2, "a reference to Patient names no resource in this import or the tenant")
    ]
    assert kept.written == Counter({"Immunization": 1})
    assert kept.unresolved_kept == Counter({"Encounter": 1})


# -- bad input -------------------------------------------------------------------------


def with_bad_lines(folder: Path) -> Path:
    """The subset's Encounter file with line 3 cut short and line 5 an invalid Encounter
    (whose display carries a name that must not appear in any message)."""
    path = folder / "Encounter.ndjson"
    lines = path.read_bytes().splitlines()
    invalid = json.loads(lines[4])
    invalid["status"] = "bogus"
    invalid["subject"]["display"] = SECRET_NAME
    lines[2] = NOT_JSON
    lines[4] = json.dumps(invalid).encode()
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_a_broken_line_under_abort_writes_nothing(runtime: Runtime, tmp_path: Path) -> None:
    needs(SYNTHEA_10)
    site = make_site(runtime, "north")
    before = stored_per_type(runtime, site.tenant_id)
    encounters = with_bad_lines(write_subset(tmp_path / "in"))

    report = run_import(runtime, site.tenant_id, tmp_path / "in")

    assert report.aborted
    assert [(Path(r.source), r.position) for r in report.refused] == [
        (encounters, 3),
        (encounters, 5),
    ]
    assert report.refused[0].reason == "not valid JSON"
    assert "Encounter.status" in report.refused[1].reason
    assert all(SECRET_NAME not in str(r) and "bogus" not in str(r) for r in report.refused)
    assert report.total_written == 0
    assert stored_per_type(runtime, site.tenant_id) == before
    audits = import_audits(runtime, site.tenant_id)
    assert [(a["outcome"], a["resource_ids"], a["patient_ids"]) for a in audits] == [
        ("invalid", [], [])
    ]  # the refusal itself, naming no resource: none was written


def test_a_broken_line_under_skip_imports_the_rest(runtime: Runtime, tmp_path: Path) -> None:
    needs(SYNTHEA_10)
    site = make_site(runtime, "north")
    before = stored_per_type(runtime, site.tenant_id)
    folder = write_subset(tmp_path / "in")
    encounters = with_bad_lines(folder)

    report = run_import(runtime, site.tenant_id, folder, on_error=OnError.SKIP)

    assert not report.aborted
    assert [(Path(r.source), r.position) for r in report.refused] == [
        (encounters, 3),
        (encounters, 5),
    ]
    expected = lines_per_type(*folder.glob("*.ndjson")) - Counter({"Encounter": 1})
    assert report.written == expected  # line 3 (not JSON) is in no count, line 5 is taken off
    assert stored_per_type(runtime, site.tenant_id) - before == expected
    with runtime.reader.connect() as conn:
        ids = {row[0] for row in conn.execute(
            text("SELECT resource_id FROM resources WHERE tenant_id = :t "
                 "AND resource_type = 'Encounter'"), {"t": site.tenant_id})}  # fmt: skip
    bad_id = json.loads(encounters.read_bytes().splitlines()[4])["id"]
    assert bad_id not in ids
    assert "broken-1" not in ids
    assert len(ids) == 28


def test_a_refusal_reaches_what_depends_on_it(runtime: Runtime, tmp_path: Path) -> None:
    """Under skip, an Encounter whose Patient line was refused is refused too (its reference
    would resolve to nothing), and the reason says so without naming anyone."""
    needs(SYNTHEA_10)
    site = make_site(runtime, "north")
    folder = write_subset(tmp_path / "in")
    patients = folder / "Patient.ndjson"
    lines = patients.read_bytes().splitlines()
    first_encounter = json.loads((folder / "Encounter.ndjson").open("rb").readline())
    owner = first_encounter["subject"]["reference"].split("/")[1]
    at = next(i for i, line in enumerate(lines) if json.loads(line)["id"] == owner)
    lines[at] = b"[]"
    patients.write_bytes(b"\n".join(lines) + b"\n")
    owned = [
        n for n, line in enumerate((folder / "Encounter.ndjson").read_bytes().splitlines(), 1)
        if json.loads(line)["subject"]["reference"] == f"Patient/{owner}"
    ]  # fmt: skip

    report = run_import(runtime, site.tenant_id, folder, on_error=OnError.SKIP)

    refused = {(Path(r.source).name, r.position): r.reason for r in report.refused}
    assert refused.pop(("Patient.ndjson", at + 1)) == "not a FHIR resource (a JSON object)"
    assert set(refused) == {("Encounter.ndjson", n) for n in owned}
    assert set(refused.values()) == {
        "a reference to Patient names no resource in this import or the tenant"
    }


def test_an_unreadable_bundle_is_refused_whole(runtime: Runtime, tmp_path: Path) -> None:
    site = make_site(runtime, "north")
    path = tmp_path / "broken.json"
    path.write_text('{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": ')
    report = run_import(runtime, site.tenant_id, path, on_error=OnError.SKIP)
    assert [str(r) for r in report.refused] == [f"{path}: not valid JSON"]
    assert report.total_written == 0


# -- Bundles and re-import -------------------------------------------------------------


def test_a_bundle_file_imports_with_its_urn_references(
    runtime: Runtime, client: TestClient, tmp_path: Path
) -> None:
    site = make_site(runtime, "north")
    patient_urn = "urn:uuid:6c1f6d1e-3b0e-4d0c-9d53-5a0b2f0e7a11"
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": "urn:uuid:0a3c4f7e-1111-4c5d-8e9f-aaaaaaaaaaaa",
             "resource": {"resourceType": "Organization", "id": "org-harbor",
                          "name": "Harbor Lab",
                          "identifier": [{"system": "urn:test:org", "value": "H-1"}]},
             "request": {"method": "PUT", "url": "Organization/org-harbor"}},
            {"fullUrl": patient_urn,
             "resource": {"resourceType": "Patient", "gender": "female",
                          "managingOrganization": {
                              "reference": "Organization?identifier=urn:test:org|H-1"}},
             "request": {"method": "POST", "url": "Patient"}},
            {"fullUrl": "urn:uuid:7d2e1c3b-2222-4f6a-9b8c-bbbbbbbbbbbb",
             "resource": {"resourceType": "Encounter", "id": "enc-1", "status": "finished",
                          "class": {"code": "AMB"}, "subject": {"reference": patient_urn}},
             "request": {"method": "PUT", "url": "Encounter/enc-1"}},
        ],
    }  # fmt: skip
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(bundle))

    report = run_import(runtime, site.tenant_id, path)

    assert [str(r) for r in report.refused] == []
    assert report.written == Counter({"Organization": 1, "Patient": 1, "Encounter": 1})
    patient_id = patient_urn.removeprefix("urn:uuid:")
    encounter = client.get("/fhir/Encounter/enc-1", headers=site.headers()).json()
    assert encounter["subject"] == {"reference": f"Patient/{patient_id}"}
    patient = client.get(f"/fhir/Patient/{patient_id}", headers=site.headers()).json()
    assert patient["managingOrganization"] == {"reference": "Organization/org-harbor"}


def test_reimport_keeps_ids_and_content_as_new_versions(
    runtime: Runtime, client: TestClient, tmp_path: Path
) -> None:
    needs(SYNTHEA_10)
    site = make_site(runtime, "north")
    folder = write_subset(tmp_path / "in", encounters=10)
    first = run_import(runtime, site.tenant_id, folder)
    counts = stored_per_type(runtime, site.tenant_id)
    encounter_id = json.loads((folder / "Encounter.ndjson").open("rb").readline())["id"]
    was = client.get(f"/fhir/Encounter/{encounter_id}", headers=site.headers()).json()

    again = run_import(runtime, site.tenant_id, folder)

    assert again.refused == []
    assert again.written == first.written
    assert stored_per_type(runtime, site.tenant_id) == counts  # same ids: nothing new
    now = client.get(f"/fhir/Encounter/{encounter_id}", headers=site.headers()).json()
    assert (was["meta"]["versionId"], now["meta"]["versionId"]) == ("1", "2")
    assert {**now, "meta": {}} == {**was, "meta": {}}
    assert {k: v for k, v in now["meta"].items() if k not in ("versionId", "lastUpdated")} == {
        k: v for k, v in was["meta"].items() if k not in ("versionId", "lastUpdated")
    }
    with runtime.reader.connect() as conn:
        tokens = conn.execute(
            text("SELECT count(*) FROM search_tokens WHERE tenant_id = :t "
                 "AND resource_type = 'Encounter' AND resource_id = :r"),
            {"t": site.tenant_id, "r": encounter_id},
        ).scalar_one()  # fmt: skip
    assert tokens > 0  # the index rows were replaced, not lost


def test_a_role_without_write_permission_imports_nothing(
    runtime: Runtime, clinic: Clinic, tmp_path: Path
) -> None:
    """The gate decides per type: a practice admin may write the directory, not Patients."""
    needs(SYNTHEA_10)
    folder = write_subset(tmp_path / "in", encounters=0)
    (folder / "Encounter.ndjson").unlink()
    admin = runtime.identity.authenticate(clinic.north.tokens[Role.PRACTICE_ADMIN.value])
    gate = runtime.gate(admin)
    report = gate.import_resources(expand([folder]).sources, on_error=OnError.SKIP)
    refused = Counter(Path(r.source).name for r in report.refused)
    assert refused == Counter({"Patient.ndjson": 13})
    assert {r.reason for r in report.refused} == {
        "your role and token do not allow write on Patient"
    }
    assert report.written == lines_per_type(*folder.glob("*.ndjson")) - Counter({"Patient": 13})


def test_a_patient_cannot_import(runtime: Runtime, clinic: Clinic, tmp_path: Path) -> None:
    """An actor held to one patient's records may not write for the whole tenant."""
    path = tmp_path / "Patient.ndjson"
    path.write_text('{"resourceType": "Patient", "id": "p-new", "gender": "other"}\n')
    patient = runtime.identity.authenticate(clinic.north.tokens[Role.PATIENT.value])
    before = stored_per_type(runtime, clinic.north.tenant_id)
    with pytest.raises(Forbidden):
        runtime.gate(patient).import_resources(expand([path]).sources)
    assert stored_per_type(runtime, clinic.north.tenant_id) == before
    audits = import_audits(runtime, clinic.north.tenant_id)
    assert [(a["outcome"], a["resource_ids"]) for a in audits] == [("denied", [])]


INDEX_TABLES = ("search_tokens", "search_dates", "search_refs", "search_quantities")


def index_rows(runtime: Runtime, tenant_id: str, rtype: str, rid: str) -> dict[str, list[Any]]:
    found = {}
    with runtime.reader.connect() as conn:
        for table in INDEX_TABLES:
            rows = conn.execute(
                text(f"SELECT * FROM {table} WHERE tenant_id = :t AND resource_type = :rt "
                     "AND resource_id = :r"), {"t": tenant_id, "rt": rtype, "r": rid},
            ).mappings()  # fmt: skip
            found[table] = sorted(
                sorted((k, str(v)) for k, v in row.items() if k != "resource_id") for row in rows
            )
    return found


def test_an_imported_resource_is_indexed_as_the_api_indexes_it(
    runtime: Runtime, clinic: Clinic, tmp_path: Path
) -> None:
    """The bulk path writes the same search rows as the one-by-one store (a guard against
    the two drifting apart when a kind of index row is added)."""
    body = {
        "resourceType": "Observation", "status": "final",
        "subject": {"reference": f"Patient/{clinic.north.patient_id}"},
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "identifier": [{"system": "urn:test", "value": "OBS-1"}],
        "effectiveDateTime": "2024-03-05T10:00:00Z",
        "valueQuantity": {"value": 72.5, "unit": "/min", "system": "http://unitsofmeasure.org",
                          "code": "/min"},
        "meta": {"tag": [{"system": "urn:test", "code": "imported"}]},
    }  # fmt: skip
    gate = import_gate(runtime, clinic.north.tenant_id)
    gate.update("Observation", "via-api", {**body, "id": "via-api"})
    path = tmp_path / "Observation.ndjson"
    path.write_text(json.dumps({**body, "id": "via-import"}) + "\n")
    assert gate.import_resources(expand([path]).sources).refused == []
    via_api = index_rows(runtime, clinic.north.tenant_id, "Observation", "via-api")
    assert all(via_api[table] for table in INDEX_TABLES)  # each kind is exercised
    assert index_rows(runtime, clinic.north.tenant_id, "Observation", "via-import") == via_api


def test_a_batch_that_cannot_be_written_writes_nothing(runtime: Runtime, clinic: Clinic) -> None:
    """The bulk path's own reference check (the tenant may change between the check and the
    write): the batch names the row it refuses, and its transaction keeps nothing."""
    from carevault.records.bulk_write import BulkWriter, References, RowRefused

    tenant_id = clinic.north.tenant_id
    subject = {"reference": f"Patient/{clinic.north.patient_id}"}
    bodies = [
        {"resourceType": "Condition", "id": "c-ok", "subject": subject},
        {"resourceType": "Condition", "id": "c-bad", "subject": subject,
         "encounter": {"reference": "Encounter/not-there"}},
    ]  # fmt: skip
    writer = BulkWriter(runtime.vault)
    with pytest.raises(RowRefused) as refused, runtime.writer.begin() as conn:
        writer.write_batch(conn, tenant_id, "Condition", bodies, "2026-01-01T00:00:00.000000Z",
                           References(set()))  # fmt: skip
    assert refused.value.index == 1
    assert "Encounter" in refused.value.message
    assert stored_per_type(runtime, tenant_id)["Condition"] == 0
    with runtime.writer.begin() as conn:
        known = References({("Encounter", "not-there")})
        versions = writer.write_batch(conn, tenant_id, "Condition", bodies,
                                      "2026-01-01T00:00:00.000000Z", known)  # fmt: skip
    assert [(v.resource_id, v.version_id, v.patient_id) for v in versions] == [
        ("c-ok", 1, clinic.north.patient_id),
        ("c-bad", 1, clinic.north.patient_id),
    ]
    assert stored_per_type(runtime, tenant_id)["Condition"] == 2


# -- the command -----------------------------------------------------------------------


def test_the_import_command_end_to_end(
    runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    needs(SYNTHEA_10)
    site = make_site(runtime, "north")
    folder = write_subset(tmp_path / "in", encounters=5)
    with_bad_lines(folder)
    env = {**os.environ, "CAREVAULT_HOME": str(settings.home), "COLUMNS": "200"}
    if settings.database_url:
        env["CAREVAULT_DATABASE_URL"] = settings.database_url
    cli = Path(sys.executable).parent / "carevault"

    def carevault(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(cli), *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    aborted = carevault("import", str(folder), "--tenant", "north")
    assert aborted.returncode == 1, aborted.stderr
    assert f"{folder / 'Encounter.ndjson'}:3: not valid JSON" in aborted.stderr
    assert "nothing was written" in aborted.stderr
    assert "Traceback" not in aborted.stderr

    done = carevault("import", str(folder), "--tenant", "north", "--on-error", "skip")
    assert done.returncode == 1, done.stderr
    assert f"{folder / 'Encounter.ndjson'}:5: " in done.stderr
    assert SECRET_NAME not in done.stderr + done.stdout
    written = sum(lines_per_type(*folder.glob("*.ndjson")).values()) - 1
    assert f"{written} resources imported" in done.stderr
    assert stored_per_type(runtime, site.tenant_id)["Encounter"] == 3

    clean = carevault("import", str(folder / "Patient.ndjson"), "--tenant", "north")
    assert clean.returncode == 0, clean.stderr
    unknown = carevault("import", str(folder), "--tenant", "nowhere")
    assert unknown.returncode == 2
    assert "Traceback" not in unknown.stderr
