"""AllMeds (AM-37, seed 002 "Children"): no Patient Portal access for a child under 18 without
the explicit permission of an authorized parent or legal guardian (`children.
portal_guardian_consent_below: 18`). Through the admin API: a patient account linked to a
minor is refused, audited and not created, until the administrator names the parent or
guardian who gave permission and holds a verified representation of the child."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.access_helpers import create, user_id
from tests.audit_rows import audit_of
from tests.conftest import Site
from tests.promises.conftest import Deployment

Profiled = Callable[[str], Deployment]
PASSWORD = "amber lantern river 7"


def _account(client: TestClient, site: Site, email: str, patient: str | None, **more: Any) -> Any:
    body = {"email": email, "role": "patient", "password": PASSWORD, "patient": patient, **more}
    return client.post("/admin/users", json={k: v for k, v in body.items() if v is not None},
                       headers=site.headers("practice-admin"))  # fmt: skip


def _emails(client: TestClient, site: Site) -> set[str]:
    listing = client.get("/admin/users", headers=site.headers("practice-admin"))
    assert listing.status_code == 200, listing.text
    return {u["email"] for u in listing.json()["users"]}


def _refused(dep: Deployment, answer: Any, status: int, email: str) -> str:
    """Refused with a reason, audited, no account made, and no birth date in the answer."""
    assert answer.status_code == status, answer.text
    assert "2012" not in answer.text
    assert "birthDate" not in answer.text
    (entry,) = audit_of(dep.runtime, answer)[-1:]
    assert entry["outcome"] in ("denied", "invalid")
    assert entry["action"] == "admin"
    assert "create user refused" in entry["detail"]
    assert email not in _emails(dep.client, dep.clinic.north)
    return str(answer.json()["detail"])


@pytest.mark.promise("AM-37")
def test_a_minors_portal_account_needs_a_guardians_permission(profiled: Profiled) -> None:
    dep = profiled("allmeds")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    child = create(rt, north, {"resourceType": "Patient", "name": [{"family": "Young"}],
                               "birthDate": "2012-04-02"})  # fmt: skip
    rep = user_id(rt, north, "representative")
    email = "young@north.example.org"

    # no permission named: refused with what to do
    why = _refused(dep, _account(client, north, email, child), 403, email)
    assert "under 18" in why
    assert "guardian_consent" in why
    # named, but only recorded (not verified): still refused
    staff = north.headers("staff")
    recorded = client.post("/access/representations", headers=staff, json={
        "representative": rep, "patient": child, "kind": "parent"})  # fmt: skip
    assert recorded.status_code == 201, recorded.text
    rid = recorded.json()["representation_id"]
    why = _refused(dep, _account(client, north, email, child, guardian_consent=rep), 403, email)
    assert "verify the representation" in why
    # someone who holds no representation of this child cannot give it
    stranger = user_id(rt, north, "staff")
    assert _refused(dep, _account(client, north, email, child, guardian_consent=stranger), 403,
                    email)  # fmt: skip

    verified = client.post(f"/access/representations/{rid}/verify", headers=staff,
                           json={"method": "birth-certificate"})  # fmt: skip
    assert verified.status_code == 200, verified.text
    made = _account(client, north, email, child, guardian_consent=rep)
    assert made.status_code == 201, made.text
    assert email in _emails(client, north)
    entries = audit_of(rt, made)
    assert any(rid in (e["detail"] or "") and e["outcome"] == "success" for e in entries)
    # the account reaches the child's record, and only it
    tenant = rt.identity.tenant_by_slug(north.slug)
    token = rt.identity.create_token(tenant, made.json()["user_id"]).token
    portal = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/fhir/Patient/{child}", headers=portal).status_code == 200
    assert client.get(f"/fhir/Patient/{north.patient_id}", headers=portal).status_code == 404


@pytest.mark.promise("AM-37")
def test_an_adult_needs_no_permission_and_the_age_is_read_on_the_clock(
    profiled: Profiled,
) -> None:
    dep = profiled("allmeds")
    rt, client, north, clock = dep.runtime, dep.client, dep.clinic.north, dep.clock
    assert _account(client, north, "alice@north.example.org", north.patient_id).status_code == 201
    # 18 tomorrow (the clock says 2026-11-23): refused today, admitted tomorrow
    almost = create(rt, north, {"resourceType": "Patient", "birthDate": "2008-11-24"})
    _refused(dep, _account(client, north, "almost@north.example.org", almost), 403,
             "almost@north.example.org")  # fmt: skip
    clock.advance(timedelta(days=1))
    assert _account(client, north, "almost@north.example.org", almost).status_code == 201
    # no birth date on record: record it first
    unknown = create(rt, north, {"resourceType": "Patient", "name": [{"family": "Doe"}]})
    why = _refused(dep, _account(client, north, "doe@north.example.org", unknown), 422,
                   "doe@north.example.org")  # fmt: skip
    assert "birth date" in why
    # no such patient, or a representative linked straight to a patient: refused
    assert _account(client, north, "x@north.example.org", "no-such-patient").status_code == 404
    linked_rep = client.post(
        "/admin/users",
        headers=north.headers("practice-admin"),
        json={
            "email": "r@north.example.org",
            "role": "representative",
            "patient": north.patient_id,
        },
    )
    assert linked_rep.status_code == 400, linked_rep.text
    assert client.post("/admin/users", headers=north.headers("practice-admin"), json={
        "email": "g@north.example.org", "role": "patient", "guardian_consent": "x"},
    ).status_code == 400  # fmt: skip


def _verified_guardian(client: TestClient, staff: dict[str, str], rep: str, child: str) -> str:
    body = {"representative": rep, "patient": child, "kind": "guardian"}
    recorded = client.post("/access/representations", headers=staff, json=body)
    assert recorded.status_code == 201, recorded.text
    rid = str(recorded.json()["representation_id"])
    verify = client.post(f"/access/representations/{rid}/verify", headers=staff,
                         json={"method": "court-order"})  # fmt: skip
    assert verify.status_code == 200, verify.text
    return rid


@pytest.mark.promise("AM-37")
def test_enabling_a_disabled_minors_account_needs_the_permission_again(
    profiled: Profiled,
) -> None:
    dep = profiled("allmeds")
    rt, client, north = dep.runtime, dep.client, dep.clinic.north
    admin, staff = north.headers("practice-admin"), north.headers("staff")
    child = create(rt, north, {"resourceType": "Patient", "birthDate": "2013-06-09"})
    rep = user_id(rt, north, "representative")
    rid = _verified_guardian(client, staff, rep, child)
    made = _account(client, north, "kid@north.example.org", child, guardian_consent=rep)
    assert made.status_code == 201, made.text
    kid = made.json()["user_id"]
    assert client.patch(f"/admin/users/{kid}", headers=admin,
                        json={"active": False}).status_code == 204  # fmt: skip
    # the guardian's representation ends while the account is off
    revoked = client.post(f"/access/representations/{rid}/revoke", headers=staff, json={})
    assert revoked.status_code == 200, revoked.text

    enable = client.patch(f"/admin/users/{kid}", headers=admin, json={"active": True})
    assert enable.status_code == 403, enable.text
    assert "guardian_consent" in enable.json()["detail"]
    again = client.patch(f"/admin/users/{kid}", headers=admin,
                         json={"active": True, "guardian_consent": rep})  # fmt: skip
    assert again.status_code == 403, again.text  # the representation was revoked
    (entry,) = audit_of(rt, again)[-1:]
    assert entry["outcome"] == "denied"
    assert "update user refused" in entry["detail"]
    listing = client.get("/admin/users", headers=admin).json()["users"]
    assert [u["active"] for u in listing if u["user_id"] == kid] == [False]

    rid2 = _verified_guardian(client, staff, rep, child)
    enabled = client.patch(f"/admin/users/{kid}", headers=admin,
                           json={"active": True, "guardian_consent": rep})  # fmt: skip
    assert enabled.status_code == 204, enabled.text
    assert any(rid2 in (e["detail"] or "") for e in audit_of(rt, enabled))
    # an adult's account, or one never linked to a patient, is enabled as before
    other = user_id(rt, north, "staff")
    assert client.patch(f"/admin/users/{other}", headers=admin,
                        json={"active": True}).status_code == 204  # fmt: skip
