"""De-identification promises, each under its seed's profile: aggregates suppress small cells
(and the partners that would give them away), identify no one, are released only to the
tenant's own privacy officer and only for a purpose the policy names; extracts follow Safe
Harbor and say so in their report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from carevault.privacy.deid_release import releases
from tests.disclosure_helpers import (
    consent,
    disclose,
    draft,
    ledger,
    observation,
    patient_totp,
    refused,
    released,
    sign,
    signed_authorization,
)
from tests.promises.conftest import Deployment
from tests.promises.lifecycle_steps import Profiled, carevault, create, patient, recipient, user_id

ALICE_VALUES = ("Quintero", "Alicia", "MRN-ALICE-1", "1984-03-17", "555-0142",
                "alicia.q@example.org", "12 Lantern Row", "01101")  # fmt: skip


def cohort(dep: Deployment) -> list[str]:
    """North's practitioner records a cohort; with the fixture's Alice (female) and Bob
    (male): female 15, male 4, other 12, one of them over 89."""
    north = dep.clinic.north
    ids = [create(dep, north, patient("female", "MA")) for _ in range(13)]
    ids.append(create(dep, north, patient("female", "MA", birth="1930-02-01")))
    ids += [create(dep, north, patient("male", "MA")) for _ in range(3)]
    ids += [create(dep, north, patient("other", "MA")) for _ in range(12)]
    return ids


def aggregate(dep: Deployment, by: str, purpose: str, role: str = "privacy-officer",
              site: str = "north") -> Any:  # fmt: skip
    where = dep.clinic.north if site == "north" else dep.clinic.south
    body = {"resourceType": "Parameters", "parameter": [
        {"name": "by", "valueString": by},
        {"name": "purpose", "valueString": purpose}]}  # fmt: skip
    return dep.client.post("/fhir/$deid-aggregate", json=body, headers=where.headers(role))


def small_cells_are_suppressed(dep: Deployment, purpose: str) -> dict[str, Any]:
    cohort(dep)
    answer = aggregate(dep, "sex", purpose)
    assert answer.status_code == 200, answer.text
    document: dict[str, Any] = answer.json()
    assert document["small_cell"] == 11
    cells = {c["sex"]: c for c in document["cells"]}
    assert cells["male"]["count"] is None  # 4 people: fewer than 11
    assert cells["male"]["suppressed"] is True
    # the grand total is released, so the smallest partner goes too, or male = total - rest
    assert document["population"] == 31
    assert cells["other"]["count"] is None
    assert cells["female"]["count"] == 15
    assert all(c["count"] is None or c["count"] >= 11 for c in document["cells"])
    assert document["suppression"] == {"primary": 1, "complementary": 1}
    margins = {m["value"]: m["count"] for m in document["margins"]["sex"]}
    assert margins["male"] is None
    return document


@pytest.mark.promise("HS-31")
def test_healthsoft_aggregates_do_not_identify_anyone(profiled: Profiled) -> None:
    dep = profiled("healthsoft")
    document = small_cells_are_suppressed(dep, "research")
    text = json.dumps(document)
    for value in (dep.clinic.north.patient_id, *ALICE_VALUES):
        assert value not in text


@pytest.mark.promise("IH-12")
def test_ihr_health_aggregate_information_identifies_no_one(profiled: Profiled) -> None:
    small_cells_are_suppressed(profiled("ihr-health"), "product-development")


@pytest.mark.promise("LI-39")
def test_lifeimage_aggregates_come_from_a_sufficiently_large_group(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    small_cells_are_suppressed(dep, "health-trends")
    # a two-way table of the same people: every cell under 11 is hidden
    answer = aggregate(dep, "sex,age_band", "health-trends")
    assert answer.status_code == 200, answer.text
    shown = [c for c in answer.json()["cells"] if not c["suppressed"]]
    assert all(c["count"] >= 11 for c in shown)
    assert any(c["suppressed"] for c in answer.json()["cells"])


@pytest.mark.promise("LI-38")
def test_lifeimage_aggregated_deidentified_data_cannot_contact_or_identify(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    ids = cohort(dep)
    answer = aggregate(dep, "age_band,sex,state", "health-trends")
    assert answer.status_code == 200, answer.text
    document = answer.json()
    text = json.dumps(document)
    for value in (*ids, dep.clinic.north.patient_id, *ALICE_VALUES, "1930"):
        assert value not in text  # no id, name, contact, full date or birth year
    bands = {c["age_band"] for c in document["cells"]}
    assert "90+" in bands  # ages over 89 are one band (Safe Harbor)
    assert all(c["count"] is None or c["count"] >= 11 for c in document["cells"])
    # only for the purpose the policy names: trends yes, anything else no
    assert aggregate(dep, "sex", "marketing").status_code == 403


@pytest.mark.promise("HS-32")
def test_healthsoft_deidentified_phi_only_as_the_provider_authorizes(
    profiled: Profiled,
) -> None:
    dep = profiled("healthsoft")
    north, south = dep.clinic.north, dep.clinic.south
    cohort(dep)
    for role in ("vendor-operator", "practitioner", "staff", "practice-admin", "patient"):
        refused = aggregate(dep, "sex", "research", role=role)
        assert refused.status_code in (401, 403), (role, refused.text)
    assert releases(dep.runtime.gate_services, north.tenant_id) == []
    # the provider's own privacy officer authorizes and receives it, recorded as a release
    done = aggregate(dep, "sex", "research")
    assert done.status_code == 200, done.text
    (release,) = releases(dep.runtime.gate_services, north.tenant_id)
    assert release["detail"]["requested_by"] == user_id(dep, north, "privacy-officer")
    assert release["release_id"] == done.json()["release_id"]
    # another provider's officer releases only its own patients, never north's
    theirs = aggregate(dep, "sex", "research", site="south")
    assert theirs.status_code == 200, theirs.text
    assert sum(c["count"] or 0 for c in theirs.json()["cells"]) < 11
    assert theirs.json()["population"] is None  # south holds 2 patients: all suppressed
    assert len(releases(dep.runtime.gate_services, north.tenant_id)) == 1
    assert len(releases(dep.runtime.gate_services, south.tenant_id)) == 1


@pytest.mark.promise("AM-07")
def test_allmeds_anonymized_phi_follows_safe_harbor(profiled: Profiled, tmp_path: Path) -> None:
    dep = profiled("allmeds")
    north = dep.clinic.north
    create(dep, north, {"resourceType": "Observation", "status": "final",
                        "code": {"text": "glucose"}, "effectiveDateTime": "2024-05-02",
                        "subject": {"reference": f"Patient/{north.patient_id}"}})  # fmt: skip
    out = tmp_path / "extract"
    done = carevault(dep, "deid", "export", "--tenant", "north", "--profile", "safe-harbor",
                     "--purpose", "service-improvement", "--out", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    report = json.loads((out / "deid-report.json").read_text())
    assert report["status"] == "complete"
    assert report["profile"]["name"] == "safe-harbor"
    assert report["residual_scan"]["clean"] is True
    text = "\n".join(p.read_text() for p in sorted(out.glob("*.ndjson")))
    for value in (north.patient_id, north.other_patient_id, *ALICE_VALUES, "MRN-BOB-2",
                  "Okafor", "1950-11-02"):  # fmt: skip
        assert value not in text
    people = [json.loads(line) for line in (out / "Patient.ndjson").read_text().splitlines()]
    assert len(people) == 2
    assert all(len(p.get("birthDate", "")) in (0, 4) for p in people)  # the year only
    assert all(len(a.get("postalCode", "")) in (0, 3) for p in people
               for a in p.get("address", []))  # fmt: skip
    (observation,) = [json.loads(x) for x in (out / "Observation.ndjson").read_text().splitlines()]
    assert observation.get("effectiveDateTime", "2024")[:4] == "2024"
    assert len(observation.get("effectiveDateTime", "2024")) == 4
    # a purpose the policy does not name is refused, and nothing is written
    refused = carevault(dep, "deid", "export", "--tenant", "north", "--purpose", "research",
                        "--out", str(tmp_path / "refused"))  # fmt: skip
    assert refused.exit_code != 0
    assert not (tmp_path / "refused").exists()
    assert [r["purpose"] for r in releases(dep.runtime.gate_services, north.tenant_id)] == [
        "service-improvement"
    ]


@pytest.mark.promise("IH-05")
def test_ihr_health_partners_get_aggregated_non_identifiable_data(
    profiled: Profiled,
) -> None:
    dep = profiled("ihr-health")
    cohort(dep)
    done = aggregate(dep, "age_band,sex", "product-development")
    assert done.status_code == 200, done.text
    assert all(c["count"] is None or c["count"] >= 11 for c in done.json()["cells"])
    for purpose in ("research", "marketing", "health-trends"):
        assert aggregate(dep, "sex", purpose).status_code == 403
    north = dep.clinic.north
    # a co-development partner receives no identified record, whatever the basis
    partner = recipient(dep, north, "bus", "Co-Dev Labs", klass="co-development-partners")
    us = recipient(dep, north, "prov", "North Clinic")
    named = observation(dep.runtime, north, when="2024-06-01")
    cid = signed_authorization(
        dep.client, dep.runtime, north, consent(north, partner, us, data=(named,))
    )
    out = disclose(dep.client, north, "authorization", partner, role="staff", purpose="PATRQT",
                   info=(named,), authorization=cid)  # fmt: skip
    assert "releases nothing of the patient's record" in refused(dep.runtime, north, out, 403, 0)
    assert [r["purpose"] for r in releases(dep.runtime.gate_services, north.tenant_id)] == [
        "product-development"
    ]


@pytest.mark.promise("HS-13")
def test_healthsoft_research_identified_only_with_consent_otherwise_deidentified(
    profiled: Profiled,
) -> None:
    dep = profiled("healthsoft")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    cohort(dep)
    lab = recipient(dep, north, "edu", "University Lab")
    us = recipient(dep, north, "prov", "North Clinic")
    named = observation(rt, north, when="2024-06-01")
    # identified, with no consent on file: refused, nothing released
    no_consent = disclose(client, north, "research", lab, info=(named,), purpose="HRESCH")
    refused(rt, north, no_consent, 422, 0)
    unsigned = disclose(client, north, "authorization", lab, info=(named,), purpose="HRESCH")
    assert unsigned.status_code in (403, 422), unsigned.text
    assert ledger(rt, north) == []
    # otherwise: de-identified, aggregated, for research
    aggregated = aggregate(dep, "sex", "research")
    assert aggregated.status_code == 200, aggregated.text
    # with the patient's signed consent to the research use, the identified record goes
    cid = signed_authorization(
        client, rt, north, consent(north, lab, us, data=(named,), purpose="HRESCH")
    )
    done = disclose(client, north, "authorization", lab, role="staff", purpose="HRESCH",
                    info=(named,), authorization=cid)  # fmt: skip
    assert done.status_code == 200, done.text
    assert named in released(done)
    assert len(ledger(rt, north)) == 1


@pytest.mark.promise("PF-06")
def test_practice_fusion_sponsor_reports_are_deidentified(profiled: Profiled) -> None:
    dep = profiled("practice-fusion")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    cohort(dep)
    sponsor = recipient(dep, north, "bus", "Sponsor Co", klass="sponsors")
    partner = recipient(dep, north, "bus", "Trends Partner", klass="report-recipients")
    us = recipient(dep, north, "prov", "North Clinic")
    named = observation(rt, north, when="2024-06-01")
    # the report itself: de-identified, small cells suppressed, for the "reports" purpose
    report = aggregate(dep, "age_band,sex", "reports")
    assert report.status_code == 200, report.text
    assert all(c["count"] is None or c["count"] >= 11 for c in report.json()["cells"])
    # identified data to a sponsor or report recipient: not even with the patient's signature
    secret = patient_totp(client, rt, north)
    for who in (sponsor, partner):
        cid = draft(client, north, consent(north, who, us, data=(named,)))
        assert sign(client, rt, north, cid, secret).status_code == 200
        out = disclose(client, north, "authorization", who, role="staff", purpose="PATRQT",
                       info=(named,), authorization=cid)  # fmt: skip
        assert "releases nothing of the patient's record" in refused(rt, north, out, 403, 0)
    assert ledger(rt, north) == []
