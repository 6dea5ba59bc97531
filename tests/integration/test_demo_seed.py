"""Seeding the demo clinic: through the gate, with working logins, idempotent, audited."""

from __future__ import annotations

import base64
import io
from collections import Counter

import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from carevault.demo.generator import generate
from carevault.demo.seed import DemoLogins, print_logins, seed_demo
from carevault.identity.permissions import Role
from carevault.runtime import Runtime

SEED, PATIENTS = 11, 3
TYPES = ("Patient", "Encounter", "Condition", "Observation", "DocumentReference")


def quiet() -> Console:
    return Console(file=io.StringIO())


@pytest.fixture
def seeded(runtime: Runtime) -> DemoLogins:
    return seed_demo(runtime, seed=SEED, patients_per_tenant=PATIENTS, console=quiet())


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def total(client: TestClient, token: str, rtype: str) -> int:
    response = client.get(f"/fhir/{rtype}", params={"_count": "1"}, headers=auth(token))
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def expected_counts(slug: str) -> Counter[str]:
    (tenant,) = [t for t in generate(SEED, PATIENTS).tenants if t.spec.slug == slug]
    return Counter(r.resource_type for p in tenant.patients for r in p.resources)


def test_seed_writes_a_consistent_clinic_through_the_gate(
    client: TestClient, seeded: DemoLogins
) -> None:
    assert seeded.tenants == seeded.seeded == ("riverside", "northlab")
    assert len(seeded.patients) == 2 * PATIENTS
    for slug in seeded.tenants:
        token = seeded.user(slug, Role.PRACTITIONER).token
        counts = expected_counts(slug)
        for rtype in TYPES:
            assert total(client, token, rtype) == counts[rtype], (slug, rtype)
        # the tenant wall: only this tenant's patients
        bundle = client.get("/fhir/Patient", headers=auth(token)).json()
        systems = {e["resource"]["identifier"][0]["system"] for e in bundle["entry"]}
        assert systems == {f"https://demo.carevault.example/{slug}/mrn"}
    for who in seeded.patients:  # direct identifiers are searchable (by keyed hash)
        token = seeded.user(who.tenant, Role.PRACTITIONER).token
        found = client.post(
            "/fhir/Patient/_search",
            data={"identifier": f"{who.mrn_system}|{who.mrn}", "birthdate": who.birth_date},
            headers=auth(token),
        ).json()
        assert found["total"] == 1
        patient = found["entry"][0]["resource"]
        assert patient["name"][0]["family"] == who.family
        assert {t["value"] for t in patient["telecom"]} == {who.phone, who.email}


def test_references_were_rewritten_to_the_server_ids(
    client: TestClient, seeded: DemoLogins
) -> None:
    token = seeded.user("riverside", Role.PRACTITIONER).token
    bundle = client.get(
        "/fhir/DocumentReference", params={"_count": "50"}, headers=auth(token)
    ).json()
    assert bundle["entry"]
    for entry in bundle["entry"]:
        note = entry["resource"]
        for ref in (note["subject"], note["author"][0], note["context"]["encounter"][0]):
            read = client.get(f"/fhir/{ref['reference']}", headers=auth(token))
            assert read.status_code == 200, ref
        patient = client.get(f"/fhir/{note['subject']['reference']}", headers=auth(token)).json()
        text = base64.b64decode(note["content"][0]["attachment"]["data"]).decode()
        assert patient["name"][0]["family"] in text


def test_each_role_gets_a_working_login(client: TestClient, seeded: DemoLogins) -> None:
    for slug in seeded.tenants:
        roles = Counter(u.role for u in seeded.users if u.tenant == slug)
        assert roles - Counter({Role.PATIENT: 2}) == {Role.PRACTITIONER: 2, Role.STAFF: 1,
                                                       Role.PRACTICE_ADMIN: 1,
                                                       Role.PRIVACY_OFFICER: 1}  # fmt: skip
    for user in seeded.users:
        assert user.password is not None
        assert len(user.password) >= 12
        response = client.get("/fhir/Practitioner", headers=auth(user.token))
        # Privacy officers read the audit log, not the directory: refused, but authenticated.
        assert response.status_code == (403 if user.role is Role.PRIVACY_OFFICER else 200)
    # Patient users reach their own record only.
    patients = [u for u in seeded.users if u.role is Role.PATIENT]
    adults = Counter(p.tenant for p in seeded.patients if p.is_adult)
    assert len({u.patient_id for u in patients}) == len(patients)
    assert len(patients) == sum(min(2, n) for n in adults.values()) > 0
    for user in patients:
        bundle = client.get("/fhir/Patient", headers=auth(user.token)).json()
        assert [e["resource"]["id"] for e in bundle["entry"]] == [user.patient_id]
        (identity,) = [p for p in seeded.patients if p.email == user.email]
        assert bundle["entry"][0]["resource"]["identifier"][0]["value"] == identity.mrn
    # The printed logins carry every email, password and whole token, and a curl line.
    out = io.StringIO()
    print_logins(seeded, Console(file=out, width=100))
    text = out.getvalue()
    for user in seeded.users:
        assert user.email in text
        assert user.token in text
        assert user.password in text
    practitioner = seeded.user("riverside", Role.PRACTITIONER).token
    assert (
        f'curl -H "Authorization: Bearer {practitioner}" '
        "http://127.0.0.1:8000/fhir/Patient?_count=5" in text
    )


def test_seeding_again_duplicates_nothing_and_keeps_the_audit_chain_whole(
    runtime: Runtime, client: TestClient, seeded: DemoLogins
) -> None:
    again = seed_demo(runtime, seed=SEED, patients_per_tenant=PATIENTS, console=quiet())
    assert again.seeded == ()
    assert again.resources_written == 0
    assert [(u.tenant, u.email, u.role) for u in again.users] == [
        (u.tenant, u.email, u.role) for u in seeded.users
    ]
    assert all(u.password is None for u in again.users)
    assert {u.token for u in again.users}.isdisjoint({u.token for u in seeded.users})
    assert [u.patient_id for u in again.users] == [u.patient_id for u in seeded.users]
    for slug in again.tenants:
        token = again.user(slug, Role.PRACTITIONER).token
        counts = expected_counts(slug)
        assert total(client, token, "Patient") == counts["Patient"] == PATIENTS
        assert total(client, token, "Observation") == counts["Observation"]
        tenant = runtime.identity.tenant_by_slug(slug)
        verification = runtime.audit_verification(tenant.tenant_id)
        assert verification.ok, verification.problem
        # at least one entry per resource written, user created and token issued
        assert verification.verified > sum(counts.values()) + 2 * len(again.users)
