"""Disclosure promises of Healthsoft (HS), Practice Fusion (PF) and AllMeds (AM) about the
provider: PHI is used and released only as the provider (the tenant) instructs and restricts,
on HIPAA's bases only; and the practitioner a patient sees gets everything collected for it.

Each drives the FHIR API and `$disclose` under the seed's own profile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from carevault.policy import Basis
from tests.disclosure_helpers import (
    consent,
    disclose,
    ledger,
    organization,
    refused,
    released,
    signed_authorization,
)
from tests.promises.conftest import Deployment
from tests.promises.disclosure_steps import clinical, lab_result, practitioner

Profiled = Callable[[str], Deployment]


def _warnings(answer: Any) -> list[str]:
    return [i["diagnostics"] for i in answer.json()["entry"][-1]["resource"]["issue"]
            if i["severity"] == "warning"]  # fmt: skip


def _the_providers_restriction_binds(dep: Deployment, *, what: str = "Glucose") -> None:
    """The practice marks a record very restricted (V): the gate hides it from those without a
    care relationship, and the disclosure path lets it leave only under an authorization naming
    it; another tenant, or a basis HIPAA does not give the provider, releases nothing."""
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    restricted = clinical(client, north, lab_result(north, labels=("V",), text=what))
    plain = clinical(client, north, lab_result(north))
    # the gate: out of reach without a care relationship, exactly like a missing record
    for role in ("practitioner", "staff"):
        assert client.get(f"/fhir/{restricted}", headers=north.headers(role)).status_code == 404
        assert client.get(f"/fhir/{plain}", headers=north.headers(role)).status_code == 200
    # the disclosure path: named, refused with the reason; in a class, left out and said so
    doctor = practitioner(client, north)
    why = refused(rt, north, disclose(client, north, "treatment", doctor, role="practitioner",
                                      info=(restricted,)), 403, 0)  # fmt: skip
    assert restricted in why
    assert "an authorization or order naming this very resource" in why
    out = disclose(client, north, "treatment", doctor, role="practitioner", types=("Observation",))
    assert out.status_code == 200, out.text
    assert set(released(out)) == {plain}
    assert any(restricted in w for w in _warnings(out))
    # another tenant's officer cannot release this practice's record at all
    south = dep.clinic.south
    assert "no such patient" in refused(rt, south, disclose(
        client, south, "individual", f"Patient/{north.patient_id}", role="staff",
        info=(restricted,), patient=north.patient_id), 404, 0)  # fmt: skip
    # only what HIPAA gives the provider is a basis at all
    for basis in ("sale", "marketing", "affiliate-sharing"):
        answer = disclose(client, north, basis, doctor, info=(plain,))
        assert "basis must be one of" in refused(rt, north, answer, 400, 1)
        assert all(b.value in answer.json()["issue"][0]["diagnostics"] for b in Basis)
    # the patient's authorization naming the record releases it, to that recipient only
    us = organization(rt, north, "prov", name="North Clinic")
    cid = signed_authorization(client, rt, north, consent(north, doctor, us, data=(restricted,)))
    named = disclose(client, north, "authorization", doctor, role="practitioner",
                     purpose="PATRQT", info=(restricted,), authorization=cid)  # fmt: skip
    assert named.status_code == 200, named.text
    assert set(released(named)) == {restricted}
    other = practitioner(client, north, family="Moreau")
    assert "another recipient" in refused(rt, north, disclose(
        client, north, "authorization", other, role="practitioner", purpose="PATRQT",
        info=(restricted,), authorization=cid), 403, 2)  # fmt: skip
    assert [r.basis for r in ledger(rt, north)] == ["treatment", "authorization"]


@pytest.mark.promise("HS-01", "HS-02")
def test_healthsoft_phi_follows_the_providers_instructions(profiled: Profiled) -> None:
    _the_providers_restriction_binds(profiled("healthsoft"))


@pytest.mark.promise("HS-28")
def test_healthsoft_biometric_phi_follows_the_providers_instructions(profiled: Profiled) -> None:
    _the_providers_restriction_binds(
        profiled("healthsoft"), what="Fingerprint minutiae template (biometric identifier)"
    )


@pytest.mark.promise("PF-01")
def test_practice_fusion_is_bound_like_its_providers(profiled: Profiled) -> None:
    _the_providers_restriction_binds(profiled("practice-fusion"))


@pytest.mark.promise("AM-12")
def test_allmeds_practitioner_gets_everything_collected_for_the_visit(
    profiled: Profiled,
) -> None:
    dep = profiled("allmeds")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    doctor = practitioner(client, north, family="Lee")
    staff = north.headers("staff")
    # the front desk books the appointment and records the patient's message to the doctor
    booked = client.post("/fhir/Appointment", headers=staff, json={
        "resourceType": "Appointment", "status": "booked",
        "start": "2026-12-02T09:00:00Z", "end": "2026-12-02T09:30:00Z",
        "participant": [{"actor": {"reference": patient}, "status": "accepted"},
                        {"actor": {"reference": doctor}, "status": "accepted"}],
    })  # fmt: skip
    assert booked.status_code == 201, booked.text
    message = client.post("/fhir/Communication", headers=staff, json={
        "resourceType": "Communication", "status": "completed", "subject": {"reference": patient},
        "sender": {"reference": patient}, "recipient": [{"reference": doctor}],
        "payload": [{"contentString": "My glucose readings have been high all week"}],
    })  # fmt: skip
    assert message.status_code == 201, message.text
    result = clinical(client, north, lab_result(north))
    # the practice's practitioner reads all of it, whole
    everything = client.get(f"/fhir/{patient}/$everything", headers=north.headers("practitioner"))
    assert everything.status_code == 200, everything.text
    seen = {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
            for e in everything.json()["entry"]}  # fmt: skip
    ids = {f"Appointment/{booked.json()['id']}", f"Communication/{message.json()['id']}", result}
    assert ids | {patient} <= set(seen)
    assert seen[patient]["telecom"]
    assert seen[result]["note"]
    assert (
        "high all week"
        in seen[f"Communication/{message.json()['id']}"]["payload"][0]["contentString"]
    )
    for body in seen.values():
        codes = {s.get("code") for s in body.get("meta", {}).get("security", [])}
        assert "REDACTED" not in codes
    # shared with the practitioner for treatment: whole, though AllMeds cuts every third party
    out = disclose(client, north, "treatment", doctor, role="practitioner", info=(patient, result))
    assert out.status_code == 200, out.text
    whole = released(out)
    assert whole[patient]["telecom"] == seen[patient]["telecom"]
    assert whole[result]["note"] == seen[result]["note"]
    assert rt.disclosures.policy.third_party_minimum_necessary
