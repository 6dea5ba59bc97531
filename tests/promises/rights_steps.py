"""Steps for the rights promise tests: file a request over the API as a patient, an account
holder or a person who is not signed in, work it as the officer (the tenant's privacy officer
for HIPAA, the vendor's operator for the vendor's own data), move the clock, read the case."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select

from carevault.audit.models import audit_entries
from carevault.identity.models import system_actor
from carevault.messaging.models import notification_outbox
from carevault.runtime import Runtime
from tests.conftest import Site
from tests.promises.conftest import Deployment

REQUESTS = "/rights/requests"
QUEUE = "/admin/rights/queue"
PASSWORD = "a long passphrase"  # make_site's password for every user
VENDOR = "CareVault (the vendor)"


def file(
    dep: Deployment, body: dict[str, Any], role: str | None = "patient", site: Site | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """POST a request (signed in as `role` of `site`, or not signed in); (case, route)."""
    site = site or dep.clinic.north
    headers = site.headers(role) if role is not None else {}
    made = dep.client.post(REQUESTS, json=body, headers=headers)
    assert made.status_code == 201, made.text
    answer = made.json()
    return answer["request"], answer["route"]


def refused(
    dep: Deployment, body: dict[str, Any], role: str | None = "patient", site: Site | None = None
) -> Any:
    site = site or dep.clinic.north
    headers = site.headers(role) if role is not None else {}
    return dep.client.post(REQUESTS, json=body, headers=headers)


def officer_of(rulebook: str) -> str:
    """Who works a case: the tenant's privacy officer (HIPAA) or the vendor's operator."""
    return "privacy-officer" if rulebook == "hipaa" else "vendor-operator"


def work(
    dep: Deployment, case: dict[str, Any], step: str, body: dict[str, Any], site: Site | None = None
) -> Any:
    """extend | decide | fulfil, as the officer whose queue holds the case."""
    site = site or dep.clinic.north
    role = officer_of(case["rulebook"])
    return dep.client.post(
        f"/admin/rights/requests/{case['request_id']}/{step}", json=body, headers=site.headers(role)
    )


def case(dep: Deployment, rid: str, role: str = "patient", site: Site | None = None) -> Any:
    site = site or dep.clinic.north
    return dep.client.get(f"{REQUESTS}/{rid}", headers=site.headers(role))


def copy(
    dep: Deployment, rid: str, form: str, role: str = "patient", site: Site | None = None
) -> Any:
    site = site or dep.clinic.north
    return dep.client.get(f"{REQUESTS}/{rid}/copy?form={form}", headers=site.headers(role))


def queue(dep: Deployment, role: str, site: Site | None = None) -> list[dict[str, Any]]:
    site = site or dep.clinic.north
    answer = dep.client.get(QUEUE, headers=site.headers(role))
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["requests"]
    return found


def days(dep: Deployment, n: float) -> None:
    """Move the clock, and give every fixture user a fresh token (they last 30 days), as the
    people would sign in again; inactive accounts get none."""
    dep.clock.advance(timedelta(days=n))
    for site in (dep.clinic.north, dep.clinic.south):
        tenant = dep.runtime.identity.tenant_by_slug(site.slug)
        for role in list(site.tokens):
            holder = _holder(dep, site, role)
            if holder is not None:
                site.tokens[role] = dep.runtime.identity.create_token(tenant, holder).token


def _holder(dep: Deployment, site: Site, role: str) -> str | None:
    from carevault.identity.models import users

    with dep.runtime.reader.connect() as conn:
        found = conn.execute(
            select(users.c.user_id).where(
                users.c.tenant_id == site.tenant_id,
                users.c.email_hash
                == dep.runtime.vault.hasher(site.tenant_id).digest(
                    "account.email", f"{role}@{site.slug}.example.org"
                ),
                users.c.active.is_(True),
            )
        ).scalar()
    return str(found) if found is not None else None


def day(instant: str) -> str:
    return instant[:10]


def today_plus(dep: Deployment, n: int) -> str:
    return (dep.clock.now() + timedelta(days=n)).date().isoformat()


def points(dep: Deployment, role: str, site: Site | None = None) -> dict[str, str]:
    """Two data points we hold about a fixture account: its email and the day it was made
    (make_site creates every account at the clock's start)."""
    site = site or dep.clinic.north
    return {"email": f"{role}@{site.slug}.example.org", "account_created_on": created_on(dep)}


def created_on(dep: Deployment) -> str:
    from carevault.identity.models import users

    with dep.runtime.reader.connect() as conn:
        made = conn.execute(select(users.c.created_at)).scalars().first()
    assert made is not None
    return str(made)[:10]


def as_person(
    dep: Deployment,
    body: dict[str, Any],
    data: dict[str, str],
    site: Site | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The body of a request from someone who is not signed in (a web form, an email)."""
    site = site or dep.clinic.north
    return {"channel": "web-form", "tenant": site.slug, "data_points": data, **body, **extra}


def create(rt: Runtime, site: Site, body: dict[str, Any]) -> str:
    gate = rt.gate(system_actor(site.tenant_id, "test fixture"))
    return f"{body['resourceType']}/{gate.create(body['resourceType'], body).resource_id}"


def observation(patient: str, value: str = "within range", **extra: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "subject": {"reference": f"Patient/{patient}"},
        "code": {"text": "Glucose"},
        "valueString": value,
        "effectiveDateTime": "2026-10-01",
        **extra,
    }


def audit(rt: Runtime, chain: str) -> list[Any]:
    with rt.reader.connect() as conn:
        return list(
            conn.execute(
                select(audit_entries)
                .where(audit_entries.c.tenant_id == chain)
                .order_by(audit_entries.c.seq)
            ).all()
        )


def outbox(rt: Runtime, tenant_id: str, template: str) -> list[dict[str, Any]]:
    with rt.reader.connect() as conn:
        rows = conn.execute(
            select(notification_outbox).where(
                notification_outbox.c.tenant_id == tenant_id,
                notification_outbox.c.template == template,
            )
        ).all()
    return [{"recipient": r.recipient, **orjson.loads(r.params)} for r in rows]


def user_id(dep: Deployment, role: str, site: Site | None = None) -> str:
    site = site or dep.clinic.north
    return dep.runtime.identity.authenticate(site.tokens[role]).user_id


def sign_in(client: TestClient, site: Site, role: str, email: str | None = None) -> Any:
    body = {
        "tenant": site.slug,
        "email": email or f"{role}@{site.slug}.example.org",
        "password": PASSWORD,
        "delivery": "bearer",
    }
    return client.post("/auth/sign-in", json=body)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def in_time(view: dict[str, Any]) -> bool:
    """Fulfilled, and on or before its due date (the view's `late` is for open cases only)."""
    return bool(view["status"] == "fulfilled" and view["fulfilled_at"] <= view["due_at"])


def notice(view: dict[str, Any], kind: str) -> str:
    found = [n["text"] for n in view["notices"] if n["kind"] == kind]
    assert found, f"no {kind} notice in {[n['kind'] for n in view['notices']]}"
    return str(found[-1])


def phi_requests_go_to_the_provider(dep: Deployment) -> dict[str, dict[str, Any]]:
    """Access, amendment and accounting about PHI: HIPAA, the tenant's queue, the tenant
    decides, with HIPAA's clocks (30, 60, 60 days); the vendor neither sees nor decides them."""
    north = dep.clinic.north
    glucose = create(dep.runtime, north, observation(north.patient_id, "high"))
    asked = {
        "hipaa-access": {"action": "access", "categories": ["phi"], "forms": ["bundle"]},
        "hipaa-amendment": {
            "action": "amend",
            "categories": ["phi"],
            "resources": [glucose],
            "statement": "The result was normal.",
        },
        "hipaa-accounting": {"action": "accounting", "categories": ["phi"]},
    }
    clocks = {"hipaa-access": 30, "hipaa-amendment": 60, "hipaa-accounting": 60}
    cases: dict[str, dict[str, Any]] = {}
    for right, body in asked.items():
        made, route = file(dep, body)
        assert (route["rulebook"], route["right"], route["decides"]) == (
            "hipaa",
            right,
            "North Clinic",
        )
        assert "North Clinic decides" in route["explanation"]
        assert made["decides"] == "North Clinic"
        assert day(made["due_at"]) == today_plus(dep, clocks[right])
        cases[right] = made
    mine = {r["request_id"] for r in queue(dep, "privacy-officer")}
    assert mine == {c["request_id"] for c in cases.values()}
    assert queue(dep, "vendor-operator") == []
    assert queue(dep, "privacy-officer", dep.clinic.south) == []
    # the vendor does not decide the provider's case; the provider's officer does
    access = cases["hipaa-access"]
    vendor = dep.client.post(
        f"/admin/rights/requests/{access['request_id']}/fulfil",
        json={},
        headers=north.headers("vendor-operator"),
    )
    assert vendor.status_code == 404
    done = work(dep, access, "fulfil", {})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "fulfilled"
    bundle = copy(dep, access["request_id"], "bundle")
    assert bundle.status_code == 200
    assert glucose in {e["fullUrl"] for e in bundle.json()["entry"]}
    accounting = work(dep, cases["hipaa-accounting"], "fulfil", {})
    assert accounting.status_code == 200, accounting.text
    assert accounting.json()["copies"] == ["json"]
    return cases
