"""Sign-in over HTTP: password, TOTP (enrol, use, replay), throttling and lockout, no
enumeration, and every success and refusal audited — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.identity.account_models import sign_in_throttle
from carevault.identity.permissions import Role
from carevault.identity.totp import code_at
from carevault.runtime import Runtime
from tests.account_helpers import (
    bearer,
    enrol_totp,
    login_entries,
    outbox,
    sign_in,
    tenant,
    user,
)

PATIENT_EMAIL = "patient@north.example.org"


def test_patient_signs_in_and_the_session_works_on_the_fhir_api(
    runtime: Runtime, client: TestClient
) -> None:
    t = tenant(runtime)
    user_id = user(runtime, t, Role.PATIENT)
    answer = sign_in(client, "north", PATIENT_EMAIL.upper())  # emails match case-blind
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["stage"] == "active"
    token = body["token"]
    assert token.startswith(f"cvs1.{t.tenant_id}.")
    assert len(token.rsplit(".", 1)[1]) >= 43
    me = client.get("/auth/session", headers=bearer(token)).json()
    assert me["user_id"] == user_id
    assert me["purpose"] == "PATRQT"
    # The FHIR API takes the session as a bearer token (an empty search is allowed).
    assert client.get("/fhir/Observation", headers=bearer(token)).status_code == 200
    entries = [e for e in login_entries(runtime, t.tenant_id) if e.action == "login"]
    assert entries[-1].outcome == "success"
    assert entries[-1].actor_id == user_id
    assert "north.example.org" not in str([tuple(e) for e in entries])  # no email in audit


def test_wrong_password_and_unknown_email_get_the_same_answer(
    runtime: Runtime, client: TestClient
) -> None:
    t = tenant(runtime)
    user_id = user(runtime, t, Role.PATIENT)
    wrong = sign_in(client, "north", PATIENT_EMAIL, "not the password at all")
    unknown = sign_in(client, "north", "nobody@north.example.org", "not the password at all")
    no_tenant = sign_in(client, "nowhere", PATIENT_EMAIL, "not the password at all")
    for answer in (wrong, unknown, no_tenant):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["detail"] == wrong.json()["detail"]
    refusals = [e for e in login_entries(runtime, t.tenant_id) if e.outcome == "denied"]
    assert [e.actor_id for e in refusals] == [user_id, "anonymous"]
    assert all(e.status == 401 for e in refusals)


def test_over_long_password_is_refused_unhashed_and_changes_nothing(
    runtime: Runtime, client: TestClient
) -> None:
    t = tenant(runtime)
    user(runtime, t, Role.PATIENT)
    answer = sign_in(client, "north", PATIENT_EMAIL, "x" * 129)
    assert answer.status_code == 400
    assert "at most 128" in answer.json()["detail"]
    with runtime.reader.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sign_in_throttle)).scalar() == 0
    last = login_entries(runtime, t.tenant_id)[-1]
    assert (last.action, last.outcome, last.status) == ("login", "invalid", 400)
    # 64 characters and NFKC-equivalent forms are fine.
    assert sign_in(client, "north", PATIENT_EMAIL).status_code == 200


def test_workforce_must_enrol_then_gives_totp_and_a_code_is_usable_once(
    runtime: Runtime, client: TestClient
) -> None:
    t = tenant(runtime)
    user(runtime, t, Role.PRACTITIONER)
    email = "practitioner@north.example.org"
    first = sign_in(client, "north", email).json()
    assert first["stage"] == "enrol"
    pending = first["token"]
    # A half-signed-in session opens nothing.
    assert client.get("/fhir/Observation", headers=bearer(pending)).status_code == 401
    secret, active = enrol_totp(client, runtime, pending)
    assert active != pending  # a new token once signed in
    assert client.get("/auth/session", headers=bearer(pending)).status_code == 401
    assert client.get("/fhir/Observation", headers=bearer(active)).status_code == 200
    assert outbox(runtime, t.tenant_id, "mfa-changed")

    runtime.clock.advance(timedelta(seconds=31))  # type: ignore[attr-defined]
    second = sign_in(client, "north", email).json()
    assert (second["stage"], second["factors"]) == ("mfa", ["totp"])
    bad = client.post(
        "/auth/second-factor", headers=bearer(second["token"]), json={"code": "000000"}
    )
    assert bad.status_code == 401
    code = code_at(secret, runtime.clock.now())
    good = client.post("/auth/second-factor", headers=bearer(second["token"]), json={"code": code})
    assert good.status_code == 200
    assert good.json()["stage"] == "active"
    # Replay: the same code in a new sign-in is refused, and audited.
    third = sign_in(client, "north", email).json()
    replay = client.post("/auth/second-factor", headers=bearer(third["token"]), json={"code": code})
    assert replay.status_code == 401
    last = login_entries(runtime, t.tenant_id)[-1]
    assert last.outcome == "denied"
    assert "replayed" in last.detail
    assert client.get("/auth/session", headers=bearer(third["token"])).json()["stage"] == "mfa"


def test_failures_slow_down_then_lock_for_a_while_and_the_holder_is_told(
    runtime: Runtime, client: TestClient
) -> None:
    t = tenant(runtime)
    user_id = user(runtime, t, Role.PATIENT)
    for _ in range(5):
        assert sign_in(client, "north", PATIENT_EMAIL, "wrong password!").status_code == 401
    assert outbox(runtime, t.tenant_id, "sign-in-failures") == [{"recipient": user_id, "count": 5}]
    waiting = sign_in(client, "north", PATIENT_EMAIL)  # even the right password waits
    assert waiting.status_code == 429
    assert waiting.headers["Retry-After"] == "1"
    for _ in range(5):
        runtime.clock.advance(timedelta(seconds=20))  # type: ignore[attr-defined]
        assert sign_in(client, "north", PATIENT_EMAIL, "wrong password!").status_code == 401
    locked = sign_in(client, "north", PATIENT_EMAIL)
    assert locked.status_code == 429
    assert int(locked.headers["Retry-After"]) == 15 * 60
    assert outbox(runtime, t.tenant_id, "account-locked")[0]["recipient"] == user_id
    assert login_entries(runtime, t.tenant_id)[-1].status == 429
    runtime.clock.advance(timedelta(minutes=15))  # type: ignore[attr-defined]
    assert sign_in(client, "north", PATIENT_EMAIL).status_code == 200  # the lock lapsed


def test_an_unknown_email_is_throttled_exactly_like_a_real_one(
    runtime: Runtime, client: TestClient
) -> None:
    tenant(runtime)
    for _ in range(5):
        assert (
            sign_in(client, "north", "ghost@north.example.org", "wrong password!").status_code
            == 401
        )
    assert sign_in(client, "north", "ghost@north.example.org").status_code == 429


def test_purpose_is_chosen_among_the_roles_purposes(runtime: Runtime, client: TestClient) -> None:
    t = tenant(runtime)
    user(runtime, t, Role.PATIENT)
    assert sign_in(client, "north", PATIENT_EMAIL, purpose="TREAT").status_code == 400
    assert sign_in(client, "north", PATIENT_EMAIL, purpose="PATRQT").status_code == 200


def test_bad_bodies_are_problems_not_500s(runtime: Runtime, client: TestClient) -> None:
    tenant(runtime)
    for body in (b"[1]", b"{", b'{"tenant": 5}', b'{"tenant":"north","email":"a@b.co"}'):
        answer = client.post("/auth/sign-in", content=body)
        assert answer.status_code == 400
        assert answer.headers["content-type"] == "application/problem+json"
    refusals = [e for e in login_entries(runtime, VENDOR_CHAIN) if "bad input" in (e.detail or "")]
    assert len(refusals) == 4
    assert all(e.status == 400 for e in refusals)
