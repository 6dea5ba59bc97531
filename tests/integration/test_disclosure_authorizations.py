"""Authorizations: drafted by the front desk, signed by the patient with a second factor,
every 164.508(c) element checked, revocable at once; a release under one covers exactly
what it names, for the recipient it names, while it is live."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.clock import ManualClock
from carevault.privacy.disclosure.consent_terms import EXPIRY_EVENT
from carevault.privacy.disclosure.models import authorization_documents
from carevault.runtime import Runtime
from tests.access_helpers import user_id
from tests.audit_rows import audit_of
from tests.conftest import Clinic
from tests.disclosure_helpers import (
    consent,
    disclose,
    draft,
    ledger,
    observation,
    organization,
    patient_totp,
    refused,
    released,
    sign,
    signed_authorization,
)


def test_signed_authorization_releases_what_it_names(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    lawyer = organization(runtime, north, "bus", name="Quill & Partners")
    us = organization(runtime, north, "prov", name="North Clinic")
    glucose = observation(runtime, north)
    secret = patient_totp(client, runtime, north)
    cid = draft(client, north, consent(north, lawyer, us, data=(glucose,)))
    answer = sign(client, runtime, north, cid, secret)
    assert answer.status_code == 200, answer.text
    signed = answer.json()
    assert signed["status"] == "active"
    assert signed["sourceAttachment"]["hash"]
    (entry,) = [e for e in audit_of(runtime, answer) if e["resource_type"] == "Consent"
                and e["outcome"] == "success" and e["action"] == "update"]  # fmt: skip
    assert entry["patient_ids"] == [north.patient_id]
    with runtime.reader.connect() as conn:
        row = conn.execute(sa.select(authorization_documents)).one()
    assert (row.authority, row.signed_by) == ("self", entry["actor_id"])
    text = runtime.disclosures.authorizations.document(
        runtime.identity.authenticate(north.tokens["patient"]), cid
    )
    assert text is not None
    assert "revoke this authorization at any time" in text
    assert "redisclosed" in text
    assert "conditioned" in text

    out = disclose(client, north, "authorization", lawyer, role="staff", purpose="PATRQT",
                   info=(glucose,), authorization=cid)  # fmt: skip
    assert out.status_code == 200, out.text
    assert list(released(out)) == [glucose]
    assert released(out)[glucose]["valueString"] == "within range"  # no cut (164.502(b)(2))
    (row,) = ledger(runtime, north)
    assert (row.basis, row.recipient_ref, row.authorization_ref) == (
        "authorization",
        lawyer,
        f"Consent/{cid}",
    )
    (entry,) = [e for e in audit_of(runtime, out) if e["action"] == "export"]
    assert entry["outcome"] == "success"
    assert glucose in entry["resource_ids"]
    assert "disclose" in entry["detail"]


def test_each_missing_element_is_named_and_nothing_is_signed(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    lawyer = organization(runtime, north, "bus")
    us = organization(runtime, north, "prov")
    secret = patient_totp(client, runtime, north)
    for body, element in [
        (consent(north, lawyer, us, classes=("Observation",), purpose=None), "purpose"),
        (consent(north, lawyer, us, classes=("Observation",), end=None), "period.end"),
        (consent(north, lawyer, us), "provision.data"),
    ]:
        cid = draft(client, north, body)
        answer = sign(client, runtime, north, cid, secret)
        assert answer.status_code == 422, answer.text
        assert element in answer.text
        assert audit_of(runtime, answer)
        read = client.get(f"/fhir/Consent/{cid}", headers=north.headers("staff")).json()
        assert read["status"] == "proposed"
    # an unsigned, incomplete one cannot carry a release either
    before = len(ledger(runtime, north))
    out = disclose(client, north, "authorization", lawyer, role="staff", purpose="PATRQT",
                   types=("Observation",), authorization=cid)  # fmt: skip
    why = refused(runtime, north, out, 422, before)
    assert "provision.data" in why


def test_signing_needs_the_second_factor_and_a_verified_recipient(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    us = organization(runtime, north, "prov")
    unverified = organization(runtime, north, "bus", verified=False)
    lawyer = organization(runtime, north, "bus")
    secret = patient_totp(client, runtime, north)
    cid = draft(client, north, consent(north, lawyer, us, classes=("Observation",)))
    wrong = sign(client, runtime, north, cid, secret, code="000000")
    assert wrong.status_code == 401
    cid2 = draft(client, north, consent(north, unverified, us, classes=("Observation",)))
    assert sign(client, runtime, north, cid2, secret).status_code == 422
    staff = client.post(f"/fhir/Consent/{cid}/$sign", headers=north.headers("staff"),
                        json={"resourceType": "Parameters", "parameter": [
                            {"name": "password", "valueString": "x"},
                            {"name": "code", "valueString": "123456"}]})  # fmt: skip
    assert staff.status_code == 403  # only the patient or their representative signs
    other = client.post(f"/fhir/Consent/{cid}/$sign", headers=clinic.south.headers("patient"),
                        json={"resourceType": "Parameters", "parameter": [
                            {"name": "password", "valueString": "x"},
                            {"name": "code", "valueString": "123456"}]})  # fmt: skip
    assert other.status_code == 404
    with runtime.reader.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(authorization_documents)).scalar()
            == 0
        )


def test_revoked_expired_other_recipient_and_other_information_are_refused(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    lawyer = organization(runtime, north, "bus")
    insurer = organization(runtime, north, "ins")
    us = organization(runtime, north, "prov")
    named = observation(runtime, north)
    other = observation(runtime, north, code="718-7", display="Hemoglobin")
    cid = signed_authorization(
        client, runtime, north, consent(north, lawyer, us, data=(named,), end="2026-11-30")
    )
    before = len(ledger(runtime, north))

    def ask(recipient: str, info: tuple[str, ...], purpose: str = "PATRQT") -> object:
        return disclose(client, north, "authorization", recipient, role="staff",
                        purpose=purpose, info=info, authorization=cid)  # fmt: skip

    assert "another recipient" in refused(runtime, north, ask(insurer, (named,)), 403, before)
    assert "not named" in refused(runtime, north, ask(lawyer, (other,)), 403, before)
    assert "another purpose" in refused(runtime, north, ask(lawyer, (named,), "HMARKT"), 403,
                                        before)  # fmt: skip
    clock.advance(timedelta(days=8))  # past the end of 2026-11-30
    assert "expired" in refused(runtime, north, ask(lawyer, (named,)), 403, before)
    clock.advance(timedelta(days=-8))
    assert ask(lawyer, (named,)).status_code == 200  # type: ignore[attr-defined]
    revoked = client.post(f"/fhir/Consent/{cid}/$revoke", headers=north.headers("patient"))
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "inactive"
    after = len(ledger(runtime, north))
    assert "revoked" in refused(runtime, north, ask(lawyer, (named,)), 403, after)
    again = client.post(f"/fhir/Consent/{cid}/$revoke", headers=north.headers("patient"))
    assert again.status_code == 409
    # re-activating the Consent by hand does not undo the revocation
    body = client.get(f"/fhir/Consent/{cid}", headers=north.headers("staff")).json()
    body["status"] = "active"
    assert client.put(f"/fhir/Consent/{cid}", json=body,
                      headers=north.headers("staff")).status_code == 200  # fmt: skip
    assert "revoked" in refused(runtime, north, ask(lawyer, (named,)), 403, after)


def test_an_authorization_ending_on_an_event_ends_when_the_event_is_recorded(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    """Expiry "at the end of the research study": it stands until someone records the event,
    then refuses every release; a dated authorization has no event to record."""
    north = clinic.north
    lab = organization(runtime, north, "bus")
    us = organization(runtime, north, "prov")
    named = observation(runtime, north)
    body = consent(north, lab, us, data=(named,), end=None)
    body["extension"] = [{"url": EXPIRY_EVENT, "valueString": "the end of the research study"}]
    secret = patient_totp(client, runtime, north)
    cid = draft(client, north, body)
    assert sign(client, runtime, north, cid, secret).status_code == 200

    def ask() -> object:
        return disclose(client, north, "authorization", lab, role="staff", purpose="PATRQT",
                        info=(named,), authorization=cid)  # fmt: skip

    assert ask().status_code == 200  # type: ignore[attr-defined]
    # a practitioner cannot end it; the front desk records the event the patient reported
    url = f"/fhir/Consent/{cid}/$expiry-event-occurred"
    assert client.post(url, headers=north.headers("practitioner")).status_code == 403
    ended = client.post(url, headers=north.headers("staff"))
    assert ended.status_code == 200, ended.text
    assert ended.json()["status"] == "inactive"
    after = len(ledger(runtime, north))
    assert "expiry event occurred" in refused(runtime, north, ask(), 403, after)
    assert client.post(url, headers=north.headers("staff")).status_code == 409
    (entry,) = [e for e in audit_of(runtime, ended) if e["resource_type"] == "Consent"][-1:]
    assert entry["detail"] == "authorization ended: its expiry event occurred"
    # re-activating the Consent by hand does not bring it back
    again = client.get(f"/fhir/Consent/{cid}", headers=north.headers("staff")).json()
    again["status"] = "active"
    assert client.put(f"/fhir/Consent/{cid}", json=again,
                      headers=north.headers("staff")).status_code == 200  # fmt: skip
    assert "expiry event occurred" in refused(runtime, north, ask(), 403, after)

    dated = draft(client, north, consent(north, lab, us, data=(named,)))
    assert sign(client, runtime, north, dated, secret).status_code == 200
    no_event = client.post(f"/fhir/Consent/{dated}/$expiry-event-occurred",
                           headers=north.headers("staff"))  # fmt: skip
    assert no_event.status_code == 409
    assert "expires on a date" in no_event.text


def test_terms_edited_after_signing_void_the_signature(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    lawyer = organization(runtime, north, "bus")
    us = organization(runtime, north, "prov")
    named = observation(runtime, north)
    other = observation(runtime, north, code="718-7")
    cid = signed_authorization(client, runtime, north, consent(north, lawyer, us, data=(named,)))
    body = client.get(f"/fhir/Consent/{cid}", headers=north.headers("staff")).json()
    body["provision"]["data"].append({"meaning": "instance", "reference": {"reference": other}})
    assert client.put(f"/fhir/Consent/{cid}", json=body,
                      headers=north.headers("staff")).status_code == 200  # fmt: skip
    out = disclose(client, north, "authorization", lawyer, role="staff", purpose="PATRQT",
                   info=(other,), authorization=cid)  # fmt: skip
    assert "changed after it was signed" in refused(runtime, north, out, 403, 0)


def test_a_representative_signs_with_their_authority_recorded(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    lawyer = organization(runtime, north, "bus")
    us = organization(runtime, north, "prov")
    imaging = observation(runtime, north)
    staff = north.headers("staff")
    rep = user_id(runtime, north, "representative")
    secret = patient_totp(client, runtime, north, role="representative")
    cid = draft(client, north, consent(north, lawyer, us, data=(imaging,)))
    # no verified relationship yet: the patient's record is out of reach
    assert sign(client, runtime, north, cid, secret, role="representative").status_code == 404
    recorded = client.post("/access/representations", headers=staff, json={
        "representative": rep, "patient": north.patient_id, "kind": "authorized-agent",
        "document_digest": "e" * 64, "expires_at": "2027-06-01T00:00:00+00:00"})  # fmt: skip
    assert recorded.status_code == 201, recorded.text
    rid = recorded.json()["representation_id"]
    verified = client.post(f"/access/representations/{rid}/verify", headers=staff,
                           json={"method": "power-of-attorney"})  # fmt: skip
    assert verified.status_code == 200, verified.text
    answer = sign(client, runtime, north, cid, secret, role="representative")
    assert answer.status_code == 200, answer.text
    with runtime.reader.connect() as conn:
        row = conn.execute(sa.select(authorization_documents)).one()
    assert (row.authority, row.representation_id, row.signed_by) == ("authorized-agent", rid, rep)
    actor = runtime.identity.authenticate(north.tokens["representative"])
    text = runtime.disclosures.authorizations.document(actor, cid)
    assert text is not None
    assert "(authorized-agent)" in text


def test_a_class_with_dates_and_an_exception_releases_just_that(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    """ "Lab results from 2024, except psychotherapy notes" to an identified recipient."""
    north = clinic.north
    lawyer = organization(runtime, north, "bus")
    us = organization(runtime, north, "prov")
    in_2024 = observation(runtime, north, when="2024-03-01")
    in_2025 = observation(runtime, north, when="2025-03-01")
    note = observation(runtime, north, when="2024-04-01", labels=("PSYTHPN",))
    body = consent(north, lawyer, us, classes=("Observation",), deny_labels=("PSYTHPN",),
                   dated=("2024-01-01", "2024-12-31"))  # fmt: skip
    cid = signed_authorization(client, runtime, north, body)
    out = disclose(client, north, "authorization", lawyer, role="staff", purpose="PATRQT",
                   authorization=cid)  # fmt: skip
    assert out.status_code == 200, out.text
    assert set(released(out)) == {in_2024}
    issues = out.json()["entry"][-1]["resource"]["issue"]
    assert any(note in i["diagnostics"] for i in issues)
    # naming what the class excludes, or a kind it does not name, is refused
    for info in ((note,), (in_2025,), (f"Patient/{north.patient_id}",)):
        answer = disclose(client, north, "authorization", lawyer, role="staff",
                          purpose="PATRQT", info=info, authorization=cid)  # fmt: skip
        refused(runtime, north, answer, 403, 1)
    other_kind = disclose(
        client,
        north,
        "authorization",
        lawyer,
        role="staff",
        purpose="PATRQT",
        types=("Condition",),
        authorization=cid,
    )
    assert other_kind.status_code in (403, 422)
    assert len(ledger(runtime, north)) == 1
