"""A tenant holding the Synthea 10-patient set (plus the fixture's two patients), shared by
the de-identification integration tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from carevault.identity.models import system_actor
from carevault.runtime import Runtime
from carevault.transfer.sources import expand
from tests.conftest import Site, make_site
from tests.shared_data import DATA

SYNTHEA_10 = DATA / "synthea-10"
SLUG = "north"


@dataclass
class Loaded:
    site: Site
    patients: list[dict[str, Any]]
    """The original Patient resources (Synthea's and the fixture's)."""


def synthea_subset(folder: Path, patients: int) -> Path:
    """The first `patients` Synthea patients with everything of theirs, and the directory."""
    lines = (SYNTHEA_10 / "Patient.000.ndjson").read_text().splitlines()[:patients]
    ids = [json.loads(line)["id"] for line in lines]
    folder.mkdir(parents=True, exist_ok=True)
    for source in SYNTHEA_10.glob("[A-Z]*.ndjson"):
        kept = [line for line in source.read_text().splitlines()
                if source.name.startswith(("Practitioner", "Organization", "Location"))
                or any(i in line for i in ids)]  # fmt: skip
        (folder / source.name).write_text("\n".join(kept) + "\n")
    return folder


def load_synthea(runtime: Runtime, source: Path = SYNTHEA_10) -> Loaded:
    """Import the Synthea files of `source` (the whole set, or a subset) into a new tenant."""
    if not SYNTHEA_10.is_dir():
        pytest.skip(f"{SYNTHEA_10} is not there (shared/data beside the repository)")
    site = make_site(runtime, SLUG)
    gate = runtime.gate(system_actor(site.tenant_id, "import"))
    report = gate.import_resources(expand([source]).sources)
    assert not report.refused
    patients = [json.loads(line) for line in
                (source / "Patient.000.ndjson").read_text().splitlines() if line]  # fmt: skip
    for pid in (site.patient_id, site.other_patient_id):
        patients.append(orjson.loads(gate.read("Patient", pid).body or b"{}"))
    return Loaded(site, patients)


def identifying_values(patient: dict[str, Any]) -> list[str]:
    """What must not appear in a Safe Harbor extract, straight from the original Patient."""
    found = [patient["id"], patient.get("birthDate", "")]
    for name in patient.get("name", []):
        found += [name.get("family", ""), *name.get("given", [])]
    found += [i["value"] for i in patient.get("identifier", [])]
    found += [t["value"] for t in patient.get("telecom", [])]
    for address in patient.get("address", []):
        found += address.get("line", [])
    return [v for v in found if len(v) >= 4]


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]
