"""De-identified aggregates: `carevault deid aggregate` and `POST /fhir/$deid-aggregate` on
Synthea patients, small cells suppressed, refused when the policy does not allow the
purpose, and every release (and refusal) recorded and audited."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.deid.aggregates import aggregate
from carevault.deid.fhir.export import tenant_policy
from carevault.errors import Forbidden
from carevault.policy import PrivacyPolicy, parse_policy, policies_dir
from carevault.privacy.deid_release import releases
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.cli_process import run_cli
from tests.integration.deid_fixtures import SLUG, Loaded, load_synthea, synthea_subset


@pytest.fixture(scope="module")
def subset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synthea_subset(tmp_path_factory.mktemp("synthea-agg"), 4)


@pytest.fixture
def loaded(runtime: Runtime, subset: Path) -> Loaded:
    return load_synthea(runtime, subset)


def _aggregate_entries(runtime: Runtime, tenant_id: str) -> list[object]:
    with runtime.reader.connect() as conn:
        return list(conn.execute(select(audit_entries).where(
            audit_entries.c.tenant_id == tenant_id,
            audit_entries.c.actor_id == "system:de-identified aggregate",
        )))  # fmt: skip


def test_cli_aggregate_suppresses_small_cells_and_records_the_release(
    runtime: Runtime, settings: Settings, loaded: Loaded, tmp_path: Path
) -> None:
    out = tmp_path / "agg.json"
    by = "condition,age_band,state"
    done = run_cli(settings, "deid", "aggregate", "--tenant", SLUG, "--by", by,
                   "--purpose", "research", "--out", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(out.read_text())
    assert document["by"] == ["condition", "age_band", "state"]
    assert document["small_cell"] == 11
    assert document["cells"]
    assert all(c["count"] is None or c["count"] >= 11 for c in document["cells"])
    assert all(c["suppressed"] for c in document["cells"])  # 6 patients: every cell is small
    assert document["population"] is None  # fewer than 11 patients in all
    (release,) = releases(runtime.gate_services, loaded.site.tenant_id)
    assert release["kind"] == "aggregate"
    assert release["purpose"] == "research"
    assert release["release_id"] == document["release_id"]
    entries = _aggregate_entries(runtime, loaded.site.tenant_id)
    released = [e for e in entries if "kind=aggregate" in (e.detail or "")]  # type: ignore[attr-defined]
    assert released
    assert all(e.purpose == "HRESCH" for e in entries)  # type: ignore[attr-defined]


def test_large_cells_are_released_with_rates(runtime: Runtime, loaded: Loaded) -> None:
    document = aggregate(runtime, tenant_policy(runtime), loaded.site.tenant_id, ["sex"],
                         "research", partition_patients=2)  # fmt: skip
    assert document["population"] is None or document["population"] >= 11
    by_sex = {c["sex"]: c for c in document["cells"]}
    assert set(by_sex) <= {"male", "female"}
    # the same counts with a small-cell threshold of 1: everything shows, rates add up
    policy = _policy(small_cell=1)
    shown = aggregate(runtime, policy, loaded.site.tenant_id, ["sex"], "research")
    assert sum(c["count"] for c in shown["cells"]) == shown["population"] == 6
    assert round(sum(c["rate_per_1000"] for c in shown["cells"])) == 1000


def _policy(*, purposes: list[str] | None = None, small_cell: int = 11) -> PrivacyPolicy:
    document = yaml.safe_load((policies_dir() / "default.yaml").read_text())
    document["deidentified"] = {"purposes": ["research"] if purposes is None else purposes,
                                "small_cell": small_cell}  # fmt: skip
    return parse_policy(yaml.safe_dump(document))


def test_refused_when_the_policy_does_not_allow_the_purpose(
    runtime: Runtime, settings: Settings, loaded: Loaded, tmp_path: Path
) -> None:
    with pytest.raises(Forbidden):
        aggregate(runtime, _policy(purposes=[]), loaded.site.tenant_id, ["sex"], "research")
    done = run_cli(settings, "deid", "aggregate", "--tenant", SLUG, "--by", "sex",
                   "--purpose", "marketing", "--out", str(tmp_path / "a.json"))  # fmt: skip
    assert done.returncode != 0
    assert "does not allow" in done.stderr
    assert not (tmp_path / "a.json").exists()
    assert releases(runtime.gate_services, loaded.site.tenant_id) == []
    refused = [e for e in _aggregate_entries(runtime, loaded.site.tenant_id)
               if e.outcome == "denied"]  # type: ignore[attr-defined]  # fmt: skip
    assert len(refused) == 2


def test_the_api_operation_is_for_the_privacy_officer(
    runtime: Runtime, client: TestClient, loaded: Loaded
) -> None:
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "by", "valueString": "age_band,sex"},
        {"name": "purpose", "valueString": "research"}]}  # fmt: skip
    answer = client.post("/fhir/$deid-aggregate", json=body,
                         headers=loaded.site.headers("privacy-officer"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    assert answer.json()["by"] == ["age_band", "sex"]
    assert answer.json()["release_id"]
    refused = client.post("/fhir/$deid-aggregate", json=body,
                          headers=loaded.site.headers("practitioner"))  # fmt: skip
    assert refused.status_code == 403
    assert refused.json()["resourceType"] == "OperationOutcome"
    bad = client.post("/fhir/$deid-aggregate", json={"by": "shoe-size"},
                      headers=loaded.site.headers("privacy-officer"))  # fmt: skip
    assert bad.status_code == 400
    (release,) = releases(runtime.gate_services, loaded.site.tenant_id)
    assert release["detail"]["requested_by"] != "system:de-identified aggregate"
