"""Helpers for the reach tests (care team, break-glass, representatives)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from carevault.clock import isoformat
from carevault.identity.models import system_actor
from carevault.identity.tenant_policy import CareRule, TenantPolicy, store_policy
from carevault.runtime import Runtime
from tests.conftest import Site


def user_id(runtime: Runtime, site: Site, role: str) -> str:
    tenant = runtime.identity.tenant_by_slug(site.slug)
    return runtime.identity.user_id_by_email(tenant, f"{role}@{site.slug}.example.org")


def fresh_token(runtime: Runtime, site: Site, role: str) -> str:
    """A new token (after the clock moved past the fixture's 30-day ones)."""
    tenant = runtime.identity.tenant_by_slug(site.slug)
    return runtime.identity.create_token(tenant, user_id(runtime, site, role)).token


def care_team_mode(runtime: Runtime, site: Site) -> None:
    now = isoformat(runtime.clock.now())
    policy = TenantPolicy(care_rule=CareRule.CARE_TEAM)
    runtime.committer.submit(lambda conn: store_policy(conn, site.tenant_id, policy, now))


def create(runtime: Runtime, site: Site, body: dict[str, Any]) -> str:
    gate = runtime.gate(system_actor(site.tenant_id, "test fixture"))
    return gate.create(body["resourceType"], body).resource_id


def linked_practitioner(runtime: Runtime, client: TestClient, site: Site) -> str:
    """A Practitioner resource, linked by the practice admin to the practitioner user."""
    pract = create(runtime, site, {"resourceType": "Practitioner",
                                   "name": [{"family": "Hale"}]})  # fmt: skip
    uid = user_id(runtime, site, "practitioner")
    response = client.put(f"/access/users/{uid}/practitioner", json={"practitioner": pract},
                          headers=site.headers("practice-admin"))  # fmt: skip
    assert response.status_code == 200, response.text
    return pract


def encounter(patient: str, practitioner: str, status: str = "finished") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "status": status,
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": f"Patient/{patient}"},
        "participant": [{"individual": {"reference": f"Practitioner/{practitioner}"}}],
    }


def name_break_glass(client: TestClient, runtime: Runtime, site: Site, allowed: bool) -> None:
    uid = user_id(runtime, site, "practitioner")
    response = client.put(f"/access/users/{uid}/break-glass", json={"allowed": allowed},
                          headers=site.headers("practice-admin"))  # fmt: skip
    assert response.status_code == 200, response.text
