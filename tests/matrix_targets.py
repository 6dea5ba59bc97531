"""The authorization matrix's world: two tenants whose data carries marker strings, a user for
every role, and putting back what a request changed.

Markers live in names, identifiers, addresses, notes and account emails, never in a request
the matrix sends (tests/matrix_calls.py), so a marker in an answer can only have come out of
the store.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from sqlalchemy import update

from carevault.errors import CareVaultError
from carevault.identity.models import TenantKind, system_actor, users
from carevault.identity.permissions import Role
from carevault.runtime import Runtime
from tests.conftest import START as START_OF_WORLD

PG_URL = os.environ.get("CAREVAULT_TEST_PG_URL")
_db_names = itertools.count()

# -- markers --------------------------------------------------------------------------------

SOUTH = "zqsouthmark"
"""In every south resource and account: no north role may ever see it."""
ALICE = "zqalicemark"
"""North's first patient: the patient and representative users' own data."""
BOB = "zqbobmark"
"""North's second patient: "another patient" for the patient and representative users."""

WORKFORCE_CLINICAL = ("practitioner", "staff")
COMPARTMENT = ("patient", "representative")
NO_PHI = ("practice-admin", "privacy-officer", "vendor-operator", "no-token", "garbage-token")
ROLES = WORKFORCE_CLINICAL + COMPARTMENT + NO_PHI
TARGETS = ("own", "other-tenant", "other-patient")


def forbidden_markers(role: str) -> tuple[str, ...]:
    """What the role may never see, whatever it asked for."""
    if role in WORKFORCE_CLINICAL:
        return (SOUTH,)
    if role in COMPARTMENT:
        return (SOUTH, BOB)
    assert role in NO_PHI, role
    return (SOUTH, ALICE, BOB)


def _patient(mark: str, n: int) -> dict[str, Any]:
    cap = mark.capitalize()
    return {
        "resourceType": "Patient",
        "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": f"{cap}-MRN-{n}"}],
        "name": [{"family": f"{cap}family", "given": [f"{cap}given"]}],
        "gender": "female",
        "birthDate": f"198{n}-03-17",
        "telecom": [{"system": "email", "value": f"{mark}.{n}@example.org"}],
        "address": [{"line": [f"{n} {cap} Row"], "city": "Springfield"}],
    }


def _observation(mark: str, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient_id}"},
        "valueQuantity": {"value": 72, "unit": "/min"},
        "note": [{"text": f"{mark} clinical note"}],
    }


def _condition(mark: str, patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "subject": {"reference": f"Patient/{patient_id}"},
        "code": {"text": f"{mark} condition"},
        "note": [{"text": f"{mark} condition note"}],
    }


# -- the world ------------------------------------------------------------------------------


@dataclass
class Person:
    """One patient of a site and the resources in their compartment, by type."""

    patient_id: str
    resources: dict[str, str] = field(default_factory=dict)


@dataclass
class Site:
    slug: str
    tenant_id: str
    alice: Person
    bob: Person
    group_id: str
    practitioner_id: str
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, str] = field(default_factory=dict)
    spare_user_id: str = ""
    """An account no role signs in with: the target of account-admin routes."""
    job_id: str = ""
    job_file: str = ""
    representative_linked: bool = False
    records: dict[str, str] = field(default_factory=dict)

    def record_id(self, name: str) -> str:
        return self.records.setdefault(name, str(uuid.uuid4()))

    originals: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)


@dataclass
class Target:
    """What one request aims at: a site, a patient, and that patient's resources."""

    name: str
    site: Site
    person: Person

    def rid(self, rtype: str) -> str:
        if rtype == "Group":
            return self.site.group_id
        if rtype == "Practitioner":
            return self.site.practitioner_id
        return self.person.resources[rtype]


@dataclass
class World:
    runtime: Runtime
    client: TestClient
    north: Site
    south: Site

    def target(self, name: str) -> Target:
        if name == "own":
            return Target(name, self.north, self.north.alice)
        if name == "other-patient":
            return Target(name, self.north, self.north.bob)
        assert name == "other-tenant", name
        return Target(name, self.south, self.south.alice)

    def headers(self, role: str) -> dict[str, str]:
        base = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
        if role == "no-token":
            return base
        if role == "garbage-token":
            return {**base, "Authorization": f"Bearer cv1.{self.north.tenant_id}.{'x' * 43}"}
        return {**base, "Authorization": f"Bearer {self.north.tokens[role]}"}


def build_site(rt: Runtime, client: TestClient, slug: str, south: bool) -> Site:
    tenant = rt.identity.create_tenant(slug, f"{slug.title()} Clinic", TenantKind.PRACTICE)
    gate = rt.gate(system_actor(tenant.tenant_id, "authorization matrix fixture"))
    alice_mark, bob_mark = (SOUTH, SOUTH) if south else (ALICE, BOB)
    people = []
    originals: dict[tuple[str, str], dict[str, Any]] = {}
    for n, mark in enumerate((alice_mark, bob_mark), start=1):
        body = _patient(mark, n)
        pid = gate.create("Patient", body).resource_id
        person = Person(pid, {"Patient": pid})
        originals["Patient", pid] = body
        for rtype, make in (("Observation", _observation), ("Condition", _condition)):
            made = make(mark, pid)
            person.resources[rtype] = gate.create(rtype, made).resource_id
            originals[rtype, person.resources[rtype]] = made
        people.append(person)
    alice, bob = people
    group = {
        "resourceType": "Group", "type": "person", "actual": True,
        "name": f"{bob_mark.capitalize()} cohort",
        "member": [{"entity": {"reference": f"Patient/{p.patient_id}"}} for p in people],
    }  # fmt: skip
    group_id = gate.create("Group", group).resource_id
    originals["Group", group_id] = group
    practitioner = {"resourceType": "Practitioner", "name": [{"family": "Hale"}]}
    if south:
        practitioner["name"] = [{"family": f"{SOUTH.capitalize()}doctor"}]
    practitioner_id = gate.create("Practitioner", practitioner).resource_id
    originals["Practitioner", practitioner_id] = practitioner
    site = Site(slug, tenant.tenant_id, alice, bob, group_id, practitioner_id)
    site.originals = originals
    for role in Role:
        local = f"{SOUTH}-{role.value}" if south else role.value
        patient = alice.patient_id if role in (Role.PATIENT, Role.REPRESENTATIVE) else None
        user_id = rt.identity.create_user(
            tenant, f"{local}@{slug}.example.org", role, password="a long passphrase",
            patient_id=patient,
        )  # fmt: skip
        site.user_ids[role.value] = user_id
        site.tokens[role.value] = rt.identity.create_token(tenant, user_id).token
    site.representative_linked = link_representative(rt, site)
    spare = f"{SOUTH}-spare" if south else "spare"
    site.spare_user_id = rt.identity.create_user(tenant, f"{spare}@{slug}.example.org", Role.STAFF)
    site.job_id, site.job_file = _export_job(rt, client, site)
    snapshot_versions(rt, site)
    return site


def link_representative(rt: Runtime, site: Site) -> bool:
    """Record and verify the representative user's relationship to the first patient, through
    the relationships service (privacy/relationships.py) as the site's staff. False when the
    service is not there (yet): then the representative reaches no one."""
    try:
        from carevault.audit.models import RequestInfo
        from carevault.privacy.relationships import Representations
    except ImportError:
        return False
    service = getattr(rt, "representations", None) or Representations(
        rt.gate_services, lambda actor, pid: rt.gate(actor).read("Patient", pid)
    )
    staff = rt.identity.authenticate(site.tokens["staff"])
    expires = (START_OF_WORLD + timedelta(days=365)).isoformat()
    made = service.record(
        staff, RequestInfo(), representative_id=site.user_ids["representative"],
        patient_id=site.alice.patient_id, kind="authorized-agent",
        document_digest=hashlib.sha256(b"signed authorization").hexdigest(), expires_at=expires,
    )  # fmt: skip
    service.verify(staff, RequestInfo(), made.representation_id, "signed-authorization")
    site.records["representation_id"] = made.representation_id
    return True


def relink_representative(rt: Runtime, site: Site) -> None:
    """After a request revoked the relationship: record and verify it again (a live one is
    refused as a conflict, which is fine)."""
    with contextlib.suppress(CareVaultError):
        link_representative(rt, site)


def _export_job(rt: Runtime, client: TestClient, site: Site) -> tuple[str, str]:
    """A finished $export job of the site's practitioner, and the name of one of its files."""
    headers = {"Authorization": f"Bearer {site.tokens['practitioner']}",
               "Prefer": "respond-async", "Accept": "application/fhir+json"}  # fmt: skip
    kicked = client.get("/fhir/$export", headers=headers)
    assert kicked.status_code == 202, kicked.text
    job_id = kicked.headers["content-location"].rsplit("/", 1)[1]
    assert rt.exports.wait(job_id, 60), "the fixture's export job did not finish"
    status = client.get(f"/fhir/bulk-status/{job_id}", headers=headers)
    assert status.status_code == 200, status.text
    names = [o["url"].rsplit("/", 1)[1] for o in status.json()["output"]]
    return job_id, next(n for n in names if n.startswith("Patient")) if names else "none"


def snapshot_versions(rt: Runtime, site: Site) -> None:
    gate = rt.gate(system_actor(site.tenant_id, "authorization matrix fixture"))
    for rtype, rid in site.originals:
        site.versions[rtype, rid] = gate.read(rtype, rid).version_id


def restore(rt: Runtime, site: Site) -> list[str]:
    """Put back every tracked resource a request changed; the Type/id of each one changed."""
    gate = rt.gate(system_actor(site.tenant_id, "authorization matrix restore"))
    changed = []
    for (rtype, rid), body in site.originals.items():
        try:
            current = gate.read(rtype, rid).version_id
        except CareVaultError:
            current = -1  # deleted
        if current == site.versions[rtype, rid]:
            continue
        changed.append(f"{rtype}/{rid}")
        version, _ = gate.update(rtype, rid, {**body, "id": rid})
        site.versions[rtype, rid] = version.version_id
    return changed


def heal_tokens(rt: Runtime, site: Site) -> list[str]:
    """A request may end a token (sign-out, revoke, disable, close the account): switch the
    account back on and mint a new token; the roles healed."""
    healed = []
    tenant = rt.identity.tenant_by_slug(site.slug)
    for role, token in list(site.tokens.items()):
        try:
            rt.identity.authenticate(token)
        except CareVaultError:
            healed.append(role)
            with rt.writer.begin() as conn:  # the next cell starts from a live account
                conn.execute(
                    update(users)
                    .where(users.c.tenant_id == site.tenant_id)
                    .where(users.c.user_id == site.user_ids[role])
                    .values(active=True)
                )
            site.tokens[role] = rt.identity.create_token(tenant, site.user_ids[role]).token
    return healed


# -- databases -------------------------------------------------------------------------------


def _admin_conninfo() -> str:
    assert PG_URL is not None
    return PG_URL.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


def fresh_database(template: str) -> str:
    """A copy of the migrated template database; its SQLAlchemy URL."""
    assert PG_URL is not None
    name = f"cv_matrix_{os.getpid()}_{next(_db_names)}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
