"""CCPA rights over the vendor's own personal information: the vendor decides; verification
matched to the risk; authorized agents need signed permission; twice in 12 months; no B2B
rights where the policy says so; and exercising a right changes no price or service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carevault.clock import ManualClock
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.errors import Forbidden, NotFound, Unprocessable
from carevault.identity.account_base import ACCOUNTS_KEY, set_factor_fields
from carevault.identity.models import api_tokens, users
from carevault.identity.tenant_policy import tenant_policies
from carevault.runtime import Runtime
from tests.conftest import Clinic
from tests.rights_helpers import WHO, actor, outbox, vendor_audit, wire

KNOW = {"action": "know", "categories": ["account"]}
COPY = {"action": "access", "categories": ["account"]}
PHONE = "+1 555 014 2000"


def _person(points: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {**COPY, "channel": "web-form", "tenant": "north", "data_points": points, **extra}


def _set_phone(runtime: Runtime, tenant_id: str, user_id: str) -> None:
    sealed = runtime.vault.seal_for(
        tenant_id, ACCOUNTS_KEY, PHONE.encode(), f"phone:{user_id}".encode()
    )
    runtime.committer.submit(
        lambda conn: set_factor_fields(
            conn, tenant_id, user_id, "2026-11-23T09:00:00Z", phone_sealed=sealed
        )
    )


def test_the_router_sends_account_data_to_the_vendor_under_the_ccpa(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    wire(runtime)
    made = client.post("/rights/requests", json=KNOW, headers=clinic.north.headers("staff"))
    assert made.status_code == 201, made.text
    route = made.json()["route"]
    assert route["rulebook"] == "ccpa"
    assert route["right"] == "ccpa-know"
    assert route["decides"] == "CareVault (the vendor)"
    assert "California Consumer Privacy Act" in route["explanation"]
    assert "rights-test" not in route["explanation"]
    assert "CareVault default" in route["explanation"]
    assert made.json()["request"]["due_at"][:10] == "2027-01-07"  # 45 days
    # the tenant's officer does not decide it; the vendor's operators do
    north_queue = client.get(
        "/admin/rights/queue", headers=clinic.north.headers("privacy-officer")
    ).json()["requests"]
    vendor_queue = client.get(
        "/admin/rights/queue", headers=clinic.north.headers("vendor-operator")
    ).json()["requests"]
    assert north_queue == []
    assert [r["right"] for r in vendor_queue] == ["ccpa-know"]
    assert next(e.action for e in vendor_audit(runtime)) == "create"
    # the requester reads their case
    rid = made.json()["request"]["request_id"]
    mine = client.get(f"/rights/requests/{rid}", headers=clinic.north.headers("staff"))
    assert mine.status_code == 200
    assert mine.json()["decides"] == "CareVault (the vendor)"
    assert (
        client.get(
            f"/rights/requests/{rid}", headers=clinic.north.headers("practitioner")
        ).status_code
        == 404
    )


def test_the_third_request_in_twelve_months_is_refused_with_the_next_date(
    runtime: Runtime, clinic: Clinic, clock: ManualClock
) -> None:
    service = wire(runtime)
    holder = actor(runtime, clinic.north, "staff")
    service.receive(holder, KNOW, WHO)
    clock.advance(timedelta(days=10))
    service.receive(holder, COPY, WHO)  # know and copy share the limit
    clock.advance(timedelta(days=10))
    with pytest.raises(Unprocessable) as third:
        service.receive(holder, COPY, WHO)
    assert "2 in any 12 months" in third.value.message
    assert "You may ask again from 2027-11-23" in third.value.message
    refused = [e for e in vendor_audit(runtime) if e.outcome != "success"]
    assert len(refused) == 1
    assert "refused: ccpa-access" in refused[0].detail
    # deleting or correcting is not limited
    service.receive(holder, {"action": "delete", "categories": ["account"]}, WHO)
    # someone else's limit is their own
    service.receive(actor(runtime, clinic.north, "practitioner"), COPY, WHO)
    clock.advance(timedelta(days=365 - 20))  # the first request leaves the window
    service.receive(holder, COPY, WHO)


def test_a_person_not_signed_in_is_verified_by_matching_data_points(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    wire(runtime)
    email = "staff@north.example.org"
    for points in (
        {"email": email},
        {"email": email, "account_created_on": "2020-01-01"},
        {"email": "nobody@north.example.org", "account_created_on": "2026-11-23"},
        {"email": email, "phone": PHONE, "account_created_on": "2026-11-23"},
    ):
        refused = client.post("/rights/requests", json=_person(points))
        assert refused.status_code == 403, points
        assert "could not verify" in refused.json()["detail"]
        assert email not in refused.json()["detail"]
    assert client.post("/rights/requests", json=_person({"email": email})).status_code == 403
    made = client.post(
        "/rights/requests", json=_person({"email": email, "account_created_on": "2026-11-23"})
    )
    assert made.status_code == 201, made.text
    assert made.json()["request"]["verification"] == "data-points:2"
    assert made.json()["request"]["requester_kind"] == "person"
    audit = vendor_audit(runtime)
    assert [e.outcome for e in audit] == ["denied"] * 5 + ["success"]
    assert all(email not in (e.detail or "") for e in audit)


def test_sensitive_data_needs_three_points_and_a_signed_declaration(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    wire(runtime)
    user = actor(runtime, clinic.north, "staff").user_id
    _set_phone(runtime, clinic.north.tenant_id, user)
    two = {"email": "staff@north.example.org", "account_created_on": "2026-11-23"}
    three = {**two, "phone": "(555) 014-2000"}
    sensitive = {"categories": ["biometric"]}
    declaration = {"under_penalty_of_perjury": True, "signature": "Sam Staff"}
    answers = [
        client.post("/rights/requests", json=_person(two, **sensitive)),
        client.post("/rights/requests", json=_person(three, **sensitive)),
        client.post(
            "/rights/requests", json=_person(three, **sensitive, declaration={"signature": "Sam"})
        ),
    ]
    assert [a.status_code for a in answers] == [403, 403, 403]
    assert "declaration" in answers[1].json()["detail"]
    made = client.post(
        "/rights/requests", json=_person(three, **sensitive, declaration=declaration)
    )
    assert made.status_code == 201, made.text
    assert made.json()["request"]["verification"] == "data-points:3+declaration"
    # signed in without a second factor is not enough for sensitive data
    signed = client.post(
        "/rights/requests", json={**KNOW, **sensitive}, headers=clinic.north.headers("patient")
    )
    assert signed.status_code == 403
    assert "second factor" in signed.json()["detail"]


def test_an_authorized_agent_needs_the_consumers_signed_permission(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    wire(runtime)
    points = {"email": "staff@north.example.org", "account_created_on": "2026-11-23"}
    for permission in (
        None,
        {"signed_by_consumer": False, "document_sha256": "a" * 64, "signed_on": "2026-11-01"},
        {"signed_by_consumer": True, "document_sha256": "not hex", "signed_on": "2026-11-01"},
    ):
        extra = {"requester": "authorized-agent", "agent_permission": permission}
        refused = client.post("/rights/requests", json=_person(points, **extra))
        assert refused.status_code == 403
        assert "signed permission" in refused.json()["detail"]
    permission = {
        "signed_by_consumer": True,
        "document_sha256": "b" * 64,
        "signed_on": "2026-11-01",
    }
    made = client.post(
        "/rights/requests",
        json=_person(points, requester="authorized-agent", agent_permission=permission),
    )
    assert made.status_code == 201, made.text
    assert made.json()["request"]["requester_kind"] == "authorized-agent"
    # the emails go to the consumer's own account, never to an address the agent gives
    from tests.rights_helpers import outbox

    sent = outbox(runtime, clinic.north.tenant_id, "rights-request-received")
    assert [m["recipient"] for m in sent] == [actor(runtime, clinic.north, "staff").user_id]


def test_no_b2b_rights_where_the_policy_says_so(runtime: Runtime, clinic: Clinic) -> None:
    holder = actor(runtime, clinic.north, "staff")
    service = wire(runtime, b2b=lambda policy: True)
    with pytest.raises(Forbidden, match="business contacts"):
        service.receive(holder, {**KNOW, "business_contact": True}, WHO)
    service.receive(holder, KNOW, WHO)  # as a consumer, the same person may ask
    open_policy = wire(runtime)
    open_policy.receive(holder, {**COPY, "business_contact": True}, WHO)


def _account_state(runtime: Runtime, clinic: Clinic, user_id: str) -> tuple[Any, ...]:
    with runtime.reader.connect() as conn:
        user = conn.execute(
            select(users.c.role, users.c.active, users.c.patient_id).where(
                users.c.user_id == user_id
            )
        ).one()
        tokens = conn.execute(
            select(
                api_tokens.c.scopes,
                api_tokens.c.purpose,
                api_tokens.c.expires_at,
                api_tokens.c.revoked_at,
            ).where(api_tokens.c.user_id == user_id)
        ).all()
        policy = conn.execute(
            select(tenant_policies).where(tenant_policies.c.tenant_id == clinic.north.tenant_id)
        ).all()
    return tuple(user), [tuple(t) for t in tokens], [tuple(p) for p in policy]


def test_exercising_a_right_changes_no_price_or_service(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    """Non-discrimination (Cal. Civ. Code 1798.125): the account's role, access, tokens and
    the tenant's service settings are the same after a request as before."""
    service = wire(runtime)
    holder = actor(runtime, clinic.north, "patient")
    vendor = actor(runtime, clinic.north, "vendor-operator")
    before = _account_state(runtime, clinic, holder.user_id)
    reads_before = client.get(
        f"/fhir/Patient/{clinic.north.patient_id}", headers=clinic.north.headers("patient")
    )
    for body in (KNOW, COPY):
        view, _ = service.receive(holder, body, WHO)
        service.fulfil(vendor, view.request_id, {}, WHO)
    view, _ = service.receive(
        holder,
        {"action": "correct", "categories": ["account"]}
        | {"statement": "My sign-in email is misspelt."},
        WHO,
    )
    service.decide(vendor, view.request_id, {"decision": "accept"}, WHO)
    service.fulfil(vendor, view.request_id, {"corrected": "email corrected by admin"}, WHO)
    assert _account_state(runtime, clinic, holder.user_id) == before
    assert runtime.identity.authenticate(clinic.north.tokens["patient"]) == holder
    after = client.get(
        f"/fhir/Patient/{clinic.north.patient_id}", headers=clinic.north.headers("patient")
    )
    assert (after.status_code, after.json()) == (reads_before.status_code, reads_before.json())


def test_know_and_copy_are_fulfilled_with_the_accounts_data(
    client: TestClient, runtime: Runtime, clinic: Clinic
) -> None:
    service = wire(runtime)
    holder = actor(runtime, clinic.north, "staff")
    vendor = actor(runtime, clinic.north, "vendor-operator")
    know, _ = service.receive(holder, KNOW, WHO)
    done = service.fulfil(vendor, know.request_id, {}, WHO)
    assert done.status == "fulfilled"
    assert done.copies == ["json"]
    got = client.get(
        f"/rights/requests/{know.request_id}/copy?form=json", headers=clinic.north.headers("staff")
    ).json()
    assert "account" in got["categories"]
    assert got["sold"] is False
    assert got["pieces"]["account"]["email"] == "staff@north.example.org"
    assert got["pieces"]["period"]["to"] == know.received_at
    # deletion waits for a decision, then needs the deletion service
    delete, _ = service.receive(holder, {"action": "delete", "categories": ["account"]}, WHO)
    with pytest.raises(Exception, match="decide"):
        service.fulfil(vendor, delete.request_id, {}, WHO)
    denied = service.decide(
        vendor,
        delete.request_id,
        {
            "decision": "deny",
            "basis": "retention-required-by-law",
            "reason": "Sign-in records are kept for six years for HIPAA audits.",
        },
        WHO,
    )
    letter = next(n.text for n in denied.notices if n.kind == "denied") or ""
    assert "1798.105" in letter
    assert "never changes the price" in letter
    # a tenant's officer cannot decide the vendor's case
    with pytest.raises(NotFound):
        service.decide(
            actor(runtime, clinic.north, "privacy-officer"),
            know.request_id,
            {"decision": "accept"},
            WHO,
        )
    assert VENDOR_CHAIN == "_vendor"


def test_a_ccpa_deletion_erases_the_account_and_says_what_it_kept(
    runtime: Runtime, clinic: Clinic
) -> None:
    service = wire(runtime)
    holder = actor(runtime, clinic.north, "practitioner")
    vendor = actor(runtime, clinic.north, "vendor-operator")
    _set_phone(runtime, clinic.north.tenant_id, holder.user_id)
    view, route = service.receive(holder, {"action": "delete", "categories": ["account"]}, WHO)
    assert route.right == "ccpa-delete"
    service.decide(vendor, view.request_id, {"decision": "accept"}, WHO)
    done = service.fulfil(vendor, view.request_id, {}, WHO)
    assert done.status == "fulfilled"
    assert done.fulfilment is not None
    deletion: dict[str, Any] = done.fulfilment["deletion"]  # type: ignore[assignment]
    assert deletion["erased"] is True
    assert deletion["deleted"]["account_identity"]
    assert deletion["deleted"]["account_factors"] == 1  # the phone
    assert deletion["deleted"]["api_tokens"] >= 1
    kept = " ".join(deletion["kept"])
    assert "7101" in kept  # the request's own record
    assert "audit trail" in kept
    assert "PHI" in kept
    with runtime.reader.connect() as conn:
        row = conn.execute(select(users).where(users.c.user_id == holder.user_id)).one()
        tokens = conn.execute(
            select(api_tokens).where(api_tokens.c.user_id == holder.user_id)
        ).all()
    assert (row.active, row.email_sealed, row.password_hash) == (False, b"", None)
    assert row.email_hash == f"erased:{holder.user_id}"
    assert tokens == []
    # the erased account is really gone: its address no longer verifies anyone
    again = _person({"email": "practitioner@north.example.org", "account_created_on": "2026-11-23"})
    with pytest.raises(Forbidden):
        service.receive(None, again, WHO)
    assert any("fulfilled: ccpa-delete" in (e.detail or "") for e in vendor_audit(runtime))
    with runtime.reader.connect() as conn:
        from carevault.audit.models import audit_entries

        erased = (
            conn.execute(
                select(audit_entries.c.detail).where(
                    audit_entries.c.tenant_id == clinic.north.tenant_id,
                    audit_entries.c.resource_type == "User",
                )
            )
            .scalars()
            .all()
        )
    assert any("personal information erased (account)" in d for d in erased)


def test_a_ccpa_deletion_never_deletes_health_information(runtime: Runtime, clinic: Clinic) -> None:
    service = wire(runtime)
    patient = actor(runtime, clinic.north, "patient")
    with pytest.raises(Unprocessable) as refused:
        service.receive(patient, {"action": "delete", "categories": ["phi"]}, WHO)
    assert "HIPAA gives no right to 'delete'" in refused.value.message
    view, _ = service.receive(patient, {"action": "delete", "categories": ["account"]}, WHO)
    vendor = actor(runtime, clinic.north, "vendor-operator")
    service.decide(vendor, view.request_id, {"decision": "accept"}, WHO)
    service.fulfil(vendor, view.request_id, {}, WHO)
    doctor = actor(runtime, clinic.north, "practitioner")
    record = runtime.gate(doctor).read("Patient", clinic.north.patient_id)
    assert record is not None  # the patient's record is the tenant's: still there


def test_an_address_alone_does_not_reach_sensitive_data(runtime: Runtime, clinic: Clinic) -> None:
    service = wire(runtime)
    service.send_email_check({"email": "reader@example.net"}, WHO)
    [sent] = outbox(runtime, VENDOR_CHAIN, "rights-email-check")
    token = str(sent["link"]).split("token=")[1]
    body = {"action": "know", "categories": ["biometric"], "email_check": {"token": token}}
    with pytest.raises(Forbidden) as refused:
        service.receive(None, body, WHO)
    assert "an address alone is not enough" in refused.value.message
    assert any("refused" in (e.detail or "") for e in vendor_audit(runtime))
    made, _ = service.receive(None, {**body, "categories": ["account"]}, WHO)  # not spent
    assert made.verification == "email-confirmed"
