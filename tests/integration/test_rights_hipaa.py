"""HIPAA rights run for the tenant: the copy (Bundle of the whole compartment, a readable
PDF, a designee), amendment (accepted: amended through the gate and earlier recipients told;
denied: in writing, with the statement of disagreement that travels with later disclosures;
refused for information another organization created) and the accounting of disclosures."""

from __future__ import annotations

import io
import uuid
from datetime import timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader

from carevault.clock import isoformat
from carevault.errors import CareVaultError
from carevault.identity.models import system_actor
from carevault.policy import Basis
from carevault.privacy.disclosure.checkers import DESIGNEE_PURPOSE
from carevault.privacy.disclosure.ledger import DisclosureEntry, read_entries, record_disclosure
from carevault.runtime import Runtime
from tests.conftest import Clinic, Site
from tests.rights_helpers import ACCESS, WHO, actor, outbox, rights_audit, wire

VERIFIED = {
    "tag": [
        {
            "system": "https://carevault.dev/fhir/CodeSystem/directory-verification",
            "code": "address-verified",
        }
    ]
}


def _create(runtime: Runtime, site: Site, body: dict[str, Any]) -> str:
    gate = runtime.gate(system_actor(site.tenant_id, "test fixture"))
    return f"{body['resourceType']}/{gate.create(body['resourceType'], body).resource_id}"


def _obs(patient: str, value: str = "within range", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"text": "Glucose"},
        "valueString": value,
        "effectiveDateTime": "2026-10-01",
        **extra,
    }


def _disclosed(
    runtime: Runtime,
    site: Site,
    refs: tuple[str, ...],
    recipient: str,
    basis: Basis = Basis.TREATMENT,
) -> None:
    entry = DisclosureEntry(
        tenant_id=site.tenant_id,
        disclosure_id=str(uuid.uuid4()),
        patient_id=site.patient_id,
        disclosed_at=isoformat(runtime.clock.now()),
        recipient_ref=recipient,
        recipient_name="Lakeside Cardiology",
        recipient_address="1 Lake Rd",
        basis=basis,
        purpose="care",
        description="results",
        resource_refs=refs,
        authorization_ref=None,
        order_id="order-1" if basis is Basis.REQUIRED_BY_LAW else None,
        request_copy=None,
        actor_user_id="test",
    )
    runtime.committer.submit(lambda conn: record_disclosure(conn, entry, runtime.vault))


def test_access_copy_is_the_compartment_as_bundle_and_readable_pdf(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    north = clinic.north
    wire(runtime)
    glucose = _create(runtime, north, _obs(north.patient_id))
    study = _create(
        runtime,
        north,
        {
            "resourceType": "ImagingStudy",
            "status": "available",
            "subject": {"reference": f"Patient/{north.patient_id}"},
        },
    )
    other = _create(runtime, north, _obs(north.other_patient_id, "someone else's"))
    made = client.post(
        "/rights/requests",
        json={**ACCESS, "forms": ["bundle", "pdf"]},
        headers=north.headers("patient"),
    )
    assert made.status_code == 201, made.text
    answer = made.json()
    assert answer["route"]["rulebook"] == "hipaa"
    assert answer["route"]["decides"] == "North Clinic"
    assert "HIPAA" in answer["route"]["explanation"]
    rid = answer["request"]["request_id"]
    assert answer["request"]["due_at"][:10] == "2026-12-23"
    # the officer is told a case is waiting; the patient that it was received
    assert outbox(runtime, north.tenant_id, "rights-request-new")
    assert outbox(runtime, north.tenant_id, "rights-request-received")[0]["recipient"] == (
        actor(runtime, north, "patient").user_id
    )
    runtime.clock.advance(timedelta(days=2))  # type: ignore[attr-defined]
    done = client.post(
        f"/admin/rights/requests/{rid}/fulfil", json={}, headers=north.headers("privacy-officer")
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "fulfilled"
    assert done.json()["copies"] == ["bundle", "pdf"]
    assert done.json()["fulfilment"]["fee"] == 0
    bundle = client.get(
        f"/rights/requests/{rid}/copy?form=bundle", headers=north.headers("patient")
    )
    assert bundle.status_code == 200
    assert bundle.headers["cache-control"] == "no-store"
    refs = {e["fullUrl"] for e in bundle.json()["entry"]}
    assert {f"Patient/{north.patient_id}", glucose, study} <= refs
    assert other not in refs
    pdf = client.get(f"/rights/requests/{rid}/copy?form=pdf", headers=north.headers("patient"))
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Your health record" in text
    assert "Quintero" in text
    assert "Glucose" in text
    assert "cost-based fee" in text
    assert "ImagingStudy" in text
    # the copy was read through the gate as the patient's own request, and audited
    entries = [e for e in rights_audit(runtime, north.tenant_id)]
    assert [e.action for e in entries][:1] == ["create"]
    assert any("fulfilled: hipaa-access" in (e.detail or "") for e in entries)
    assert any("copy downloaded" in (e.detail or "") for e in entries)
    from tests.account_helpers import login_entries

    everything = [e for e in login_entries(runtime, north.tenant_id) if e.action == "everything"]
    assert everything
    assert everything[-1].purpose == "PATRQT"
    # nobody else gets the copy or the case
    for headers in (clinic.south.headers("patient"), north.headers("practitioner")):
        assert (
            client.get(f"/rights/requests/{rid}/copy?form=pdf", headers=headers).status_code == 404
        )
    view = client.get(f"/rights/requests/{rid}", headers=north.headers("patient")).json()
    assert [n["kind"] for n in view["notices"]] == ["received", "fulfilled"]


def test_copy_to_a_designee_goes_through_the_disclosure_path(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    """The transmission is a disclosure on the basis `individual` (164.524(c)(3)(ii)): the
    disclosure path checks it and records it in the ledger."""
    north = clinic.north
    wire(runtime)
    clinic_b = _create(
        runtime,
        north,
        {
            "resourceType": "Organization",
            "name": "Ogdenville Family Practice",
            "address": [{"city": "Ogdenville"}],
            "meta": VERIFIED,
        },
    )
    made = client.post(
        "/rights/requests",
        json={**ACCESS, "forms": [], "designee": clinic_b},
        headers=north.headers("patient"),
    )
    rid = made.json()["request"]["request_id"]
    done = client.post(
        f"/admin/rights/requests/{rid}/fulfil", json={}, headers=north.headers("privacy-officer")
    )
    with runtime.reader.connect() as conn:
        rows = read_entries(conn, runtime.vault, north.tenant_id, north.patient_id)
    view = client.get(f"/rights/requests/{rid}", headers=north.headers("patient")).json()
    assert done.status_code == 200, done.text
    sent = done.json()["fulfilment"]["designee"]
    assert [(r.disclosure_id, r.basis) for r in rows] == [(sent["disclosure"], Basis.INDIVIDUAL)]
    assert view["status"] == "fulfilled"


def test_a_designee_the_patient_did_not_name_is_refused_over_http(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    """Only the rights workflow may send to a designee: a clinician claiming the purpose over
    the API is refused, and nothing is released."""
    north = clinic.north
    other = _create(
        runtime,
        north,
        {"resourceType": "Organization", "name": "Elsewhere", "address": [{"city": "Shelbyville"}],
         "meta": VERIFIED},
    )  # fmt: skip
    done = client.post(
        f"/fhir/Patient/{north.patient_id}/$disclose",
        json={"resourceType": "Parameters", "parameter": [
            {"name": "recipient", "valueReference": {"reference": other}},
            {"name": "basis", "valueCode": "individual"},
            {"name": "purpose", "valueString": DESIGNEE_PURPOSE},
            {"name": "information",
             "valueReference": {"reference": f"Patient/{north.patient_id}"}},
        ]},
        headers=north.headers("practitioner"),
    )  # fmt: skip
    assert done.status_code == 403, done.text
    with runtime.reader.connect() as conn:
        assert read_entries(conn, runtime.vault, north.tenant_id, north.patient_id) == []


def test_amendment_of_information_another_organization_created_is_refused(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    north = clinic.north
    wire(runtime)
    foreign = _create(
        runtime,
        north,
        _obs(north.patient_id, meta={"source": "https://lab.other-hospital.example.org/fhir"}),
    )
    body = {
        "action": "amend",
        "categories": ["phi"],
        "resources": [foreign],
        "statement": "This result is not mine.",
    }
    refused = client.post("/rights/requests", json=body, headers=north.headers("patient"))
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert "another organization" in refused.json()["detail"]
    assert "other-hospital" not in refused.json()["detail"]
    (entry,) = rights_audit(runtime, north.tenant_id)
    assert entry.outcome == "invalid"
    assert north.patient_id in entry.patient_ids
    assert client.get("/admin/rights/queue", headers=north.headers("privacy-officer")).json() == {
        "requests": []
    }
    # nor a resource outside the patient's record
    theirs = _create(runtime, north, _obs(north.other_patient_id))
    other = client.post(
        "/rights/requests", json={**body, "resources": [theirs]}, headers=north.headers("patient")
    )
    assert other.status_code == 422
    assert "not part of your record" in other.json()["detail"]


def test_amendment_accepted_amends_the_record_and_tells_earlier_recipients(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    north = clinic.north
    service = wire(runtime)
    glucose = _create(runtime, north, _obs(north.patient_id, "high"))
    _disclosed(runtime, north, (glucose,), "Organization/cardio-1")
    _disclosed(runtime, north, (f"Patient/{north.patient_id}",), "Organization/not-told")
    patient, officer = actor(runtime, north, "patient"), actor(runtime, north, "privacy-officer")
    view, _ = service.receive(
        patient,
        {
            "action": "amend",
            "categories": ["phi"],
            "resources": [glucose],
            "statement": "The result was normal.",
        },
        WHO,
    )
    with pytest.raises(Exception, match="decide"):
        service.fulfil(officer, view.request_id, {}, WHO)
    service.decide(officer, view.request_id, {"decision": "accept"}, WHO)
    rid = glucose.split("/")[1]
    amended = {**_obs(north.patient_id, "within range"), "id": rid}
    done = service.fulfil(officer, view.request_id, {"amended": [amended]}, WHO)
    assert done.status == "fulfilled"
    assert done.fulfilment == {"amended": [glucose], "recipients_told": ["Organization/cardio-1"]}
    told = [n for n in done.notices if n.kind == "amendment-to-recipient"]
    assert [n.recipient_ref for n in told] == ["Organization/cardio-1"]
    now = runtime.gate(system_actor(north.tenant_id, "test")).read("Observation", rid)
    assert orjson.loads(now.body or b"{}")["valueString"] == "within range"
    assert now.version_id == 2
    assert outbox(runtime, north.tenant_id, "rights-request-fulfilled")


def test_amendment_denied_in_writing_and_disagreement_travels_with_disclosures(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    north = clinic.north
    service = wire(runtime)
    glucose = _create(runtime, north, _obs(north.patient_id, "high"))
    body = {
        "action": "amend",
        "categories": ["phi"],
        "resources": [glucose],
        "statement": "The result was normal.",
    }
    made = client.post("/rights/requests", json=body, headers=north.headers("patient"))
    rid = made.json()["request"]["request_id"]
    officer = north.headers("privacy-officer")
    no_basis = client.post(
        f"/admin/rights/requests/{rid}/decide",
        headers=officer,
        json={"decision": "deny", "reason": "The lab result stands."},
    )
    assert no_basis.status_code == 400
    assert "basis" in no_basis.json()["detail"]
    denied = client.post(
        f"/admin/rights/requests/{rid}/decide",
        headers=officer,
        json={
            "decision": "deny",
            "basis": "accurate-and-complete",
            "reason": "The laboratory confirmed the result.",
        },
    )
    assert denied.status_code == 200, denied.text
    letter = next(n for n in denied.json()["notices"] if n["kind"] == "denied")["text"]
    for words in (
        "accurate and complete",
        "164.526",
        "statement disagreeing",
        "sent with any future disclosure",
        "Secretary of Health and Human Services",
        "laboratory confirmed",
    ):
        assert words in letter, words
    assert outbox(runtime, north.tenant_id, "rights-request-decided")
    # no statement yet and no ask to attach: nothing travels
    with runtime.reader.connect() as conn:
        assert service.attachments_for(conn, north.tenant_id, north.patient_id, (glucose,)) == []
    assert (
        client.post(
            f"/admin/rights/requests/{rid}/rebuttal",
            headers=officer,
            json={"statement": "We stand by the result."},
        ).status_code
        == 409
    )
    filed = client.post(
        f"/rights/requests/{rid}/statements",
        headers=north.headers("patient"),
        json={"statement": "I disagree: my own meter read normal."},
    )
    assert filed.status_code == 201, filed.text
    rebut = client.post(
        f"/admin/rights/requests/{rid}/rebuttal",
        headers=officer,
        json={"statement": "The laboratory result was verified twice."},
    )
    assert rebut.status_code == 201
    with runtime.reader.connect() as conn:
        found = service.attachments_for(conn, north.tenant_id, north.patient_id, (glucose,))
        unrelated = service.attachments_for(
            conn, north.tenant_id, north.patient_id, (f"Patient/{north.patient_id}",)
        )
    assert [a.kind for a in found] == ["request-and-denial", "disagreement", "rebuttal"]
    assert "The result was normal." in found[0].text
    assert "accurate" in found[0].text
    assert "meter read normal" in found[1].text
    assert unrelated == []
    # a stranger cannot file a statement on this case
    assert (
        client.post(
            f"/rights/requests/{rid}/statements",
            headers=clinic.south.headers("patient"),
            json={"statement": "I disagree with all of it."},
        ).status_code
        == 404
    )


def test_accounting_request_is_fulfilled_from_the_accounting_report(
    runtime: Runtime, clinic: Clinic, client: TestClient
) -> None:
    north = clinic.north
    service = wire(runtime)
    glucose = _create(runtime, north, _obs(north.patient_id))
    _disclosed(runtime, north, (glucose,), "Organization/court-1", Basis.REQUIRED_BY_LAW)
    _disclosed(runtime, north, (glucose,), "Organization/cardio-1", Basis.TREATMENT)
    view, route = service.receive(
        actor(runtime, north, "patient"), {"action": "accounting", "categories": ["phi"]}, WHO
    )
    assert route.right == "hipaa-accounting"
    assert view.due_at[:10] == "2027-01-22"
    done = service.fulfil(actor(runtime, north, "privacy-officer"), view.request_id, {}, WHO)
    assert done.fulfilment == {"forms": ["json"], "disclosures": 1}  # treatment is excluded
    got = client.get(
        f"/rights/requests/{view.request_id}/copy?form=json", headers=north.headers("patient")
    )
    report = got.json()
    assert [d["recipient"]["reference"] for d in report["disclosures"]] == ["Organization/court-1"]


def test_health_information_requests_need_a_signed_in_patient(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    wire(runtime)
    anonymous = client.post("/rights/requests", json=ACCESS)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    staff = client.post("/rights/requests", json=ACCESS, headers=clinic.north.headers("staff"))
    assert staff.status_code == 403
    theirs = client.post(
        "/rights/requests",
        json={**ACCESS, "patient": clinic.north.other_patient_id},
        headers=clinic.north.headers("patient"),
    )
    assert theirs.status_code == 403
    rep = client.post(
        "/rights/requests",
        json={**ACCESS, "patient": clinic.north.patient_id},
        headers=clinic.north.headers("representative"),
    )
    assert rep.status_code == 403
    assert "representation" in rep.json()["detail"]
    for bad in (
        {"action": "fly", "categories": ["phi"]},
        {"action": "access"},
        {"action": "access", "categories": ["dna"]},
        [1, 2],
        {"action": "delete", "categories": ["phi"]},
        {"action": "access", "categories": ["phi", "account"]},
    ):
        answer = client.post("/rights/requests", json=bad, headers=clinic.north.headers("patient"))
        assert answer.status_code in (400, 422), (bad, answer.text)


def test_a_verified_representative_asks_and_the_copy_is_read_as_their_request(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    north = clinic.north
    service = wire(runtime)
    staff = actor(runtime, north, "staff")
    rep = actor(runtime, north, "representative")
    found = runtime.representations.record(
        staff, WHO, representative_id=rep.user_id, patient_id=north.patient_id,
        kind="authorized-agent", document_digest="c" * 64,
        expires_at="2027-11-23T00:00:00+00:00",
    )  # fmt: skip
    runtime.representations.verify(staff, WHO, found.representation_id, "power-of-attorney")
    view, _ = service.receive(rep, {**ACCESS, "patient": north.patient_id}, WHO)
    assert (view.requester_kind, view.verification) == ("representative", "verified-representation")
    done = service.fulfil(actor(runtime, north, "privacy-officer"), view.request_id, {}, WHO)
    assert done.copies == ["bundle", "pdf"]
    media, body = service.copy(rep, view.request_id, "bundle", WHO)
    assert media == "application/fhir+json"
    assert f"Patient/{north.patient_id}" in {e["fullUrl"] for e in orjson.loads(body)["entry"]}
    from tests.account_helpers import login_entries

    read = [e for e in login_entries(runtime, north.tenant_id) if e.action == "everything"]
    assert (read[-1].actor_id, read[-1].purpose) == (rep.user_id, "PWATRNY")
    # the patient themself may not read the representative's case (it is not theirs)
    with pytest.raises(CareVaultError):
        service.get(actor(runtime, north, "patient"), view.request_id, WHO)
