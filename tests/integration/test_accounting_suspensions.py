"""Suspensions of the accounting (164.528(a)(2)): filed by the privacy officer with the
agency's statement and an end date, per patient or tenant-wide; while live they hide the
disclosures to law enforcement or oversight made before their end; past the end (or lifted
early) those disclosures reappear. Nobody else files them; bad input is refused and audited."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from carevault.clock import ManualClock, isoformat
from carevault.policy.bases import Basis
from carevault.runtime import Runtime
from tests.accounting_helpers import disclose, listed, recipient
from tests.audit_rows import audit_of
from tests.conftest import Clinic, Site


def _file(client: TestClient, site: Site, clock: ManualClock, **body: Any) -> Any:
    payload: dict[str, Any] = {
        "patient": site.patient_id, "kind": "law-enforcement",
        "agency_name": "Springfield Police Department",
        "statement": "Notice to the individual would impede investigation 24-118.",
        "statement_form": "written", "ends_at": isoformat(clock.now() + timedelta(days=10)),
        **body,
    }  # fmt: skip
    return client.post("/admin/accounting-suspensions", json=payload,
                       headers=site.headers("privacy-officer"))  # fmt: skip


def test_a_suspension_hides_until_it_ends(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    police = recipient(runtime, north, "Springfield Police Department")
    before = disclose(runtime, north, police, basis=Basis.LAW_ENFORCEMENT)
    clock.advance(timedelta(minutes=1))
    public = disclose(runtime, north, recipient(runtime, north), basis=Basis.PUBLIC_HEALTH)
    filed = _file(client, north, clock)
    assert filed.status_code == 201, filed.text
    suspension = filed.json()
    assert suspension["statement"].startswith("Notice to the individual")
    (entry,) = audit_of(runtime, filed)
    assert (entry["resource_type"], entry["patient_ids"]) == ("AccountingSuspension",
                                                              [north.patient_id])  # fmt: skip

    clock.advance(timedelta(days=2))
    during = disclose(runtime, north, police, basis=Basis.LAW_ENFORCEMENT)
    patient = north.headers("patient")
    assert listed(client, north.patient_id, patient) == [public.disclosure_id]
    # the officer's view of the patient's accounting is suspended the same way
    assert listed(client, north.patient_id, north.headers("privacy-officer")) == [
        public.disclosure_id
    ]

    clock.advance(timedelta(days=8, seconds=1))  # past ends_at
    shown = listed(client, north.patient_id, patient)
    assert shown == [before.disclosure_id, public.disclosure_id, during.disclosure_id]

    listing = client.get("/admin/accounting-suspensions", headers=north.headers("privacy-officer"))
    assert listing.status_code == 200
    assert [s["id"] for s in listing.json()["suspensions"]] == [suspension["id"]]
    assert audit_of(runtime, listing)[0]["resource_ids"] == [suspension["id"]]


def test_tenant_wide_oversight_suspension_lifted_early(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    board = recipient(runtime, north, "State Medical Board")
    other_board = recipient(runtime, north, "Federal Inspector General")
    hidden = disclose(runtime, north, board, basis=Basis.HEALTH_OVERSIGHT,
                      patient_id=north.other_patient_id)  # fmt: skip
    elsewhere = disclose(runtime, north, other_board, basis=Basis.HEALTH_OVERSIGHT,
                         patient_id=north.other_patient_id)  # fmt: skip
    police = disclose(runtime, north, board, basis=Basis.LAW_ENFORCEMENT,
                      patient_id=north.other_patient_id)  # fmt: skip
    filed = _file(client, north, clock, patient=None, kind="health-oversight", agency=board,
                  agency_name="State Medical Board")  # fmt: skip
    assert filed.status_code == 201, filed.text
    officer = north.headers("privacy-officer")
    shown = listed(client, north.other_patient_id, officer)
    assert set(shown) == {elsewhere.disclosure_id, police.disclosure_id}  # only to the board

    clock.advance(timedelta(minutes=5))
    ended = client.post(f"/admin/accounting-suspensions/{filed.json()['id']}/end",
                        headers=officer)  # fmt: skip
    assert ended.status_code == 200, ended.text
    assert ended.json()["ended_by"]
    assert hidden.disclosure_id in listed(client, north.other_patient_id, officer)
    again = client.post(f"/admin/accounting-suspensions/{filed.json()['id']}/end",
                        headers=officer)  # fmt: skip
    assert again.status_code == 409


def test_only_the_privacy_officer_files_and_bad_input_is_refused(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    for role in ("patient", "practitioner", "practice-admin", "staff"):
        refused = client.post("/admin/accounting-suspensions", content=b"not json",
                              headers=north.headers(role))  # fmt: skip
        assert refused.status_code == 403, role  # the permission before the body
        assert refused.headers["content-type"] == "application/problem+json"
        assert audit_of(runtime, refused)[0]["outcome"] == "denied"
        assert client.get("/admin/accounting-suspensions",
                          headers=north.headers(role)).status_code == 403  # fmt: skip
    oral = _file(client, north, clock, statement_form="oral",
                 ends_at=isoformat(clock.now() + timedelta(days=31)))  # fmt: skip
    assert oral.status_code == 400
    assert "30 days" in oral.json()["detail"]
    assert audit_of(runtime, oral)[0]["outcome"] == "invalid"
    month = isoformat(clock.now() + timedelta(days=30))
    assert _file(client, north, clock, statement_form="oral", ends_at=month).status_code == 201
    for bad in ({"kind": "curiosity"}, {"ends_at": isoformat(clock.now())},
                {"ends_at": "next week"}, {"statement": ""}, {"patient": 7},
                {"agency": "police"}, {"color": "red"}):  # fmt: skip
        assert _file(client, north, clock, **bad).status_code == 400, bad
    assert _file(client, north, clock, patient="nobody").status_code == 404
    # another tenant's patient is nobody here either
    assert _file(client, north, clock, patient=clinic.south.patient_id).status_code == 404
    missing = client.post("/admin/accounting-suspensions/nope/end",
                          headers=north.headers("privacy-officer"))  # fmt: skip
    assert missing.status_code == 404
