"""Each basis of the one disclosure path: what it checks, what it releases, and every refusal
answered with a reason, nothing released, the refusal audited."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from carevault.identity.models import system_actor
from carevault.policy import parse_policy
from carevault.runtime import Runtime
from tests.audit_rows import audit_of
from tests.conftest import Clinic, Site
from tests.disclosure_helpers import (
    consent,
    create,
    disclose,
    ledger,
    observation,
    organization,
    refused,
    released,
    signed_authorization,
)

ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_VERIFIED = {"tag": [{"system": "https://carevault.dev/fhir/CodeSystem/directory-verification",
                      "code": "address-verified"}]}  # fmt: skip


def _practitioner(runtime: Runtime, site: Site) -> str:
    return create(runtime, site, {
        "resourceType": "Practitioner", "name": [{"family": "Hale", "given": ["Iris"]}],
        "address": [{"city": "Shelbyville"}], "meta": _VERIFIED,
    })  # fmt: skip


def test_treatment_releases_whole_and_payment_the_minimum(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    doctor = _practitioner(runtime, north)
    payer = organization(runtime, north, "pay", name="Lakeside Mutual")
    glucose = observation(runtime, north)
    patient = f"Patient/{north.patient_id}"
    out = disclose(client, north, "treatment", doctor, role="practitioner",
                   info=(patient, glucose))  # fmt: skip
    assert out.status_code == 200, out.text
    whole = released(out)
    assert "telecom" in whole[patient]
    assert whole[glucose]["valueString"] == "within range"
    paid = disclose(client, north, "payment", payer, role="staff", info=(patient, glucose))
    assert paid.status_code == 200, paid.text
    cut = released(paid)
    assert set(cut) == {patient}  # observations are not in the payment profile
    assert "telecom" not in cut[patient]
    assert cut[patient]["birthDate"] == "1984-03-17"
    outcome = paid.json()["entry"][-1]["resource"]
    assert any("minimum necessary" in i["diagnostics"] for i in outcome["issue"])
    assert sorted(r.basis for r in ledger(runtime, north)) == ["payment", "treatment"]
    (entry,) = [e for e in audit_of(runtime, paid) if e["action"] == "export"]
    assert (entry["purpose"], entry["patient_ids"]) == ("HPAYMT", [north.patient_id])
    # a payer is no provider: treatment to it is refused
    why = refused(
        runtime,
        north,
        disclose(client, north, "treatment", payer, role="practitioner", info=(glucose,)),
        403,
        2,
    )
    assert "provider" in why


def test_business_associate_needs_an_agreement_in_force(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    vendor = organization(runtime, north, "bus", name="Scribe Co")
    officer = north.headers("privacy-officer")
    patient = f"Patient/{north.patient_id}"

    def ask() -> Any:
        return disclose(client, north, "business-associate", vendor, info=(patient,))

    assert "no business associate agreement" in refused(runtime, north, ask(), 403, 0)
    old = {"recipient": vendor, "effective_on": "2024-01-01", "ends_on": "2025-12-31",
           "document_sha256": "a" * 64}  # fmt: skip
    assert client.post("/admin/business-associate-agreements", json=old,
                       headers=officer).status_code == 201  # fmt: skip
    assert "ended on 2025-12-31" in refused(runtime, north, ask(), 403, 0)
    new = {**old, "effective_on": "2026-01-01", "ends_on": "2027-12-31"}
    assert client.post("/admin/business-associate-agreements", json=new,
                       headers=officer).status_code == 201  # fmt: skip
    done = ask()
    assert done.status_code == 200, done.text
    assert set(released(done)[patient]) <= {
        "resourceType",
        "id",
        "meta",
        "identifier",
        "gender",
        "birthDate",
    }  # operations profile


def test_individual_operations_oversight_abuse_threat(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    patient = f"Patient/{north.patient_id}"
    glucose = observation(runtime, north)
    agency = organization(runtime, north, "govt", name="State Health Dept")
    clinic_b = organization(runtime, north, "prov", name="Eastside Clinic")
    cases: list[tuple[str, str, str, tuple[str, ...]]] = [
        ("individual", patient, "staff", (glucose,)),
        ("operations", clinic_b, "staff", (patient,)),
        ("health-oversight", agency, "privacy-officer", (glucose,)),
        ("abuse-neglect", agency, "practitioner", (patient,)),
        ("serious-threat", clinic_b, "practitioner", (patient,)),
    ]
    for basis, recipient, role, info in cases:
        out = disclose(client, north, basis, recipient, role=role, info=info,
                       purpose="imminent threat to a named person")  # fmt: skip
        assert out.status_code == 200, (basis, out.text)
    assert len(ledger(runtime, north)) == len(cases)
    n = len(cases)
    why = refused(runtime, north, disclose(client, north, "health-oversight", clinic_b,
                                           info=(glucose,)), 403, n)  # fmt: skip
    assert "government" in why
    why = refused(runtime, north, disclose(client, north, "individual", clinic_b, role="staff",
                                           info=(glucose,)), 403, n)  # fmt: skip
    assert "the patient" in why
    why = refused(runtime, north, disclose(client, north, "serious-threat", clinic_b,
                                           role="practitioner", purpose="x",
                                           info=(patient,)), 422, n)  # fmt: skip
    assert "threat" in why
    # a role that may not disclose on the basis, and a patient, are refused
    refused(runtime, north, disclose(client, north, "required-by-law", agency, role="staff",
                                     info=(patient,)), 403, n)  # fmt: skip
    refused(runtime, north, disclose(client, north, "treatment", clinic_b, role="patient",
                                     info=(patient,)), 403, n)  # fmt: skip


def test_public_health_law_enforcement_decedent(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    patient = f"Patient/{north.patient_id}"
    agency = organization(runtime, north, "govt", name="County Health")
    police = organization(runtime, north, "govt", name="City Police")
    coroner = organization(runtime, north, "coroner", name="County Coroner")
    final = observation(runtime, north, code="20507-0", display="Reagin Ab")
    draft = observation(runtime, north, status="preliminary")
    dna = observation(runtime, north, code="21566-5", display="DNA analysis")
    blood = observation(runtime, north, code="882-1", display="ABO and Rh group")
    out = disclose(client, north, "public-health", agency, role="staff", info=(final,))
    assert out.status_code == 200, out.text
    assert "not a final result" in refused(
        runtime, north, disclose(client, north, "public-health", agency, info=(draft,)), 403, 1
    )
    why = refused(runtime, north, disclose(client, north, "law-enforcement", police,
                                           info=(patient, dna)), 403, 1)  # fmt: skip
    assert "DNA" in why
    assert "164.512(f)(2)" in why
    located = disclose(client, north, "law-enforcement", police, info=(patient, blood))
    assert located.status_code == 200, located.text
    kept = released(located)
    assert patient in kept
    assert "telecom" not in kept[patient]
    assert "gender" not in kept[patient]
    assert blood not in kept  # the identify-and-locate profile withholds observations
    why = refused(runtime, north, disclose(client, north, "decedent", coroner, role="practitioner",
                                           info=(patient,)), 403, 2)  # fmt: skip
    assert "deceased" in why
    gate = runtime.gate(system_actor(north.tenant_id, "test fixture"))
    body = dict(client.get(f"/fhir/{patient}", headers=north.headers("staff")).json())
    body["deceasedDateTime"] = "2026-11-20T08:00:00Z"
    gate.update("Patient", north.patient_id, body)
    assert disclose(client, north, "decedent", coroner, role="practitioner",
                    info=(patient,)).status_code == 200  # fmt: skip
    assert "coroner" in refused(
        runtime, north, disclose(client, north, "decedent", agency, info=(patient,)), 403, 3
    )


def test_a_personal_representative_is_the_individual_and_a_relative_needs_an_authorization(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    glucose = observation(runtime, north)
    us = organization(runtime, north, "prov", name="North Clinic")

    def relative(patient_id: str, code: str) -> str:
        return create(runtime, north, {
            "resourceType": "RelatedPerson", "active": True,
            "patient": {"reference": f"Patient/{patient_id}"},
            "relationship": [{"coding": [{"system": ROLE_CODE, "code": code}]}],
            "name": [{"family": "Quintero", "given": ["Lucia"]}],
            "address": [{"city": "Shelbyville"}], "meta": _VERIFIED,
        })  # fmt: skip

    guardian = relative(north.patient_id, "GUARD")
    out = disclose(client, north, "individual", guardian, role="staff", info=(glucose,))
    assert out.status_code == 200, out.text
    assert released(out)[glucose]["valueString"] == "within range"
    (entry,) = ledger(runtime, north)
    assert (entry.basis, entry.recipient_ref) == ("individual", guardian)
    # a daughter is family, not the patient's representative: her copy needs an authorization
    daughter = relative(north.patient_id, "DAU")
    why = refused(runtime, north, disclose(client, north, "individual", daughter, role="staff",
                                           info=(glucose,)), 403, 1)  # fmt: skip
    assert "authorization" in why
    # and someone else's guardian is no one of this patient's
    stranger = relative(north.other_patient_id, "GUARD")
    refused(runtime, north, disclose(client, north, "individual", stranger, role="staff",
                                     info=(glucose,)), 403, 1)  # fmt: skip
    cid = signed_authorization(client, runtime, north,
                               consent(north, daughter, us, data=(glucose,)))  # fmt: skip
    named = disclose(client, north, "authorization", daughter, role="staff", purpose="PATRQT",
                     info=(glucose,), authorization=cid)  # fmt: skip
    assert named.status_code == 200, named.text
    assert [e.recipient_ref for e in ledger(runtime, north)] == [guardian, daughter]
    found = client.get("/fhir/RelatedPerson", params={"patient": north.patient_id},
                       headers=north.headers()).json()  # fmt: skip
    ids = {e["resource"]["id"] for e in found["entry"]}
    assert ids == {guardian.split("/")[1], daughter.split("/")[1]}


def test_part2_and_psychotherapy_records_need_their_own_consent(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    doctor = _practitioner(runtime, north)
    us = organization(runtime, north, "prov")
    sud = observation(runtime, north, labels=("ETH",))
    plain = observation(runtime, north)
    why = refused(
        runtime,
        north,
        disclose(client, north, "treatment", doctor, role="practitioner", info=(sud,)),
        403,
        0,
    )
    assert "Part 2" in why
    # a class request leaves the segmented record out, and says so
    out = disclose(client, north, "treatment", doctor, role="practitioner",
                   types=("Observation",))  # fmt: skip
    assert out.status_code == 200, out.text
    assert set(released(out)) == {plain}
    assert any("Part 2" in i["diagnostics"] for i in out.json()["entry"][-1]["resource"]["issue"])
    cid = signed_authorization(client, runtime, north,
                               consent(north, doctor, us, data=(sud, plain)))  # fmt: skip
    named = disclose(client, north, "authorization", doctor, role="practitioner",
                     purpose="PATRQT", info=(sud,), authorization=cid)  # fmt: skip
    assert named.status_code == 200, named.text
    assert set(released(named)) == {sud}


def test_the_policy_decides_whether_a_basis_is_allowed(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    text = runtime.disclosures.policy.document.model_dump_json()
    data: dict[str, Any] = __import__("orjson").loads(text)
    del data["disclosure"]["bases"]["operations"]
    runtime.disclosures.service.policy = parse_policy(__import__("orjson").dumps(data).decode())
    other = organization(runtime, north, "prov")
    why = refused(
        runtime,
        north,
        disclose(
            client, north, "operations", other, role="staff", info=(f"Patient/{north.patient_id}",)
        ),
        403,
        0,
    )
    assert "privacy policy" in why


def test_bad_input_is_a_400_and_unknown_recipients_a_422(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    patient = f"Patient/{north.patient_id}"
    unverified = organization(runtime, north, "prov", verified=False)
    assert disclose(client, north, "gossip", patient, info=(patient,)).status_code == 400
    assert disclose(client, north, "treatment", "Organization/nope", role="practitioner",
                    info=(patient,)).status_code == 422  # fmt: skip
    why = refused(
        runtime,
        north,
        disclose(client, north, "treatment", unverified, role="practitioner", info=(patient,)),
        422,
        0,
    )
    assert "not verified" in why
    south_obs = observation(runtime, clinic.south)
    assert disclose(client, north, "individual", patient, role="staff",
                    info=(south_obs,)).status_code == 422  # fmt: skip
    # another tenant's patient is simply not found, and the refusal is audited
    assert "no such patient" in refused(runtime, north, disclose(
        client, north, "individual", patient, role="staff", info=(patient,),
        patient=clinic.south.patient_id), 404, 0)  # fmt: skip
    garbled = client.post(
        f"/fhir/Patient/{north.patient_id}/$disclose",
        content=b"{",
        headers=north.headers("staff", **{"content-type": "application/json"}),
    )
    assert garbled.status_code == 400
    assert audit_of(runtime, garbled)
    assert ledger(runtime, north) == []
