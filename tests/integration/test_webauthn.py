"""Passkeys as a second factor: a real registration and assertion ceremony with a software
authenticator (P-256, "none" attestation), and the forgeries it must refuse."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from carevault.identity.permissions import Role
from carevault.runtime import Runtime
from tests.account_helpers import PASSWORD, bearer, login_entries, outbox, sign_in, tenant, user
from tests.webauthn_authenticator import SoftAuthenticator

EMAIL = "practitioner@north.example.org"


def _enrol_passkey(client: TestClient, token: str, device: SoftAuthenticator) -> str:
    options = client.post("/auth/webauthn/register/begin", headers=bearer(token)).json()
    assert options["rp"]["id"] == "localhost"
    done = client.post(
        "/auth/webauthn/register/complete",
        headers=bearer(token),
        json={"credential": device.register(options)},
    )
    assert done.status_code == 200, done.text
    return str(done.json()["token"])


def test_enrol_a_passkey_then_sign_in_with_it(runtime: Runtime, client: TestClient) -> None:
    t = tenant(runtime)
    user_id = user(runtime, t, Role.PRACTITIONER)
    device = SoftAuthenticator()
    pending = sign_in(client, "north", EMAIL).json()["token"]
    active = _enrol_passkey(client, pending, device)
    assert client.get("/fhir/Observation", headers=bearer(active)).status_code == 200
    assert outbox(runtime, t.tenant_id, "mfa-changed") == [{"recipient": user_id}]

    second = sign_in(client, "north", EMAIL).json()
    assert (second["stage"], second["factors"]) == ("mfa", ["webauthn"])
    options = client.post(
        "/auth/webauthn/authenticate/begin", headers=bearer(second["token"])
    ).json()
    assertion = device.sign_assertion(options)
    done = client.post(
        "/auth/webauthn/authenticate/complete",
        headers=bearer(second["token"]),
        json={"credential": assertion},
    )
    assert done.status_code == 200
    assert done.json()["stage"] == "active"
    # The same assertion again (a replay) finds no pending challenge.
    third = sign_in(client, "north", EMAIL).json()["token"]
    replay = client.post(
        "/auth/webauthn/authenticate/complete",
        headers=bearer(third),
        json={"credential": assertion},
    )
    assert replay.status_code == 401
    assert login_entries(runtime, t.tenant_id)[-1].outcome == "denied"


def test_forged_assertions_are_refused(runtime: Runtime, client: TestClient) -> None:
    t = tenant(runtime)
    user(runtime, t, Role.PRACTITIONER)
    device = SoftAuthenticator()
    _enrol_passkey(client, sign_in(client, "north", EMAIL).json()["token"], device)
    token = sign_in(client, "north", EMAIL).json()["token"]
    options = client.post("/auth/webauthn/authenticate/begin", headers=bearer(token)).json()
    for forged in (
        device.sign_assertion(options, origin="https://evil.example"),  # phishing origin
        SoftAuthenticator().sign_assertion(options),  # another key, unknown credential
        {"id": "x", "response": {}},  # malformed
    ):
        answer = client.post(
            "/auth/webauthn/authenticate/complete",
            headers=bearer(token),
            json={"credential": forged},
        )
        assert answer.status_code == 401, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    assert client.get("/auth/session", headers=bearer(token)).json()["stage"] == "mfa"


def test_passkey_re_authentication_needs_the_password(runtime: Runtime, client: TestClient) -> None:
    t = tenant(runtime)
    user(runtime, t, Role.PRACTITIONER)
    device = SoftAuthenticator()
    token = _enrol_passkey(client, sign_in(client, "north", EMAIL).json()["token"], device)
    runtime.clock.advance(timedelta(minutes=6))  # type: ignore[attr-defined]
    assert (
        client.put("/auth/phone", headers=bearer(token), json={"phone": "+1 555 0199"}).status_code
        == 403
    )
    options = client.post("/auth/webauthn/authenticate/begin", headers=bearer(token)).json()
    no_pw = client.post(
        "/auth/webauthn/authenticate/complete",
        headers=bearer(token),
        json={"credential": device.sign_assertion(options)},
    )
    assert no_pw.status_code == 401
    options = client.post("/auth/webauthn/authenticate/begin", headers=bearer(token)).json()
    fresh = client.post(
        "/auth/webauthn/authenticate/complete",
        headers=bearer(token),
        json={"credential": device.sign_assertion(options), "password": PASSWORD},
    )
    assert fresh.status_code == 200
    assert "fresh_until" in fresh.json()
    assert (
        client.put("/auth/phone", headers=bearer(token), json={"phone": "+1 555 0199"}).status_code
        == 204
    )
