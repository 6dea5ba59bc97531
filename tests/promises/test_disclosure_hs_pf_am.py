"""Disclosure promises of Healthsoft (HS), Practice Fusion (PF) and AllMeds (AM), each driven
through `$disclose`, the admin routes for BAAs and legal orders, and the FHIR API under the
seed's own profile, observing the release or the refusal, the cut, the ledger and the notice.

Minimum necessary on every third-party basis, BAAs and legally compelled releases; the
provider's restrictions and the practitioner's access are in test_disclosure_hs_pf_am_provider.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from carevault.policy import Basis
from carevault.policy.bases import MINIMUM_NECESSARY_EXEMPT
from tests.audit_rows import audit_of
from tests.disclosure_helpers import disclose, ledger, organization, outbox, refused, released
from tests.promises.conftest import Deployment
from tests.promises.disclosure_steps import (
    clinical,
    cut_to,
    file_baa,
    file_order,
    kept,
    lab_result,
)

Profiled = Callable[[str], Deployment]


def _outcome(answer: Any) -> list[str]:
    return [i["diagnostics"] for i in answer.json()["entry"][-1]["resource"]["issue"]]


def _whole(dep: Deployment, ref: str) -> dict[str, Any]:
    """The record as the treating practitioner sees it: whole."""
    got = dep.client.get(f"/fhir/{ref}", headers=dep.clinic.north.headers("practitioner"))
    assert got.status_code == 200, got.text
    body: dict[str, Any] = got.json()
    return body


@pytest.mark.promise("AM-02", "AM-03")
def test_allmeds_cuts_every_third_party_release_to_its_profile(profiled: Profiled) -> None:
    dep = profiled("allmeds")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    glucose = clinical(client, north, lab_result(north))
    bob = f"Patient/{north.other_patient_id}"
    dead = dict(_whole(dep, bob), deceasedDateTime="2026-11-20T08:00:00Z")
    assert client.put(f"/fhir/{bob}", json=dead, headers=north.headers("staff")).status_code == 200

    def org(kind: str, name: str) -> str:
        return organization(rt, north, kind, name=name)

    vendor = org("bus", "Claims Clearing Co")
    assert file_baa(client, north, vendor).status_code == 201
    court = file_order(client, north)
    subpoena = file_order(client, north, kind="subpoena", assurances=["qualified-protective-order"])
    waiver = file_order(client, north, kind="irb-waiver", patient=None)
    investigation = file_order(client, north, kind="administrative")  # AM-14: oversight needs it
    both = (patient, glucose)
    cases: list[tuple[str, str, tuple[str, ...], str | None]] = [
        ("payment", org("pay", "Lakeside Mutual"), both, None),
        ("operations", org("prov", "Eastside Clinic"), both, None),
        ("business-associate", vendor, both, None),
        ("required-by-law", org("govt", "District Court"), both, court),
        ("subpoena", org("bus", "Counsel LLP"), both, subpoena),
        ("law-enforcement", org("govt", "City Police"), (patient,), None),
        ("health-oversight", org("govt", "HHS Office for Civil Rights"), both, investigation),
        ("public-health", org("govt", "County Health"), both, None),
        ("abuse-neglect", org("govt", "Adult Protective Services"), both, None),
        ("serious-threat", org("prov", "Crisis Team"), both, None),
        ("research", org("edu", "University Lab"), both, waiver),
        ("decedent", org("coroner", "County Coroner"), (bob,), None),
    ]
    policy = rt.disclosures.policy
    third_party = {b for b, rule in policy.document.disclosure.bases.items()
                   if rule.allowed and b not in MINIMUM_NECESSARY_EXEMPT}  # fmt: skip
    assert {Basis(c[0]) for c in cases} == third_party  # every basis the rule covers, driven
    for basis, recipient, info, order in cases:
        answer = disclose(client, north, basis, recipient, info=info, order=order,
                          purpose="a serious and imminent threat, as the request states",
                          patient=bob.split("/")[1] if info == (bob,) else None)  # fmt: skip
        assert answer.status_code == 200, (basis, answer.text)
        profile = policy.minimum_profile(Basis(basis))
        assert profile is not None, basis
        out = released(answer)
        assert out, basis
        for ref in info:
            rule = profile.types.get(ref.split("/")[0])
            if rule is None:  # the profile withholds the type, and the answer says so
                assert ref not in out, (basis, ref)
                assert any(ref in why and "minimum necessary" in why for why in _outcome(answer))
                continue
            assert not rule.whole
            body = out[ref]
            assert cut_to(frozenset(rule.keep), body), (basis, ref, sorted(body))
            assert kept(body) < kept(_whole(dep, ref)), (basis, ref)  # something was cut
            assert "note" not in body
    # each release is on the ledger, with the cut it made audited as an export
    assert sorted(r.basis for r in ledger(rt, north)) == sorted(c[0] for c in cases)


def _baa_is_required(dep: Deployment) -> None:
    """A service provider gets PHI only under a BAA with it, in force; through no other door."""
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    vendor = organization(rt, north, "bus", name="Cloud Hosting Co")
    other = organization(rt, north, "bus", name="Collections Co")

    def ask(recipient: str = vendor, basis: str = "business-associate") -> Any:
        return disclose(client, north, basis, recipient, info=(patient,),
                        purpose="claims processing for the practice")  # fmt: skip

    assert "no business associate agreement" in refused(rt, north, ask(), 403, 0)
    assert file_baa(client, north, other).status_code == 201  # another vendor's BAA
    assert "no business associate agreement" in refused(rt, north, ask(), 403, 0)
    assert file_baa(client, north, vendor, start="2024-01-01", end="2025-12-31").status_code == 201
    assert "ended on 2025-12-31" in refused(rt, north, ask(), 403, 0)
    assert file_baa(client, north, vendor, start="2027-01-01", end=None).status_code == 201
    assert "not yet in effect" in refused(rt, north, ask(), 403, 0)
    # the vendor is no covered entity, provider or the patient: no other basis lets PHI go to it
    for basis, role in (("operations", "staff"), ("treatment", "practitioner"),
                        ("individual", "staff")):  # fmt: skip
        answer = disclose(client, north, basis, vendor, role=role, info=(patient,))
        refused(rt, north, answer, 403, 0)
    assert file_baa(client, north, vendor, start="2026-01-01", end="2027-12-31").status_code == 201
    done = ask()
    assert done.status_code == 200, done.text
    (row,) = ledger(rt, north)
    assert (row.basis, row.recipient_ref) == ("business-associate", vendor)
    (entry,) = [e for e in audit_of(rt, done) if e["action"] == "export"]
    assert entry["outcome"] == "success"
    assert entry["patient_ids"] == [north.patient_id]


@pytest.mark.promise("AM-09", "AM-10")
def test_allmeds_gives_phi_to_a_service_provider_only_under_a_baa(profiled: Profiled) -> None:
    _baa_is_required(profiled("allmeds"))


@pytest.mark.promise("PF-08")
def test_practice_fusion_service_providers_get_phi_only_under_a_baa(profiled: Profiled) -> None:
    _baa_is_required(profiled("practice-fusion"))


@pytest.mark.promise("HS-20")
def test_healthsoft_releases_to_legal_process_only_with_it_on_file_and_tells_the_patient(
    profiled: Profiled,
) -> None:
    dep = profiled("healthsoft")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    glucose = clinical(client, north, lab_result(north))
    court = organization(rt, north, "govt", name="District Court")
    firm = organization(rt, north, "bus", name="Counsel LLP")
    # no order on file: refused, nothing released, nobody told
    why = refused(rt, north, disclose(client, north, "required-by-law", court, info=(glucose,)),
                  422, 0)  # fmt: skip
    assert "order" in why
    assert "no such order" in refused(
        rt,
        north,
        disclose(client, north, "required-by-law", court, info=(glucose,), order="made-up"),
        422,
        0,
    )
    bare = file_order(client, north, kind="subpoena")
    assert "164.512(e)(1)(ii)" in refused(rt, north, disclose(
        client, north, "subpoena", firm, info=(glucose,), order=bare), 403, 0)  # fmt: skip
    assert "is not a court order" in refused(
        rt,
        north,
        disclose(client, north, "required-by-law", court, info=(glucose,), order=bare),
        403,
        0,
    )
    assert outbox(rt, north, "disclosure-upcoming") == []
    # with the order (or an assured subpoena) on file: released, and the patient told first
    order = file_order(client, north, resource_refs=[glucose], resource_types=[])
    assert "does not name" in refused(
        rt,
        north,
        disclose(client, north, "required-by-law", court, info=(patient,), order=order),
        403,
        0,
    )
    out = disclose(client, north, "required-by-law", court, info=(glucose,), order=order)
    assert out.status_code == 200, out.text
    assert set(released(out)) == {glucose}
    assert "patient notice: queued" in _outcome(out)[0]
    dep.clock.advance(timedelta(minutes=5))
    assured = file_order(client, north, kind="subpoena", assurances=["notice-to-individual"])
    sub = disclose(client, north, "subpoena", firm, info=(patient, glucose), order=assured)
    assert sub.status_code == 200, sub.text
    rows = ledger(rt, north)
    assert [(r.basis, r.order_id) for r in rows] == [("required-by-law", order),
                                                    ("subpoena", assured)]  # fmt: skip
    notices = outbox(rt, north, "disclosure-upcoming")
    assert len(notices) == 2
    assert all(n.created_at <= r.disclosed_at for n, r in zip(
        sorted(notices, key=lambda n: n.created_at), rows, strict=True))  # fmt: skip
    # both are in the patient's accounting, with the order they rest on
    report = client.get(f"/fhir/{patient}/$accounting-of-disclosures?_format=json",
                        headers=north.headers("patient"))  # fmt: skip
    assert report.status_code == 200, report.text
    listed = {(d["basis"], d.get("order")) for d in report.json()["disclosures"]}
    assert listed == {("required-by-law", order), ("subpoena", assured)}


@pytest.mark.promise("AM-16")
def test_allmeds_tells_the_patient_before_a_compelled_release_unless_an_order_forbids_it(
    profiled: Profiled,
) -> None:
    dep = profiled("allmeds")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    glucose = clinical(client, north, lab_result(north))
    court = organization(rt, north, "govt", name="District Court")
    police = organization(rt, north, "govt", name="City Police")
    order = file_order(client, north)
    out = disclose(client, north, "required-by-law", court, info=(glucose,), order=order)
    assert out.status_code == 200, out.text
    assert "patient notice: queued" in _outcome(out)[0]
    (first,) = outbox(rt, north, "disclosure-upcoming")
    assert first.created_at <= ledger(rt, north)[0].disclosed_at
    located = disclose(client, north, "law-enforcement", police, info=(patient,))
    assert located.status_code == 200, located.text
    assert len(outbox(rt, north, "disclosure-upcoming")) == 2  # law enforcement too, in advance
    # an order that forbids notice holds it; lifting the gag sends it
    gagged = file_order(client, north, kind="warrant", gag="until-lifted")
    held = disclose(client, north, "required-by-law", police, info=(glucose,), order=gagged)
    assert held.status_code == 200, held.text
    assert "patient notice: held" in _outcome(held)[0]
    assert len(outbox(rt, north, "disclosure-upcoming")) == 2
    assert outbox(rt, north, "disclosure-made") == []
    lifted = client.post(f"/admin/legal-orders/{gagged}/lift-gag",
                         headers=north.headers("privacy-officer"))  # fmt: skip
    assert lifted.status_code == 200, lifted.text
    assert len(outbox(rt, north, "disclosure-made")) == 1
    assert len(ledger(rt, north)) == 3
