"""Legal orders and BAAs on file (admin routes), releases compelled by them — only what the
order names — and the patient's notice: before the release by default, held under a gag
until its end date passes or it is lifted."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.clock import ManualClock
from carevault.privacy.disclosure.models import held_notices
from carevault.runtime import Runtime
from carevault.settings import Settings
from tests.access_helpers import fresh_token
from tests.audit_rows import audit_of
from tests.cli_process import run_cli
from tests.conftest import Clinic, Site
from tests.disclosure_helpers import (
    disclose,
    ledger,
    observation,
    organization,
    outbox,
    refused,
    released,
)


def _order(client: TestClient, site: Site, **fields: Any) -> Any:
    body = {
        "kind": "court-order",
        "patient": site.patient_id,
        "resource_types": ["Observation"],
        "date_from": "2024-01-01",
        "date_to": "2024-12-31",
        "document_sha256": "b" * 64,
        "request_copy": "In re the matter of a court case, produce 2024 labs",
        **fields,
    }
    return client.post("/admin/legal-orders", json=body, headers=site.headers("privacy-officer"))


def _held(runtime: Runtime) -> list[Any]:
    with runtime.reader.connect() as conn:
        return list(conn.execute(sa.select(held_notices)))


def test_admin_routes_file_and_list_and_refuse(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    vendor = organization(runtime, north, "bus")
    filed = _order(client, north)
    assert filed.status_code == 201, filed.text
    order = filed.json()
    assert order["kind"] == "court-order"
    assert order["types"] == ["Observation"]
    assert "court case" not in filed.text  # the request copy is sealed, never echoed
    assert audit_of(runtime, filed)[0]["outcome"] == "success"
    listed = client.get("/admin/legal-orders", headers=north.headers("practice-admin"))
    assert [o["order_id"] for o in listed.json()["orders"]] == [order["order_id"]]
    for role in ("practitioner", "staff", "patient"):
        answer = client.get("/admin/legal-orders", headers=north.headers(role))
        assert answer.status_code == 403, role
        assert audit_of(runtime, answer)
    assert (
        client.get("/admin/legal-orders", headers=clinic.south.headers("privacy-officer")).json()[
            "orders"
        ]
        == []
    )
    bad: list[dict[str, Any]] = [
        {"kind": "rumour"},
        {"resource_types": []},
        {"resource_types": ["Spaceship"]},
        {"gag": "until-date"},
        {"document_sha256": "nope"},
        {"date_from": "01/02/2024"},
    ]
    for fields in bad:
        answer = _order(client, north, **fields)
        assert answer.status_code == 400, (fields, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
        assert audit_of(runtime, answer)
    assert _order(client, north, patient="nobody").status_code == 404
    baa = {"recipient": vendor, "effective_on": "2026-01-01", "document_sha256": "c" * 64}
    assert (
        client.post(
            "/admin/business-associate-agreements",
            json=baa,
            headers=north.headers("privacy-officer"),
        ).status_code
        == 201
    )
    assert (
        client.post(
            "/admin/business-associate-agreements",
            json={**baa, "ends_on": "2025-01-01"},
            headers=north.headers("privacy-officer"),
        ).status_code
        == 400
    )
    assert (
        client.post(
            "/admin/business-associate-agreements", json=baa, headers=north.headers("staff")
        ).status_code
        == 403
    )
    garbled = client.post(
        "/admin/business-associate-agreements",
        content=b"[",
        headers=north.headers("privacy-officer"),
    )
    assert garbled.status_code == 400
    assert audit_of(runtime, garbled)
    agreements = client.get(
        "/admin/business-associate-agreements", headers=north.headers("privacy-officer")
    ).json()["agreements"]
    assert [a["recipient_ref"] for a in agreements] == [vendor]


def test_court_order_releases_only_what_it_names_with_notice_before(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    court = organization(runtime, north, "govt", name="District Court")
    named = observation(runtime, north, when="2024-06-01")
    later = observation(runtime, north, when="2025-02-01")
    order_id = _order(client, north).json()["order_id"]
    why = refused(
        runtime,
        north,
        disclose(client, north, "required-by-law", court, info=(later,), order=order_id),
        403,
        0,
    )
    assert "does not name" in why
    assert outbox(runtime, north, "disclosure-upcoming") == []
    out = disclose(client, north, "required-by-law", court, info=(named,), order=order_id)
    assert out.status_code == 200, out.text
    assert set(released(out)) == {named}
    (row,) = ledger(runtime, north)
    assert row.order_id == order_id
    (notice,) = outbox(runtime, north, "disclosure-upcoming")
    assert notice.created_at <= row.disclosed_at  # queued before the release, same commit
    assert "patient" not in notice.params.lower() or notice.params == "{}"
    # nothing named: what the order names is released
    whole = disclose(client, north, "required-by-law", court, order=order_id)
    assert set(released(whole)) == {named}
    # an order for another patient, or a subpoena used as a court order, is refused
    other = _order(client, north, patient=north.other_patient_id).json()["order_id"]
    assert "another patient" in refused(
        runtime,
        north,
        disclose(client, north, "required-by-law", court, info=(named,), order=other),
        403,
        2,
    )
    sub = _order(client, north, kind="subpoena").json()["order_id"]
    refused(
        runtime,
        north,
        disclose(client, north, "required-by-law", court, info=(named,), order=sub),
        403,
        2,
    )
    missing = disclose(client, north, "required-by-law", court, info=(named,))
    assert "order" in refused(runtime, north, missing, 422, 2)


def test_subpoena_needs_satisfactory_assurances(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    firm = organization(runtime, north, "bus", name="Counsel LLP")
    named = observation(runtime, north, when="2024-06-01")
    bare = _order(client, north, kind="subpoena").json()["order_id"]
    why = refused(
        runtime, north, disclose(client, north, "subpoena", firm, info=(named,), order=bare), 403, 0
    )
    assert "164.512(e)(1)(ii)" in why
    assured = _order(
        client, north, kind="subpoena", assurances=["qualified-protective-order"]
    ).json()["order_id"]
    assert (
        disclose(client, north, "subpoena", firm, info=(named,), order=assured).status_code == 200
    )


def test_research_needs_a_waiver_on_file(
    runtime: Runtime, client: TestClient, clinic: Clinic
) -> None:
    north = clinic.north
    lab = organization(runtime, north, "edu", name="University Lab")
    named = observation(runtime, north, when="2024-06-01")
    assert "waiver" in refused(
        runtime, north, disclose(client, north, "research", lab, info=(named,)), 422, 0
    )
    waiver = client.post(
        "/admin/legal-orders",
        headers=north.headers("privacy-officer"),
        json={"kind": "irb-waiver", "resource_types": ["Observation"], "document_sha256": "d" * 64},
    )
    assert waiver.status_code == 201, waiver.text
    out = disclose(client, north, "research", lab, info=(named,), order=waiver.json()["order_id"])
    assert out.status_code == 200, out.text


def test_a_gag_holds_the_notice_until_its_end_date(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    police = organization(runtime, north, "govt", name="Police")
    named = observation(runtime, north, when="2024-06-01")
    order_id = _order(
        client, north, kind="warrant", gag="until-date", gag_until="2026-12-10"
    ).json()["order_id"]
    out = disclose(client, north, "required-by-law", police, info=(named,), order=order_id)
    assert out.status_code == 200, out.text
    assert outbox(runtime, north, "disclosure-upcoming") == []
    assert outbox(runtime, north, "disclosure-made") == []
    (held,) = _held(runtime)
    assert held.released_at is None
    assert runtime.disclosures.release_due_notices().notices == 0  # the gag still holds
    clock.advance(timedelta(days=17))  # 2026-12-10 09:00: the gag lasts through that day
    assert runtime.disclosures.release_due_notices().notices == 0
    clock.advance(timedelta(days=1))
    report = runtime.disclosures.release_due_notices()
    assert report.notices == 1
    assert len(outbox(runtime, north, "disclosure-made")) == 1
    assert _held(runtime)[0].released_at is not None
    assert runtime.disclosures.release_due_notices().notices == 0  # once only


def test_a_gag_until_lifted_releases_the_notice_when_lifted(
    runtime: Runtime, client: TestClient, clinic: Clinic, clock: ManualClock
) -> None:
    north = clinic.north
    court = organization(runtime, north, "govt")
    named = observation(runtime, north, when="2024-06-01")
    order_id = _order(client, north, gag="until-lifted").json()["order_id"]
    assert (
        disclose(client, north, "required-by-law", court, info=(named,), order=order_id).status_code
        == 200
    )
    clock.advance(timedelta(days=20))
    assert runtime.disclosures.release_due_notices().notices == 0
    token = fresh_token(runtime, north, "privacy-officer")
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        client.post(
            f"/admin/legal-orders/{order_id}/lift-gag",
            headers={"Authorization": f"Bearer {fresh_token(runtime, north, 'staff')}"},
        ).status_code
        == 403
    )
    lifted = client.post(f"/admin/legal-orders/{order_id}/lift-gag", headers=headers)
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["gag_lifted_at"] is not None
    assert len(outbox(runtime, north, "disclosure-made")) == 1
    (entry,) = audit_of(runtime, lifted)
    assert entry["patient_ids"] == [north.patient_id]
    again = client.post(f"/admin/legal-orders/{order_id}/lift-gag", headers=headers)
    assert again.status_code == 409


def test_the_command_line_releases_notices_whose_gag_ended(
    runtime: Runtime, client: TestClient, clinic: Clinic, settings: Settings
) -> None:
    north = clinic.north
    court = organization(runtime, north, "govt")
    named = observation(runtime, north, when="2024-06-01")
    # the test clock stands at 2026-11-23; the command runs on the real clock, which is later
    order_id = _order(client, north, gag="until-date", gag_until="2026-11-24").json()["order_id"]
    assert disclose(client, north, "required-by-law", court, info=(named,),
                    order=order_id).status_code == 200  # fmt: skip
    done = run_cli(settings, "disclosures", "release-notices")
    assert done.returncode == 0, done.stderr
    assert "1 held notices released in 1 tenants" in done.stdout
    assert len(outbox(runtime, north, "disclosure-made")) == 1
