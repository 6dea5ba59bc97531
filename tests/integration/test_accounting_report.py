"""The accounting of disclosures (45 CFR 164.528) through the HTTP API: every ledger entry
appears with what the rule asks for, in JSON, FHIR and PDF; the six-year window; the bases
the rule leaves out, and a policy that promises more; who may read it; the read is audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from fhir.resources.R4B.bundle import Bundle

from carevault.clock import ManualClock
from carevault.errors import Invalid
from carevault.policy import parse_policy, policies_dir
from carevault.policy.bases import Basis
from carevault.privacy.disclosure.ledger import disclosures
from carevault.runtime import Runtime
from tests.access_helpers import create, fresh_token
from tests.accounting_helpers import accounting, disclose, listed, pdf_text, recipient
from tests.audit_rows import audit_of
from tests.conftest import Clinic
from tests.integration.test_segmentation_gate import MINOR_LABEL, observation, parent_of


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_each_disclosure_appears_with_what_the_rule_asks(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    dept = recipient(runtime, north)
    court = recipient(runtime, north, "Springfield County Court")
    first = disclose(runtime, north, dept, resource_refs=(f"Patient/{north.patient_id}",))
    clock.advance(timedelta(hours=1))
    second = disclose(
        runtime, north, court, basis=Basis.REQUIRED_BY_LAW, order_id="order-17",
        recipient_name="Springfield County Court", recipient_address="3 Court St",
        purpose="", request_copy="Order 17: produce the 2025 visit notes",
        description="Visit notes, 2025",
    )  # fmt: skip

    response = accounting(client, north.patient_id, north.headers("patient"), "json")
    assert response.status_code == 200, response.text
    report = orjson.loads(response.content)
    assert report["patient"] == f"Patient/{north.patient_id}"
    assert report["period"]["start"].startswith("2020-11-23")
    by_id = {d["id"]: d for d in report["disclosures"]}
    assert list(by_id) == [first.disclosure_id, second.disclosure_id]
    one, two = by_id[first.disclosure_id], by_id[second.disclosure_id]
    assert one["recipient"] == {"reference": dept, "name": "Springfield Department of Health",
                                "address": "1 Civic Plaza, Springfield 01101"}  # fmt: skip
    assert (one["basis"], one["purpose"]) == ("public-health", "notifiable disease report")
    assert one["description"] == "Laboratory result: positive culture"
    assert one["date"] == first.disclosed_at
    assert (two["basis"], two["order"]) == ("required-by-law", "order-17")
    assert two["request_copy"] == "Order 17: produce the 2025 visit notes"

    (entry,) = audit_of(runtime, response)
    assert (entry["action"], entry["resource_type"], entry["outcome"]) == (
        "read", "Disclosure", "success",
    )  # fmt: skip
    assert entry["patient_ids"] == [north.patient_id]
    assert entry["purpose"] == "PATRQT"
    assert set(entry["resource_ids"]) == {first.disclosure_id, second.disclosure_id}

    fhir = accounting(client, north.patient_id, north.headers("patient"))
    assert fhir.status_code == 200
    assert fhir.headers["content-type"].startswith("application/fhir+json")
    bundle = fhir.json()
    Bundle.model_validate(bundle)  # a valid R4 Bundle of AuditEvent
    events = [e["resource"] for e in bundle["entry"]]
    assert [e["resourceType"] for e in events] == ["AuditEvent", "AuditEvent"]
    assert events[0]["agent"][0]["who"] == {
        "reference": dept,
        "display": "Springfield Department of Health",
    }
    assert events[1]["subtype"][0]["code"] == "required-by-law"
    assert {"type": "legal-order", "valueString": "order-17"} in events[1]["entity"][1]["detail"]

    pdf = accounting(client, north.patient_id, north.headers("patient"), "pdf")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.content)
    for expected in ("Accounting of disclosures", "Springfield Department of Health",
                     "Springfield County Court", "positive culture", "required-by-law",
                     "order-17"):  # fmt: skip
        assert expected in text
    assert len(audit_of(runtime, pdf)) == 1

    # the ledger keeps recipient, address, purpose and request sealed; ids and dates in clear
    with runtime.reader.connect() as conn:
        rows = conn.execute(sa.select(disclosures)).mappings().all()
    assert {r["basis"] for r in rows} == {"public-health", "required-by-law"}
    for row in rows:
        raw = orjson.dumps({str(k): v for k, v in row.items() if k != "details_sealed"})
        assert b"Springfield" not in raw
        assert b"Springfield" not in row["details_sealed"]


def test_the_report_covers_six_years_to_the_day(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    old = disclose(runtime, north, recipient(runtime, north))  # 2026-11-23 09:00
    for when, shown in (
        (datetime(2032, 11, 22, 23, 0, tzinfo=UTC), True),  # day N-1
        (datetime(2032, 11, 23, 23, 59, tzinfo=UTC), True),  # day N: the same date, 6 years on
        (datetime(2032, 11, 24, 0, 1, tzinfo=UTC), False),  # day N+1
    ):
        clock.advance(when - clock.now())
        token = _bearer(fresh_token(runtime, north, "patient"))
        assert (old.disclosure_id in listed(client, north.patient_id, token)) is shown, when


def test_excluded_bases_are_left_out_unless_the_policy_promises_more(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    to = recipient(runtime, north)
    excluded = {
        basis: disclose(runtime, north, to, basis=basis,
                        authorization_ref="Consent/c1" if basis is Basis.AUTHORIZATION else None)
        for basis in (Basis.TREATMENT, Basis.PAYMENT, Basis.OPERATIONS, Basis.INDIVIDUAL,
                      Basis.AUTHORIZATION)
    }  # fmt: skip
    kept = disclose(runtime, north, to, basis=Basis.HEALTH_OVERSIGHT)
    headers = north.headers("patient")
    assert listed(client, north.patient_id, headers) == [kept.disclosure_id]

    # a policy that promises to account for treatment disclosures too
    text = (policies_dir() / "default.yaml").read_text(encoding="utf-8")
    generous = text.replace("    treatment: {}", "    treatment: {in_accounting: true}")
    assert generous != text
    runtime.policy = parse_policy(generous, "generous.yaml")
    shown = listed(client, north.patient_id, headers)
    assert set(shown) == {excluded[Basis.TREATMENT].disclosure_id, kept.disclosure_id}


def test_who_may_read_it_and_another_patient_is_a_404(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north, south = clinic.north, clinic.south
    mine = disclose(runtime, north, recipient(runtime, north))
    other = disclose(runtime, north, recipient(runtime, north), patient_id=north.other_patient_id)
    assert listed(client, north.patient_id, north.headers("patient")) == [mine.disclosure_id]

    for pid in (north.other_patient_id, south.patient_id, "no-such-patient"):
        refused = accounting(client, pid, north.headers("patient"), "json")
        assert refused.status_code == 404
        assert refused.json()["resourceType"] == "OperationOutcome"
        (entry,) = audit_of(runtime, refused)
        assert (entry["outcome"], entry["resource_type"]) == ("not-found", "Disclosure")
        assert other.disclosure_id not in refused.text

    # the privacy officer reads any patient's, audited under HCOMPL; the workforce may not
    officer = accounting(client, north.other_patient_id, north.headers("privacy-officer"), "json")
    assert officer.status_code == 200
    assert [d["id"] for d in officer.json()["disclosures"]] == [other.disclosure_id]
    assert audit_of(runtime, officer)[0]["purpose"] == "HCOMPL"
    assert accounting(client, south.patient_id, north.headers("privacy-officer")).status_code == 404
    for role in ("practitioner", "staff", "practice-admin"):
        refused = accounting(client, north.patient_id, north.headers(role))
        assert refused.status_code == 403, role
        assert audit_of(runtime, refused)[0]["outcome"] == "denied"
    assert accounting(client, north.patient_id, {}).status_code == 401
    bad = accounting(client, north.patient_id, north.headers("patient"), "xml")
    assert bad.status_code == 406
    assert audit_of(runtime, bad)[0]["outcome"] == "invalid"


def test_a_future_clock_and_shredded_details(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    """An entry dated after the request is not listed; the window moves with the clock."""
    north = clinic.north
    later = disclose(runtime, north, recipient(runtime, north),
                     when=clock.now() + timedelta(days=2))  # fmt: skip
    assert listed(client, north.patient_id, north.headers("patient")) == []
    clock.advance(timedelta(days=3))
    assert listed(client, north.patient_id, north.headers("patient")) == [later.disclosure_id]


def test_the_parent_reads_it_without_what_the_minor_consented_to_alone(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    minor = parent_of(runtime, client, north)
    private = create(runtime, north, observation(minor, "contraception visit", MINOR_LABEL))
    to = recipient(runtime, north)
    plain = disclose(runtime, north, to, patient_id=minor)
    telling = disclose(runtime, north, to, patient_id=minor,
                       resource_refs=(f"Observation/{private}",))  # fmt: skip
    parent = accounting(client, minor, north.headers("representative"), "json")
    assert parent.status_code == 200, parent.text
    assert [d["id"] for d in parent.json()["disclosures"]] == [plain.disclosure_id]
    (entry,) = audit_of(runtime, parent)
    assert (entry["purpose"], entry["on_behalf_of"]) == ("FAMRQT", minor)
    assert entry["resource_ids"] == [plain.disclosure_id]
    officer = listed(client, minor, north.headers("privacy-officer"))
    assert set(officer) == {plain.disclosure_id, telling.disclosure_id}
    # the representative reaches only the patients they represent
    assert accounting(client, north.patient_id, north.headers("representative")).status_code == 404


def test_the_ledger_refuses_an_incomplete_entry(runtime: Runtime, clinic: Clinic) -> None:
    north = clinic.north
    to = recipient(runtime, north)
    for bad, message in (
        ({"basis": "treatment"}, "basis"),
        ({"basis": Basis.AUTHORIZATION}, "names the authorization"),
        ({"purpose": "", "request_copy": None}, "purpose or carries a copy"),
        ({"to": "a free-text name"}, "recipient_ref"),
        ({"to": "Observation/x"}, "recipient_ref"),
        ({"recipient_name": ""}, "recipient_name"),
        ({"description": ""}, "description"),
        ({"disclosed_at": "2026-11-23T09:00:00"}, "time zone"),
        ({"authorization_ref": "Consent/c1", "basis": Basis.PUBLIC_HEALTH,
          "resource_refs": ("not a reference",)}, "resource_refs"),
    ):  # fmt: skip
        with pytest.raises(Invalid, match=message):
            disclose(runtime, north, str(bad.pop("to", to)), **bad)
    with runtime.reader.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(disclosures)).scalar() == 0
