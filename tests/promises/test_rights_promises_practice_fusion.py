"""Rights promises of Practice Fusion (seed 001): a user reads and updates what they
submitted; a request about it is processed only after verification; requests about health
information go to the provider with HIPAA's clocks."""

from __future__ import annotations

from typing import Any

import pytest

from tests.promises.conftest import Deployment
from tests.promises.rights_steps import (
    VENDOR,
    as_person,
    bearer,
    copy,
    day,
    days,
    file,
    phi_requests_go_to_the_provider,
    points,
    queue,
    refused,
    sign_in,
    today_plus,
    work,
)

ACCOUNT = {"action": "access", "categories": ["account"]}


@pytest.mark.promise("PF-15")
def test_practice_fusion_a_user_reads_and_updates_their_own_account(profiled: Any) -> None:
    dep: Deployment = profiled("practice-fusion")
    north = dep.clinic.north
    token = sign_in(dep.client, north, "patient").json()["token"]
    me = dep.client.get("/auth/session", headers=bearer(token))
    assert me.status_code == 200
    new = "alicia.q.new@example.org"
    assert dep.client.put(
        "/auth/email", headers=bearer(token), json={"email": new}
    ).status_code == (204)
    phone = dep.client.put("/auth/phone", headers=bearer(token), json={"phone": "+1 555 0177"})
    assert phone.status_code == 204
    # what the account holds, as they submitted and updated it
    made, route = file(dep, ACCOUNT, role="patient")
    assert (route["right"], route["decides"]) == ("account-access", VENDOR)
    assert work(dep, made, "fulfil", {}).status_code == 200
    held = copy(dep, made["request_id"], "json").json()
    assert held["account"]["email"] == new
    assert held["account"]["user_id"] == me.json()["user_id"]
    assert held["sign_in"]["phone"] == "+1 555 0177"
    days(dep, 0.001)
    assert sign_in(dep.client, north, "patient", new).status_code == 200


@pytest.mark.promise("PF-16")
def test_practice_fusion_a_request_is_processed_only_after_verification(profiled: Any) -> None:
    dep: Deployment = profiled("practice-fusion")
    held = points(dep, "staff")
    for given in ({"email": held["email"]}, {**held, "account_created_on": "1999-09-09"}):
        answer = refused(dep, as_person(dep, ACCOUNT, given), role=None)
        assert answer.status_code == 403
        assert "could not verify" in answer.json()["detail"]
    assert queue(dep, "vendor-operator") == []  # nothing to process
    made, route = file(dep, as_person(dep, ACCOUNT, held), role=None)
    assert route["right"] == "account-access"
    assert made["verification"] == "data-points:2"
    assert day(made["due_at"]) == today_plus(dep, 30)
    assert work(dep, made, "fulfil", {}).status_code == 200
    assert (
        copy(dep, made["request_id"], "json", "staff").json()["account"]["email"] == (held["email"])
    )


@pytest.mark.promise("PF-18")
def test_practice_fusion_phi_requests_go_to_the_provider_with_hipaa_clocks(
    profiled: Any,
) -> None:
    dep: Deployment = profiled("practice-fusion")
    cases = phi_requests_go_to_the_provider(dep)
    access, _ = file(dep, {"action": "access", "categories": ["phi"]})
    reason = {"reason": "Part of the record is held in the practice's paper archive."}
    for made, total in ((access, 60), (cases["hipaa-amendment"], 90)):
        extended = work(dep, made, "extend", reason)
        assert extended.status_code == 200, extended.text
        assert day(extended.json()["due_at"]) == today_plus(dep, total)
        assert work(dep, made, "extend", reason).status_code == 409  # one extension
    days(dep, 61)
    late = {r["request_id"]: r["late"] for r in queue(dep, "privacy-officer")}
    assert late == {access["request_id"]: True, cases["hipaa-amendment"]["request_id"]: False}
