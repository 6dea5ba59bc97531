"""Rights promises of Healthsoft (seed 000): requests about PHI go to the provider, which
decides (HIPAA's clocks); the vendor's own personal information follows the CCPA and never
carries PHI; a person reviews and corrects what the vendor holds, answered in time."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import select

from carevault.identity.account_models import webauthn_credentials
from tests.promises.conftest import Deployment
from tests.promises.rights_steps import (
    VENDOR,
    bearer,
    case,
    copy,
    create,
    day,
    days,
    file,
    in_time,
    notice,
    observation,
    phi_requests_go_to_the_provider,
    queue,
    refused,
    sign_in,
    today_plus,
    work,
)
from tests.webauthn_authenticator import SoftAuthenticator


@pytest.mark.promise("HS-03")
def test_healthsoft_phi_requests_go_to_the_provider(profiled: Any) -> None:
    phi_requests_go_to_the_provider(profiled("healthsoft"))


@pytest.mark.promise("HS-09")
def test_healthsoft_a_ccpa_request_never_returns_phi(profiled: Any) -> None:
    dep: Deployment = profiled("healthsoft")
    north = dep.clinic.north
    create(dep.runtime, north, observation(north.patient_id, "HbA1c 9.1 percent"))
    # the patient's own account holder asks the vendor what it holds about them
    made, route = file(dep, {"action": "know", "categories": ["usage", "payment"]})
    assert (route["rulebook"], route["right"], route["decides"]) == ("ccpa", "ccpa-know", VENDOR)
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    answer = copy(dep, made["request_id"], "json")
    assert answer.status_code == 200
    text = answer.text
    assert "patient@north.example.org" in text  # the account's own data is there
    for phi in ("Quintero", "Alicia", "MRN-ALICE-1", "1984-03-17", "Lantern", "HbA1c"):
        assert phi not in text
    assert north.patient_id not in text
    assert "phi" not in answer.json()["categories"]
    # PHI cannot be asked for under the CCPA: to know is not a HIPAA right, and mixing is refused
    know_phi = refused(dep, {"action": "know", "categories": ["phi"]})
    assert know_phi.status_code == 422
    assert "HIPAA gives no right" in know_phi.json()["detail"]
    mixed = refused(dep, {"action": "access", "categories": ["phi", "usage"]})
    assert mixed.status_code == 422
    assert "file one request for each" in mixed.json()["detail"]


@pytest.mark.promise("HS-23")
def test_healthsoft_review_and_correction_are_answered_in_time(profiled: Any) -> None:
    dep: Deployment = profiled("healthsoft")
    review, route = file(dep, {"action": "know", "categories": ["usage"]}, role="staff")
    assert route["right"] == "ccpa-know"
    assert day(review["due_at"]) == today_plus(dep, 45)
    fix, route = file(
        dep,
        {
            "action": "correct",
            "categories": ["marketing-contacts"],
            "statement": "My marketing contact address is misspelt.",
        },
        role="staff",
    )
    assert route["right"] == "ccpa-correct"
    unanswered, _ = file(dep, {"action": "know", "categories": ["payment"]}, role="practitioner")
    days(dep, 44)  # day 44 of 45
    assert work(dep, review, "fulfil", {}).status_code == 200
    assert work(dep, fix, "decide", {"decision": "accept"}).status_code == 200
    fixed = work(dep, fix, "fulfil", {"corrected": "marketing contact corrected"})
    assert fixed.status_code == 200, fixed.text
    for made in (review, fix):
        view = case(dep, made["request_id"], "staff").json()
        assert in_time(view)
        assert "is complete" in notice(view, "fulfilled")
    assert copy(dep, review["request_id"], "json", "staff").json()["pieces"]["account"]
    days(dep, 2)  # day 46: the one left open is shown late to the vendor's operator
    (late,) = queue(dep, "vendor-operator")
    assert (late["request_id"], late["late"]) == (unanswered["request_id"], True)


@pytest.mark.promise("HS-17")
def test_healthsoft_an_opt_out_is_recorded_and_answered_within_15_days(profiled: Any) -> None:
    dep: Deployment = profiled("healthsoft")
    north = dep.clinic.north
    body = {"action": "opt-out", "categories": ["usage", "marketing-contacts"]}
    made, route = file(dep, body, role="staff")
    assert (route["rulebook"], route["right"], route["decides"]) == (
        "ccpa",
        "ccpa-opt-out",
        VENDOR,
    )
    assert day(made["due_at"]) == today_plus(dep, 15)
    unanswered, _ = file(dep, {**body, "categories": ["usage"]}, role="practitioner")
    no_more_time = work(dep, unanswered, "extend", {"reason": "We are checking the cookies."})
    assert no_more_time.status_code == 409  # the policy gives no extension
    days(dep, 14)
    done = work(dep, made, "fulfil", {})
    assert done.status_code == 200, done.text
    assert in_time(done.json())
    recorded = done.json()["fulfilment"]["opt_out"]
    assert recorded == {"categories": ["usage", "marketing-contacts"], "marketing": "stopped"}
    view = case(dep, made["request_id"], "staff").json()
    assert "opt-out is recorded" in notice(view, "fulfilled")
    prefs = dep.client.get("/patient/preferences", headers=north.headers("staff"))
    assert prefs.json()["marketing"] is False
    days(dep, 2)  # day 16: the unanswered one is late
    assert [(r["request_id"], r["late"]) for r in queue(dep, "vendor-operator")] == [
        (unanswered["request_id"], True)
    ]


@pytest.mark.promise("HS-24")
def test_healthsoft_biometric_data_serve_authentication_only(profiled: Any) -> None:
    """A passkey's fingerprint or face check happens on the device: CareVault receives and
    keeps only the credential's public key, uses it to sign the person in, and a request to
    know about biometric data shows nothing more than when a passkey was added."""
    dep: Deployment = profiled("healthsoft")
    north = dep.clinic.north
    device = SoftAuthenticator()
    pending = sign_in(dep.client, north, "practitioner").json()["token"]
    options = dep.client.post("/auth/webauthn/register/begin", headers=bearer(pending)).json()
    registered = dep.client.post(
        "/auth/webauthn/register/complete",
        headers=bearer(pending),
        json={"credential": device.register(options)},
    )
    assert registered.status_code == 200, registered.text
    days(dep, 0.001)
    second = sign_in(dep.client, north, "practitioner").json()
    assert second["stage"] == "mfa"
    challenge = dep.client.post(
        "/auth/webauthn/authenticate/begin", headers=bearer(second["token"])
    ).json()
    done = dep.client.post(
        "/auth/webauthn/authenticate/complete",
        headers=bearer(second["token"]),
        json={"credential": device.sign_assertion(challenge)},
    )
    assert done.status_code == 200, done.text
    session = done.json().get("token", second["token"])
    # what is kept: the public key, its counter and dates; nothing a body could be read from
    with dep.runtime.reader.connect() as conn:
        (kept,) = conn.execute(select(webauthn_credentials)).all()
    public = device.key.public_key().public_numbers()
    assert public.x.to_bytes(32, "big") in kept.public_key
    assert len(kept.public_key) < 200
    # a request to know about biometric data (sensitive: made with the second factor)
    know = {"action": "know", "categories": ["biometric"]}
    made = dep.client.post("/rights/requests", json=know, headers=bearer(session))
    assert made.status_code == 201, made.text
    assert made.json()["request"]["verification"] == "signed-in+mfa"
    case_ = made.json()["request"]
    assert work(dep, case_, "fulfil", {}).status_code == 200
    answer = dep.client.get(
        f"/rights/requests/{case_['request_id']}/copy?form=json", headers=bearer(session)
    ).json()
    sign_in_data = answer["pieces"]["sign_in"]
    assert sign_in_data["passkeys_added"] == [kept.created_at]
    assert "public_key" not in orjson.dumps(answer).decode()
