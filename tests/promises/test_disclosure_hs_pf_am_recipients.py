"""Disclosure promises of Healthsoft (HS), Practice Fusion (PF) and AllMeds (AM) about the
policy's recipient classes: a directory entry the practice files under a class receives the
patient's record only if the class shares PHI, and only with what the class requires on file.

Each drives `$disclose`, the FHIR API and /admin/business-associate-agreements under the
seed's own profile.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from tests.access_helpers import fresh_token
from tests.disclosure_helpers import (
    consent,
    disclose,
    draft,
    ledger,
    organization,
    patient_totp,
    refused,
    released,
    sign,
    signed_authorization,
)
from tests.promises.conftest import Deployment
from tests.promises.disclosure_steps import classed, clinical, file_baa, lab_result

Profiled = Callable[[str], Deployment]


@pytest.mark.promise("HS-18")
def test_healthsoft_affiliates_never_receive_phi(profiled: Profiled) -> None:
    dep = profiled("healthsoft")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    result = clinical(client, north, lab_result(north))
    healow = classed(rt, north, "affiliates", "prov", "Healow, LLC")
    assert file_baa(client, north, healow).status_code == 201  # even with a contract on file
    us = organization(rt, north, "prov", name="North Clinic")
    cid = signed_authorization(
        client, rt, north, consent(north, healow, us, data=(patient, result))
    )
    asks: list[tuple[str, str, dict[str, Any]]] = [
        ("business-associate", "privacy-officer", {}),
        ("operations", "staff", {}),
        ("treatment", "practitioner", {}),
        ("authorization", "practitioner", {"authorization": cid, "purpose": "PATRQT"}),
    ]
    for basis, role, extra in asks:
        answer = disclose(client, north, basis, healow, role=role, info=(patient, result),
                          **extra)  # fmt: skip
        why = refused(rt, north, answer, 403, 0)
        assert "releases nothing of the patient's record to affiliates" in why, (basis, why)
    # a service provider (an agent) under its BAA does receive it: the class decides
    vendor = classed(rt, north, "service-providers", "bus", "Lab Hosting Co")
    assert file_baa(client, north, vendor).status_code == 201
    done = disclose(client, north, "business-associate", vendor, info=(patient,))
    assert done.status_code == 200, done.text
    assert [r.recipient_ref for r in ledger(rt, north)] == [vendor]


@pytest.mark.promise("AM-05")
def test_allmeds_payment_processors_receive_no_health_information(profiled: Profiled) -> None:
    dep = profiled("allmeds")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    invoice = clinical(client, north, {
        "resourceType": "Invoice", "status": "issued",
        "subject": {"reference": patient}, "date": "2026-11-01",
        "totalGross": {"value": 120, "currency": "USD"},
    }, role="staff")  # fmt: skip
    processor = classed(rt, north, "payment-processors", "pay", "CardPay Processing")
    assert file_baa(client, north, processor).status_code == 201
    for basis, role in (("payment", "staff"), ("business-associate", "privacy-officer")):
        why = refused(rt, north, disclose(client, north, basis, processor, role=role,
                                          info=(patient, invoice)), 403, 0)  # fmt: skip
        assert "releases nothing of the patient's record to payment-processors" in why
    # the claims clearing house (a service provider under its BAA) is paid with the claim
    claims = classed(rt, north, "service-providers", "pay", "Claims Clearing Co")
    why = refused(rt, north, disclose(client, north, "payment", claims, role="staff",
                                      info=(patient, invoice)), 403, 0)  # fmt: skip
    assert "business associate agreement with service-providers" in why
    assert file_baa(client, north, claims).status_code == 201
    paid = disclose(client, north, "payment", claims, role="staff", info=(patient, invoice))
    assert paid.status_code == 200, paid.text
    assert set(released(paid)) == {patient, invoice}
    assert "telecom" not in released(paid)[patient]  # cut to the payment profile
    assert [r.recipient_ref for r in ledger(rt, north)] == [claims]


@pytest.mark.promise("PF-09", "PF-12")
def test_practice_fusion_integrations_get_data_only_once_the_provider_grants_it(
    profiled: Profiled,
) -> None:
    dep = profiled("practice-fusion")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    result = clinical(client, north, lab_result(north))
    erx = classed(rt, north, "integrations", "prov", "ScriptNet e-Prescribing")
    lab = classed(rt, north, "integrations", "prov", "Quick Labs Interface")

    def ask(recipient: str) -> Any:
        return disclose(client, north, "treatment", recipient, role="practitioner",
                        info=(patient, result))  # fmt: skip

    # not integrated yet: nothing goes, and the reason says what the provider must do
    why = refused(rt, north, ask(erx), 403, 0)
    assert "confidentiality agreement with integrations" in why
    assert "none is on file" in why
    # only the provider's privacy officer grants it; a lapsed agreement grants nothing
    staff_try = client.post("/admin/business-associate-agreements", headers=north.headers("staff"),
                            json={"recipient": erx, "effective_on": "2026-01-01",
                                  "document_sha256": "a" * 64})  # fmt: skip
    assert staff_try.status_code == 403
    assert file_baa(client, north, erx, start="2024-01-01", end="2025-06-30").status_code == 201
    assert "none on file is in force today" in refused(rt, north, ask(erx), 403, 0)
    assert file_baa(client, north, erx).status_code == 201
    out = ask(erx)
    assert out.status_code == 200, out.text
    assert set(released(out)) == {patient, result}
    # the grant is the integration's own: the other integration still receives nothing
    assert "none is on file" in refused(rt, north, ask(lab), 403, 1)
    # the grant runs out with the agreement
    dep.clock.advance(timedelta(days=420))  # past 2027-12-31
    north.tokens["practitioner"] = fresh_token(rt, north, "practitioner")
    assert "none on file is in force today" in refused(rt, north, ask(erx), 403, 1)
    assert [r.recipient_ref for r in ledger(rt, north)] == [erx]


@pytest.mark.promise("HS-25")
def test_healthsoft_biometric_is_never_sold_and_goes_to_no_class_but_its_agents(
    profiled: Profiled,
) -> None:
    dep = profiled("healthsoft")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    template = lab_result(north, text="Fingerprint minutiae template (biometric identifier)")
    biometric = clinical(client, north, template)
    us = organization(rt, north, "prov", name="North Clinic")
    secret = patient_totp(client, rt, north)
    # no basis releases anything for consideration: there is no sale, lease or trade
    for basis in ("sale", "lease", "trade"):
        answer = disclose(client, north, basis, us, info=(biometric,))
        assert "basis must be one of" in refused(rt, north, answer, 400, 0)
    # the classes that are not Healthsoft's agents get none of it, whatever is on file
    for name in ("affiliates", "at-your-direction", "business-transfer"):
        other = classed(rt, north, name, "prov", f"A {name} recipient")
        assert file_baa(client, north, other).status_code == 201
        cid = draft(client, north, consent(north, other, us, data=(biometric,)))
        assert sign(client, rt, north, cid, secret).status_code == 200
        asks: list[tuple[str, dict[str, Any]]] = [
            ("authorization", {"authorization": cid, "purpose": "PATRQT"}),
            ("treatment", {}),
        ]
        for basis, extra in asks:
            answer = disclose(client, north, basis, other, role="practitioner",
                              info=(biometric,), **extra)  # fmt: skip
            why = refused(rt, north, answer, 403, 0)
            assert f"releases nothing of the patient's record to {name}" in why, (name, basis)
    # the provider it is held for (a customer) receives it
    provider = classed(rt, north, "customers", "prov", "Eastside Clinic")
    done = disclose(client, north, "treatment", provider, role="practitioner", info=(biometric,))
    assert done.status_code == 200, done.text
    assert set(released(done)) == {biometric}
    assert [r.recipient_ref for r in ledger(rt, north)] == [provider]
