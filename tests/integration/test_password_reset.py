"""Password reset: 202 whether or not the email exists, a single-use link that expires, and
never a way around the second factor; it ends every session."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from carevault.identity.permissions import Role
from carevault.identity.totp import code_at
from carevault.runtime import Runtime
from tests.account_helpers import bearer, enrol_totp, login_entries, outbox, sign_in, tenant, user

EMAIL = "staff@north.example.org"
NEW = "copper meadow lantern 88"


def _link(runtime: Runtime, tenant_id: str) -> str:
    link = str(outbox(runtime, tenant_id, "password-reset")[-1]["link"])
    assert link.startswith("http://localhost:8000/portal/reset-password/")
    return link.split("#token=", 1)[1]


def test_reset_needs_the_link_and_the_second_factor(runtime: Runtime, client: TestClient) -> None:
    t = tenant(runtime)
    user(runtime, t, Role.STAFF)
    secret, session = enrol_totp(client, runtime, sign_in(client, "north", EMAIL).json()["token"])
    known = client.post("/auth/password-reset", json={"tenant": "north", "email": EMAIL})
    unknown = client.post(
        "/auth/password-reset", json={"tenant": "north", "email": "no@north.example.org"}
    )
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    token = _link(runtime, t.tenant_id)
    body = {"tenant_id": t.tenant_id, "token": token, "password": NEW}
    no_code = client.post("/auth/password-reset/confirm", json=body)
    assert no_code.status_code == 401  # the link alone is not enough
    weak = client.post("/auth/password-reset/confirm", json={**body, "password": "password1"})
    assert weak.status_code == 400
    runtime.clock.advance(timedelta(seconds=31))  # type: ignore[attr-defined]
    code = code_at(secret, runtime.clock.now())
    done = client.post("/auth/password-reset/confirm", json={**body, "code": code})
    assert done.status_code == 204, done.text
    assert client.get("/auth/session", headers=bearer(session)).status_code == 401
    again = client.post("/auth/password-reset/confirm", json={**body, "code": code})
    assert again.status_code == 400  # single use
    assert sign_in(client, "north", EMAIL, NEW).json()["stage"] == "mfa"
    entries = login_entries(runtime, t.tenant_id)
    assert any("password reset; 1 sessions ended" in (e.detail or "") for e in entries)


def test_links_expire_and_a_patient_without_a_factor_resets_with_the_link(
    runtime: Runtime, client: TestClient
) -> None:
    t = tenant(runtime)
    user(runtime, t, Role.PATIENT)
    email = "patient@north.example.org"
    client.post("/auth/password-reset", json={"tenant": "north", "email": email})
    old = _link(runtime, t.tenant_id)
    runtime.clock.advance(timedelta(minutes=31))  # type: ignore[attr-defined]
    body = {"tenant_id": t.tenant_id, "token": old, "password": NEW}
    assert client.post("/auth/password-reset/confirm", json=body).status_code == 400
    client.post("/auth/password-reset", json={"tenant": "north", "email": email})
    fresh = _link(runtime, t.tenant_id)
    assert (
        client.post("/auth/password-reset/confirm", json={**body, "token": fresh}).status_code
        == 204
    )
    assert sign_in(client, "north", email, NEW).status_code == 200
    forged = client.post(
        "/auth/password-reset/confirm", json={**body, "token": "A" * 43, "tenant_id": "nope"}
    )
    assert forged.status_code == 400
