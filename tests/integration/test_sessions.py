"""Sessions: idle and absolute limits, sign-out (a stolen token is dead after it), sign out
everywhere, a disabled account, re-authentication before sensitive changes, the cookie."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from carevault.identity.account_base import Client
from carevault.identity.models import system_actor
from carevault.identity.permissions import Role
from carevault.identity.tenant_policy import CareRule, TenantPolicy, store_policy
from carevault.identity.totp import code_at
from carevault.runtime import Runtime
from tests.account_helpers import (
    PASSWORD,
    bearer,
    enrol_totp,
    login_entries,
    outbox,
    sign_in,
    tenant,
    user,
)

EMAIL = "patient@north.example.org"


def _patient_session(runtime: Runtime, client: TestClient) -> tuple[str, str]:
    t = tenant(runtime)
    user(runtime, t, Role.PATIENT)
    return t.tenant_id, sign_in(client, "north", EMAIL).json()["token"]


def test_idle_limit_ends_a_session_and_the_refusal_is_audited(
    runtime: Runtime, client: TestClient
) -> None:
    tenant_id, token = _patient_session(runtime, client)
    runtime.clock.advance(timedelta(minutes=14))  # type: ignore[attr-defined]
    assert client.get("/auth/session", headers=bearer(token)).status_code == 200  # resets idle
    runtime.clock.advance(timedelta(minutes=14))  # type: ignore[attr-defined]
    assert client.get("/fhir/Observation", headers=bearer(token)).status_code == 200
    runtime.clock.advance(timedelta(minutes=16))  # type: ignore[attr-defined]
    assert client.get("/auth/session", headers=bearer(token)).status_code == 401
    assert client.get("/fhir/Observation", headers=bearer(token)).status_code == 401
    last = login_entries(runtime, tenant_id)[-1]
    assert (last.outcome, last.status) == ("denied", 401)


def test_absolute_limit_from_the_tenant_policy(runtime: Runtime, client: TestClient) -> None:
    tenant_id, _ = _patient_session(runtime, client)
    policy = TenantPolicy(CareRule.TENANT_WIDE, timedelta(minutes=30), timedelta(hours=1))
    runtime.committer.submit(lambda c: store_policy(c, tenant_id, policy, "2026-11-23T09:00Z"))
    token = sign_in(client, "north", EMAIL).json()["token"]
    for _ in range(3):
        runtime.clock.advance(timedelta(minutes=19))  # type: ignore[attr-defined]
        assert client.get("/auth/session", headers=bearer(token)).status_code == 200
    runtime.clock.advance(timedelta(minutes=3))  # 61 minutes: past the 1-hour limit  # type: ignore[attr-defined]
    answer = client.get("/auth/session", headers=bearer(token))
    assert answer.status_code == 401
    assert "expired" in answer.json()["detail"]


def test_a_token_stolen_before_sign_out_is_dead_after_it(
    runtime: Runtime, client: TestClient
) -> None:
    tenant_id, token = _patient_session(runtime, client)
    assert client.post("/auth/sign-out", headers=bearer(token)).json() == {"ended": 1}
    for path in ("/auth/session", "/fhir/Observation"):
        assert client.get(path, headers=bearer(token)).status_code == 401
    assert client.post("/auth/sign-out", headers=bearer(token)).status_code == 401
    assert any("session refused" in (e.detail or "") for e in login_entries(runtime, tenant_id))


def test_sign_out_everywhere_and_a_new_session_per_sign_in(
    runtime: Runtime, client: TestClient
) -> None:
    _, first = _patient_session(runtime, client)
    second = sign_in(client, "north", EMAIL).json()["token"]
    assert first != second
    assert client.post("/auth/sign-out-everywhere", headers=bearer(second)).json() == {"ended": 2}
    assert client.get("/auth/session", headers=bearer(first)).status_code == 401


def test_email_change_needs_re_authentication_and_notifies(
    runtime: Runtime, client: TestClient
) -> None:
    t = tenant(runtime)
    user_id = user(runtime, t, Role.STAFF)
    token = sign_in(client, "north", "staff@north.example.org").json()["token"]
    secret, token = enrol_totp(client, runtime, token)
    runtime.clock.advance(timedelta(minutes=6))  # type: ignore[attr-defined]
    new = {"email": "desk@north.example.org"}
    stale = client.put("/auth/email", headers=bearer(token), json=new)
    assert stale.status_code == 403
    wrong = client.post(
        "/auth/reauth", headers=bearer(token), json={"password": PASSWORD, "code": "123456"}
    )
    assert wrong.status_code == 401
    code = code_at(secret, runtime.clock.now())
    fresh = client.post(
        "/auth/reauth", headers=bearer(token), json={"password": PASSWORD, "code": code}
    )
    assert fresh.status_code == 200, fresh.text
    assert client.put("/auth/email", headers=bearer(token), json=new).status_code == 204
    assert (
        client.put("/auth/phone", headers=bearer(token), json={"phone": "+1 555 0100"}).status_code
        == 204
    )
    assert outbox(runtime, t.tenant_id, "email-changed") == [{"recipient": user_id}]
    runtime.clock.advance(timedelta(seconds=31))  # type: ignore[attr-defined]
    again = sign_in(client, "north", "desk@north.example.org")
    assert again.status_code == 200
    assert again.json()["stage"] == "mfa"


def test_cookie_delivery_is_httponly_secure_strict(runtime: Runtime, client: TestClient) -> None:
    t = tenant(runtime)
    user(runtime, t, Role.PATIENT)
    body = {"tenant": "north", "email": EMAIL, "password": PASSWORD}
    answer = client.post("/auth/sign-in", json=body)
    assert "token" not in answer.json()
    cookie = answer.headers["set-cookie"]
    for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
        assert flag.lower() in cookie.lower()
    token = cookie.split(";")[0].split("=", 1)[1]
    me = client.get("/auth/session", headers={"Cookie": f"cv_session={token}"})
    assert me.status_code == 200
    assert me.json()["role"] == "patient"


def test_disabled_accounts_session_is_refused(runtime: Runtime, client: TestClient) -> None:
    tenant_id, token = _patient_session(runtime, client)
    user_id = client.get("/auth/session", headers=bearer(token)).json()["user_id"]
    admin = system_actor(tenant_id, "test")  # holds identity:user:manage like an admin
    runtime.accounts.admin.update_user(admin, user_id, Client(), active=False)
    assert client.get("/fhir/Observation", headers=bearer(token)).status_code == 401
    assert sign_in(client, "north", EMAIL).status_code == 401
