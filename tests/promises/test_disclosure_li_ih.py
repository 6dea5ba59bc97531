"""lifeIMAGE's disclosure promises (seed 003, policies/lifeimage.yaml), each driven through
the disclosure path as a user would: nothing leaves without the member's Express Consent,
except to a vendor under a BAA or as the law compels, and then only what is compelled, with
notice before."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from carevault.clock import isoformat
from tests.access_helpers import user_id
from tests.audit_rows import audit_of
from tests.disclosure_helpers import (
    consent,
    disclose,
    draft,
    ledger,
    observation,
    organization,
    outbox,
    patient_totp,
    refused,
    released,
    sign,
    signed_authorization,
)
from tests.promises.conftest import Deployment
from tests.promises.disclosure_steps_li import (
    authorization_rows,
    condition,
    encounter,
    family_member,
    fields_of,
    file_baa,
    order_id,
    signed_with,
    tagged_organization,
)

Profiled = Callable[[str], Deployment]
REFUSED_BASES = (
    ("treatment", "practitioner"), ("payment", "staff"), ("operations", "staff"),
    ("public-health", "staff"), ("abuse-neglect", "practitioner"),
    ("serious-threat", "practitioner"), ("decedent", "practitioner"),
    ("research", "privacy-officer"),
)  # fmt: skip


@pytest.mark.promise("LI-01", "LI-41")
def test_lifeimage_releases_only_on_the_bases_it_sets_forth(profiled: Profiled) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    patient = f"Patient/{north.patient_id}"
    glucose = observation(rt, north)
    clinic_b = organization(rt, north, "prov", name="Eastside Clinic")
    agency = organization(rt, north, "govt", name="State Health Dept")
    for basis, role in REFUSED_BASES:
        to = agency if basis in ("public-health", "abuse-neglect") else clinic_b
        answer = disclose(client, north, basis, to, role=role, info=(patient, glucose),
                          purpose="an imminent threat to a named person")  # fmt: skip
        why = refused(rt, north, answer, 403, 0)
        assert f"(lifeIMAGE) does not allow disclosures on the basis {basis}" in why, basis
    assert outbox(rt, north, "disclosure-upcoming") == []

    # what the Statement sets forth: the member's Express Consent, the member, a BAA vendor,
    # and the law
    us = organization(rt, north, "prov", name="North Imaging")
    cid = signed_authorization(client, rt, north, consent(north, clinic_b, us, data=(glucose,)))
    vendor = organization(rt, north, "bus", name="Cloud PACS Inc")
    assert file_baa(client, north, vendor).status_code == 201
    court = organization(rt, north, "govt", name="District Court")
    order = order_id(client, north, resource_types=["Observation"], date_from="2024-01-01")
    passing = (
        disclose(client, north, "authorization", clinic_b, role="staff", purpose="PATRQT",
                 info=(glucose,), authorization=cid),
        disclose(client, north, "individual", patient, role="staff", info=(glucose,)),
        disclose(client, north, "business-associate", vendor, info=(patient,)),
        disclose(client, north, "required-by-law", court, info=(glucose,), order=order),
    )  # fmt: skip
    for answer in passing:
        assert answer.status_code == 200, answer.text
    assert sorted(r.basis for r in ledger(rt, north)) == [
        "authorization", "business-associate", "individual", "required-by-law",
    ]  # fmt: skip


@pytest.mark.promise("LI-05", "LI-13", "LI-40")
def test_express_consent_names_the_information_the_recipient_and_the_purpose(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    lawyer = organization(rt, north, "bus", name="Quill & Partners")
    insurer = organization(rt, north, "ins", name="Lakeside Mutual")
    us = organization(rt, north, "prov", name="North Imaging")
    named = observation(rt, north, code="24627-2", display="CT chest")
    other = observation(rt, north, code="718-7", display="Hemoglobin")

    # no Express Consent: the third party gets nothing, whatever the basis
    assert "name the authorization" in refused(rt, north, disclose(
        client, north, "authorization", lawyer, role="staff", purpose="PATRQT", info=(named,),
    ), 422, 0)  # fmt: skip
    assert "does not allow" in refused(rt, north, disclose(
        client, north, "operations", lawyer, role="staff", info=(named,)), 403, 0)  # fmt: skip

    cid = signed_authorization(client, rt, north, consent(north, lawyer, us, data=(named,)))

    def ask(recipient: str, info: tuple[str, ...], purpose: str = "PATRQT") -> object:
        return disclose(client, north, "authorization", recipient, role="staff",
                        purpose=purpose, info=info, authorization=cid)  # fmt: skip

    assert "another recipient" in refused(rt, north, ask(insurer, (named,)), 403, 0)
    assert "not named" in refused(rt, north, ask(lawyer, (other,)), 403, 0)
    assert "not named" in refused(rt, north, ask(lawyer, (named, other)), 403, 0)
    assert "another purpose" in refused(rt, north, ask(lawyer, (named,), "HMARKT"), 403, 0)
    out = ask(lawyer, (named,))
    assert out.status_code == 200, out.text  # type: ignore[attr-defined]
    assert list(released(out)) == [named]
    (row,) = ledger(rt, north)
    assert (row.basis, row.recipient_ref, row.authorization_ref) == (
        "authorization", lawyer, f"Consent/{cid}",
    )  # fmt: skip
    # nothing named in the request: exactly what the Express Consent names, nothing else
    whole = disclose(client, north, "authorization", lawyer, role="staff", purpose="PATRQT",
                     authorization=cid)  # fmt: skip
    assert whole.status_code == 200, whole.text
    assert list(released(whole)) == [named]


@pytest.mark.promise("LI-29")
def test_a_vendor_gets_phi_only_under_a_business_associate_agreement(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    vendor = organization(rt, north, "bus", name="Cloud PACS Inc")
    patient = f"Patient/{north.patient_id}"
    visit = encounter(rt, north)

    def ask() -> object:
        return disclose(client, north, "business-associate", vendor, info=(patient, visit))

    assert "no business associate agreement" in refused(rt, north, ask(), 403, 0)
    for basis, role in (("operations", "staff"), ("payment", "staff")):
        refused(rt, north, disclose(client, north, basis, vendor, role=role,
                                    info=(patient,)), 403, 0)  # fmt: skip
    assert file_baa(client, north, vendor, "2024-01-01", "2025-12-31").status_code == 201
    assert "ended on 2025-12-31" in refused(rt, north, ask(), 403, 0)
    assert file_baa(client, north, vendor).status_code == 201
    out = ask()
    assert out.status_code == 200, out.text  # type: ignore[attr-defined]
    got = released(out)
    assert fields_of(got[patient]) <= {"identifier", "gender", "birthDate"}  # operations cut
    assert fields_of(got[visit]) <= {"status", "class", "type", "period", "subject"}
    (row,) = ledger(rt, north)
    assert (row.basis, row.recipient_ref) == ("business-associate", vendor)


@pytest.mark.promise("LI-33", "LI-08")
def test_a_court_order_releases_only_what_it_expressly_orders(profiled: Profiled) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    court = organization(rt, north, "govt", name="District Court")
    named = observation(rt, north, when="2024-06-01")
    later = observation(rt, north, when="2025-02-01")
    injury = condition(rt, north)
    order = order_id(client, north)  # 2024 Observations
    for info in ((later,), (injury,), (named, later), (f"Patient/{north.patient_id}",)):
        why = refused(rt, north, disclose(client, north, "required-by-law", court, info=info,
                                          order=order), 403, 0)  # fmt: skip
        assert "does not name" in why
        assert "only what it names is released" in why
    assert outbox(rt, north, "disclosure-upcoming") == []
    out = disclose(client, north, "required-by-law", court, info=(named,), order=order)
    assert out.status_code == 200, out.text
    assert set(released(out)) == {named}
    whole = disclose(client, north, "required-by-law", court, order=order)
    assert set(released(whole)) == {named}  # the order's own class: the 2025 lab stays
    assert all(r.order_id == order for r in ledger(rt, north))
    (entry,) = [e for e in audit_of(rt, whole) if e["action"] == "export"]
    assert entry["resource_ids"] == [named]
    assert entry["purpose"] == "HLEGAL"


@pytest.mark.promise("LI-04")
def test_an_authorization_is_signed_only_with_a_fresh_password_and_second_factor(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    lawyer = organization(rt, north, "bus", name="Quill & Partners")
    us = organization(rt, north, "prov", name="North Imaging")
    exam = observation(rt, north, code="24627-2", display="CT chest")
    cid = draft(client, north, consent(north, lawyer, us, data=(exam,)))
    # no authenticator app yet: the member must enrol one before signing
    assert sign(client, rt, north, cid, "", code="123456").status_code == 403
    secret = patient_totp(client, rt, north)
    assert sign(client, rt, north, cid, secret, code="000000").status_code == 401
    no_password = client.post(f"/fhir/Consent/{cid}/$sign", headers=north.headers("patient"),
                              json={"resourceType": "Parameters", "parameter": [
                                  {"name": "password", "valueString": "not the passphrase"},
                                  {"name": "code", "valueString": "123456"}]})  # fmt: skip
    assert no_password.status_code == 401
    assert audit_of(rt, no_password)
    assert client.get(f"/fhir/Consent/{cid}", headers=north.headers("staff")).json()[
        "status"] == "proposed"  # fmt: skip
    assert authorization_rows(rt) == []
    assert "never signed" in refused(rt, north, disclose(
        client, north, "authorization", lawyer, role="staff", purpose="PATRQT", info=(exam,),
        authorization=cid), 403, 0)  # fmt: skip
    signed = sign(client, rt, north, cid, secret)
    assert signed.status_code == 200, signed.text
    assert signed.json()["status"] == "active"
    (row,) = authorization_rows(rt)
    assert (row.authority, row.signed_by) == ("self", user_id(rt, north, "patient"))
    assert row.signed_at == isoformat(rt.clock.now())  # identity confirmed at that moment
    out = disclose(client, north, "authorization", lawyer, role="staff", purpose="PATRQT",
                   info=(exam,), authorization=cid)  # fmt: skip
    assert out.status_code == 200, out.text


@pytest.mark.promise("LI-07")
def test_a_family_member_gets_nothing_without_the_members_express_consent(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    mother = family_member(rt, north)
    exam = observation(rt, north, code="24627-2", display="CT chest")
    patient = f"Patient/{north.patient_id}"
    # the mother's own account, claimed as a representative but never verified: no reach
    recorded = client.post("/access/representations", headers=north.headers("staff"), json={
        "representative": user_id(rt, north, "representative"), "patient": north.patient_id,
        "kind": "authorized-agent", "document_digest": "e" * 64,
        "expires_at": "2027-06-01T00:00:00+00:00"})  # fmt: skip
    assert recorded.status_code == 201, recorded.text
    for path in (f"/fhir/{patient}", f"/fhir/{exam}"):
        read = client.get(path, headers=north.headers("representative"))
        assert read.status_code == 404
        assert [e["outcome"] for e in audit_of(rt, read)] == ["not-found"]
    # nor through the disclosure path: she is not the patient, and every other basis but
    # the member's Express Consent is refused
    for basis, role in (("individual", "staff"), ("serious-threat", "practitioner"),
                        ("treatment", "practitioner")):  # fmt: skip
        asked = disclose(client, north, basis, mother, role=role, info=(exam,),
                         purpose="she asked for her daughter's scan")  # fmt: skip
        refused(rt, north, asked, 403, 0)
    why = refused(rt, north, disclose(client, north, "individual", mother, role="staff",
                                      info=(exam,)), 403, 0)  # fmt: skip
    assert "must be the patient" in why
    # nothing left, and the member was sent nothing to say otherwise
    assert ledger(rt, north) == []
    assert outbox(rt, north, "disclosure-made") == []


@pytest.mark.promise("LI-37")
def test_organizations_operating_linked_websites_receive_nothing(profiled: Profiled) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    site = tagged_organization(rt, north, "linked-websites", "Imaging Forum Ltd")
    us = organization(rt, north, "prov", name="North Imaging")
    exam = observation(rt, north, code="24627-2", display="CT chest")
    patient = f"Patient/{north.patient_id}"
    assert file_baa(client, north, site).status_code == 201
    secret = patient_totp(client, rt, north)
    cid = signed_with(client, rt, north, secret, consent(north, site, us, data=(exam,)))
    attempts = (
        disclose(client, north, "authorization", site, role="staff", purpose="PATRQT",
                 info=(exam,), authorization=cid),
        disclose(client, north, "business-associate", site, role="staff", info=(exam,)),
    )  # fmt: skip
    for answer in attempts:
        why = refused(rt, north, answer, 403, 0)
        assert "(lifeIMAGE) releases nothing of the patient's record to linked-websites" in why
    refused(rt, north, disclose(client, north, "operations", site, role="staff",
                                info=(patient,)), 403, 0)  # fmt: skip
    # the same Express Consent to a chosen provider does release
    chosen = organization(rt, north, "prov", name="Eastside Clinic")
    cid2 = signed_with(client, rt, north, secret, consent(north, chosen, us, data=(exam,)))
    out = disclose(client, north, "authorization", chosen, role="staff", purpose="PATRQT",
                   info=(exam,), authorization=cid2)  # fmt: skip
    assert out.status_code == 200, out.text
    assert [r.recipient_ref for r in ledger(rt, north)] == [chosen]


@pytest.mark.promise("LI-49", "LI-51")
def test_an_inactivated_accounts_records_leave_only_under_an_authorization_or_the_law(
    profiled: Profiled,
) -> None:
    dep = profiled("lifeimage")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    lawyer = organization(rt, north, "bus", name="Quill & Partners")
    us = organization(rt, north, "prov", name="North Imaging")
    clinic_b = organization(rt, north, "prov", name="Eastside Clinic")
    court = organization(rt, north, "govt", name="District Court")
    exam = observation(rt, north, when="2024-06-01", code="24627-2", display="CT chest")
    cid = signed_authorization(client, rt, north, consent(north, lawyer, us, data=(exam,)))
    uid = user_id(rt, north, "patient")
    closed = client.post(f"/privacy/accounts/{uid}/inactivate",
                         headers=north.headers("privacy-officer"))  # fmt: skip
    assert closed.status_code == 200, closed.text
    assert client.get(f"/fhir/{exam}", headers=north.headers("patient")).status_code == 401
    for basis, role in REFUSED_BASES:
        asked = disclose(client, north, basis, clinic_b, role=role, info=(exam,),
                         purpose="an imminent threat to a named person")  # fmt: skip
        refused(rt, north, asked, 403, 0)
    assert "another recipient" in refused(rt, north, disclose(
        client, north, "authorization", clinic_b, role="staff", purpose="PATRQT", info=(exam,),
        authorization=cid), 403, 0)  # fmt: skip
    out = disclose(client, north, "authorization", lawyer, role="staff", purpose="PATRQT",
                   info=(exam,), authorization=cid)  # fmt: skip
    assert out.status_code == 200, out.text
    assert list(released(out)) == [exam]
    compelled = disclose(client, north, "required-by-law", court, info=(exam,),
                         order=order_id(client, north))  # fmt: skip
    assert compelled.status_code == 200, compelled.text
    assert sorted(r.basis for r in ledger(rt, north)) == ["authorization", "required-by-law"]
