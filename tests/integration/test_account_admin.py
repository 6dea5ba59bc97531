"""The account administrator over HTTP: lists accounts (email decrypted, no PHI), creates
users, changes roles, disables (ends sessions), resets MFA, sets the tenant policy; a forged
tenant id and a non-administrator are refused; everything audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from carevault.errors import Invalid
from carevault.identity.account_base import Client
from carevault.identity.models import system_actor
from carevault.identity.permissions import Role
from carevault.identity.totp import code_at
from carevault.runtime import Runtime
from tests.account_helpers import bearer, enrol_totp, login_entries, outbox, sign_in, tenant, user


def _admin(runtime: Runtime, client: TestClient) -> tuple[str, str]:
    t = tenant(runtime)
    user(runtime, t, Role.PRACTICE_ADMIN)
    pending = sign_in(client, "north", "practice-admin@north.example.org").json()["token"]
    _, token = enrol_totp(client, runtime, pending)
    return t.tenant_id, token


def test_list_create_update_disable_and_policy(runtime: Runtime, client: TestClient) -> None:
    tenant_id, admin = _admin(runtime, client)
    created = client.post(
        "/admin/users",
        headers=bearer(admin),
        json={
            "email": "nurse@north.example.org",
            "role": "staff",
            "password": "amber lantern river 7",
        },
    )
    assert created.status_code == 201, created.text
    nurse = created.json()["user_id"]
    listing = client.get("/admin/users", headers=bearer(admin)).json()["users"]
    by_id = {u["user_id"]: u for u in listing}
    assert by_id[nurse]["email"] == "nurse@north.example.org"
    assert by_id[nurse]["role"] == "staff"
    assert by_id[nurse]["mfa_enrolled"] is False
    admin_row = next(u for u in listing if u["role"] == "practice-admin")
    assert admin_row["mfa_enrolled"] is True
    assert admin_row["last_sign_in_at"]
    assert set(admin_row) == {
        "user_id",
        "email",
        "role",
        "active",
        "mfa_enrolled",
        "may_break_glass",
        "last_sign_in_at",
        "locked_until",
        "created_at",
    }

    nurse_token = sign_in(
        client, "north", "nurse@north.example.org", "amber lantern river 7"
    ).json()["token"]
    promoted = client.patch(
        f"/admin/users/{nurse}", headers=bearer(admin), json={"role": "practitioner"}
    )
    assert promoted.status_code == 204
    assert client.get("/auth/session", headers=bearer(nurse_token)).status_code == 401
    assert (
        client.patch(
            f"/admin/users/{nurse}", headers=bearer(admin), json={"active": False}
        ).status_code
        == 204
    )
    assert (
        sign_in(client, "north", "nurse@north.example.org", "amber lantern river 7").status_code
        == 401
    )

    policy = {"care_rule": "care-team", "session_idle_minutes": 10, "session_absolute_minutes": 480}
    assert client.put("/admin/policy", headers=bearer(admin), json=policy).json() == policy
    bad = client.put(
        "/admin/policy", headers=bearer(admin), json={**policy, "session_idle_minutes": 600}
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    admin_entries = [e for e in login_entries(runtime, tenant_id) if e.action == "admin"]
    assert any("policy set" in (e.detail or "") for e in admin_entries)
    assert any(e.outcome == "invalid" and e.status == 400 for e in admin_entries)
    assert "nurse@" not in str([tuple(e) for e in admin_entries])


def test_mfa_reset_forces_re_enrolment(runtime: Runtime, client: TestClient) -> None:
    _, admin = _admin(runtime, client)
    t_id = client.get("/auth/session", headers=bearer(admin)).json()["tenant_id"]
    nurse = client.post(
        "/admin/users",
        headers=bearer(admin),
        json={
            "email": "n2@north.example.org",
            "role": "staff",
            "password": "amber lantern river 7",
        },
    ).json()["user_id"]
    pending = sign_in(client, "north", "n2@north.example.org", "amber lantern river 7")
    secret, token = enrol_totp(client, runtime, pending.json()["token"])
    assert client.post(f"/admin/users/{nurse}/mfa-reset", headers=bearer(admin)).status_code == 204
    assert client.get("/auth/session", headers=bearer(token)).status_code == 401
    runtime.clock.advance(timedelta(seconds=31))  # type: ignore[attr-defined]
    again = sign_in(client, "north", "n2@north.example.org", "amber lantern river 7").json()
    assert again["stage"] == "enrol"
    code = code_at(secret, runtime.clock.now())
    assert (
        client.post(
            "/auth/second-factor", headers=bearer(again["token"]), json={"code": code}
        ).status_code
        == 401
    )
    assert len(outbox(runtime, t_id, "mfa-changed")) >= 2


def test_forged_tenant_and_non_admins_are_refused(runtime: Runtime, client: TestClient) -> None:
    tenant_id, admin = _admin(runtime, client)
    other = tenant(runtime, "south")
    forged = client.post(
        "/admin/users",
        headers=bearer(admin),
        json={"email": "x@south.example.org", "role": "staff", "tenant_id": other.tenant_id},
    )
    assert forged.status_code == 400
    south_user = user(runtime, other, Role.STAFF)
    missing = client.patch(
        f"/admin/users/{south_user}", headers=bearer(admin), json={"active": False}
    )
    assert missing.status_code == 404
    vendor = client.post(
        "/admin/users",
        headers=bearer(admin),
        json={"email": "v@north.example.org", "role": "vendor-operator"},
    )
    assert vendor.status_code == 403
    user(runtime, runtime.identity.tenant_by_slug("north"), Role.PATIENT)
    patient = sign_in(client, "north", "patient@north.example.org").json()["token"]
    refused = client.get("/admin/users", headers=bearer(patient))
    assert refused.status_code == 403
    assert client.get("/admin/users").status_code == 401
    denied = [e for e in login_entries(runtime, tenant_id) if e.outcome == "denied"]
    assert any("no permission" in (e.detail or "") for e in denied)


def test_set_password_ends_sessions_and_clears_the_throttle(
    runtime: Runtime, client: TestClient
) -> None:
    t = tenant(runtime)
    user_id = user(runtime, t, Role.PATIENT)
    email = "patient@north.example.org"
    token = sign_in(client, "north", email).json()["token"]
    for _ in range(5):
        sign_in(client, "north", email, "wrong password!")
    actor = system_actor(t.tenant_id, "cli set-password")
    with pytest.raises(Invalid):
        runtime.accounts.admin.set_password(actor, user_id, "password", Client())
    runtime.accounts.admin.set_password(actor, user_id, "saffron tidal engine 5", Client())
    assert client.get("/auth/session", headers=bearer(token)).status_code == 401
    assert sign_in(client, "north", email, "saffron tidal engine 5").status_code == 200
