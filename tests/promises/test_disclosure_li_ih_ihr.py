"""ihr.health's disclosure promises (seed 004 sections 4 and 7, policies/ihr-health.yaml): no
release is a sale; vendors, affiliates and co-development partners get nothing without the
binding agreement on file, and never the product's health data unless they are vendors under
one; analytics providers never get product data; a child's product data is PHI like any."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from carevault.policy import policies_dir
from tests.audit_rows import audit_of
from tests.cli_process import run_cli
from tests.disclosure_helpers import (
    consent,
    disclose,
    ledger,
    observation,
    organization,
    refused,
    released,
    signed_authorization,
)
from tests.promises.conftest import Deployment
from tests.promises.disclosure_steps_li import (
    accounting,
    encounter,
    fields_of,
    file_baa,
    order_id,
    tagged_organization,
)

Profiled = Callable[[str], Deployment]


@pytest.mark.promise("IH-01")
def test_no_release_is_a_sale_and_the_notice_and_the_check_say_so(
    profiled: Profiled, tmp_path: Path
) -> None:
    dep = profiled("ihr-health")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    broker = organization(rt, north, "bus", name="Data Brokers Inc")
    patient = f"Patient/{north.patient_id}"
    for basis in ("sale", "sell", "marketing"):
        answer = disclose(client, north, basis, broker, info=(patient,),
                          purpose="sold for USD 2 a record")  # fmt: skip
        assert answer.status_code == 400, answer.text
        assert "basis must be one of" in answer.text
        assert all(e["outcome"] != "success" for e in audit_of(rt, answer))
    # a data broker is no covered entity and holds no agreement: no basis carries a sale
    for basis, role in (("operations", "staff"), ("payment", "staff"),
                        ("business-associate", "privacy-officer")):  # fmt: skip
        refused(rt, north, disclose(client, north, basis, broker, role=role, info=(patient,),
                                    purpose="sold for USD 2 a record"), 403, 0)  # fmt: skip
    assert ledger(rt, north) == []

    shipped = str(policies_dir() / "ihr-health.yaml")
    notice = run_cli(rt.settings, "policy", "render", shipped)
    assert notice.returncode == 0, notice.stderr
    assert "We do not sell your personal information." in " ".join(notice.stdout.split())
    selling = tmp_path / "selling.yaml"
    text = Path(shipped).read_text(encoding="utf-8")
    assert "sells_personal_information: false" in text
    sells = text.replace("sells_personal_information: false", "sells_personal_information: true")
    selling.write_text(sells, encoding="utf-8")
    check = run_cli(rt.settings, "policy", "check", str(selling))
    assert check.returncode == 2, check.stdout
    assert "notices.no-sale" in check.stderr


@pytest.mark.promise("IH-02")
def test_shares_go_only_under_a_binding_agreement_on_file(profiled: Profiled) -> None:
    dep = profiled("ihr-health")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    visit = encounter(rt, north)
    vendor = tagged_organization(rt, north, "vendors", "Transcribe Co")
    affiliate = tagged_organization(rt, north, "affiliates", "Clouds Health Europe")
    partner = tagged_organization(rt, north, "co-development-partners", "Genome Labs")

    def ask(to: str) -> object:
        return disclose(client, north, "business-associate", to, info=(patient, visit))

    # no agreement on file: nothing to any of them
    assert "agreement" in refused(rt, north, ask(vendor), 403, 0)
    # affiliates and co-development partners receive no product health data at all, even
    # once an agreement is on file (their share is account and de-identified data only)
    for to, name in ((affiliate, "affiliates"), (partner, "co-development-partners")):
        assert file_baa(client, north, to).status_code == 201
        why = refused(rt, north, ask(to), 403, 0)
        assert f"(ihr.health) releases nothing of the patient's record to {name}" in why
    # the vendor, once its agreement is on file: cut to the operations profile
    assert file_baa(client, north, vendor).status_code == 201
    out = ask(vendor)
    assert out.status_code == 200, out.text  # type: ignore[attr-defined]
    got = released(out)
    assert fields_of(got[patient]) <= {"identifier", "gender", "birthDate"}
    assert fields_of(got[visit]) <= {"status", "class", "type", "period", "subject"}
    assert [(r.basis, r.recipient_ref) for r in ledger(rt, north)] == [
        ("business-associate", vendor),
    ]


@pytest.mark.promise("IH-04")
def test_analytics_providers_never_receive_product_data(profiled: Profiled) -> None:
    dep = profiled("ihr-health")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    analytics = tagged_organization(rt, north, "analytics", "Search & Analytics LLC")
    us = organization(rt, north, "prov", name="North Clinic")
    glucose = observation(rt, north)
    patient = f"Patient/{north.patient_id}"
    assert file_baa(client, north, analytics).status_code == 201  # even with a contract
    cid = signed_authorization(client, rt, north, consent(north, analytics, us, data=(glucose,)))
    attempts = (
        disclose(client, north, "business-associate", analytics, info=(patient, glucose)),
        disclose(client, north, "operations", analytics, role="staff", info=(patient,)),
        disclose(client, north, "authorization", analytics, role="staff", purpose="PATRQT",
                 info=(glucose,), authorization=cid),
        disclose(client, north, "business-associate", analytics, types=("Observation",)),
    )  # fmt: skip
    whys = [refused(rt, north, answer, 403, 0) for answer in attempts]
    assert "covered entity" in whys.pop(1)  # operations: the basis itself refuses them
    for why in whys:
        assert "(ihr.health) releases nothing of the patient's record to analytics" in why
    assert "glucose" not in " ".join(a.text.lower() for a in attempts)


@pytest.mark.promise("IH-15")
def test_a_childs_product_data_is_phi_under_the_same_gate(profiled: Profiled) -> None:
    dep = profiled("ihr-health")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    made = client.post("/fhir/Patient", headers=north.headers("staff"), json={
        "resourceType": "Patient", "name": [{"family": "Quintero", "given": ["Lucia"]}],
        "gender": "female", "birthDate": "2016-04-09"})  # fmt: skip
    assert made.status_code == 201, made.text
    child = made.json()["id"]
    reading = client.post("/fhir/Observation", headers=north.headers("practitioner"), json={
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7"}]},
        "subject": {"reference": f"Patient/{child}"}, "effectiveDateTime": "2024-06-01",
        "valueString": "within range"})  # fmt: skip
    assert reading.status_code == 201, reading.text
    obs = f"Observation/{reading.json()['id']}"
    # read through the gate: audited, naming the child; out of another patient's reach
    seen = client.get(f"/fhir/{obs}", headers=north.headers("practitioner"))
    assert seen.status_code == 200
    (entry,) = audit_of(rt, seen)
    assert (entry["outcome"], entry["patient_ids"]) == ("success", [child])
    assert client.get(f"/fhir/{obs}", headers=north.headers("patient")).status_code == 404
    # released only on a HIPAA basis, with its checks, and accounted for
    vendor = organization(rt, north, "bus", name="Transcribe Co")
    shared = disclose(client, north, "business-associate", vendor, info=(obs,), patient=child)
    assert "no business associate agreement" in refused(rt, north, shared, 403, 0)
    court = organization(rt, north, "govt", name="Family Court")
    order = order_id(client, north, patient=child)
    out = disclose(client, north, "required-by-law", court, info=(obs,), order=order,
                   patient=child)  # fmt: skip
    assert out.status_code == 200, out.text
    assert set(released(out)) == {obs}
    answer = client.get(f"/fhir/Patient/{child}/$accounting-of-disclosures?_format=json",
                        headers=north.headers("privacy-officer"))  # fmt: skip
    assert answer.status_code == 200, answer.text
    (listed,) = answer.json()["disclosures"]
    assert (listed["basis"], listed["order"]) == ("required-by-law", order)
    assert accounting(client, north)["disclosures"] == []  # the other patient's stays empty
