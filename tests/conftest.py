"""Shared fixtures: each integration test gets a fresh data folder, key store and database,
on SQLite and (when scripts/test started it) PostgreSQL, with a clock the test moves."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from alembic import command
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient

from carevault.app import create_app
from carevault.clock import ManualClock
from carevault.identity import passwords
from carevault.identity.models import TenantKind, system_actor
from carevault.identity.permissions import Role
from carevault.runtime import Runtime, alembic_config, initialize
from carevault.settings import Settings
from tests.smtp_sink import mail_runtime, mail_settings, smtp_sink

__all__ = ["mail_runtime", "mail_settings", "smtp_sink"]  # fixtures: a real local SMTP sink

PG_URL = os.environ.get("CAREVAULT_TEST_PG_URL")
REQUIRE_PG = os.environ.get("CAREVAULT_REQUIRE_PG") == "1"
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
_db_counter = itertools.count()


def _admin_conninfo() -> str:
    assert PG_URL is not None
    return PG_URL.replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0] + "/postgres"


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """Fixtures hash a dozen passwords per test: use Argon2's cheapest profile in tests.

    The production parameters are unit-tested where hashing itself is the subject.
    """
    original = passwords._hasher
    passwords._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    yield
    passwords._hasher = original


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str | None]:
    """A migrated template database; each test copies it (fast) rather than migrating again."""
    if PG_URL is None:
        if REQUIRE_PG:
            pytest.fail("CAREVAULT_REQUIRE_PG=1 but CAREVAULT_TEST_PG_URL is not set")
        yield None
        return
    name = f"cv_template_{os.getpid()}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    command.upgrade(alembic_config(PG_URL.rsplit("/", 1)[0] + f"/{name}"), "head")
    yield name
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(backend: str, tmp_path: Path, pg_template: str | None) -> Iterator[Settings]:
    home = tmp_path / "data"
    if backend == "sqlite":
        yield Settings(home=home)
        return
    if pg_template is None:
        pytest.skip("PostgreSQL not started (scripts/test starts it)")
    assert PG_URL is not None
    name = f"cv_test_{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    yield Settings(home=home, database_url=PG_URL.rsplit("/", 1)[0] + f"/{name}")
    with psycopg.connect(_admin_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def runtime(settings: Settings, clock: ManualClock) -> Iterator[Runtime]:
    initialize(settings)
    rt = Runtime(settings, clock=clock)
    yield rt
    rt.close()


@pytest.fixture
def client(runtime: Runtime) -> Iterator[TestClient]:
    with TestClient(create_app(runtime), raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass
class Site:
    """One tenant with a user and a token for each role, and one patient user."""

    slug: str
    tenant_id: str
    tokens: dict[str, str] = field(default_factory=dict)
    patient_id: str = ""
    other_patient_id: str = ""

    def headers(self, role: str = "practitioner", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}


@dataclass
class Clinic:
    north: Site
    south: Site


PATIENT_ALICE: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-ALICE-1"}],
    "name": [{"family": "Quintero", "given": ["Alicia", "Maria"]}],
    "gender": "female",
    "birthDate": "1984-03-17",
    "telecom": [{"system": "phone", "value": "555-0142"},
                {"system": "email", "value": "alicia.q@example.org"}],
    "address": [{"line": ["12 Lantern Row"], "city": "Springfield", "postalCode": "01101"}],
}  # fmt: skip
PATIENT_BOB: dict[str, Any] = {
    "resourceType": "Patient",
    "identifier": [{"system": "urn:oid:1.2.36.146.595.217.0.1", "value": "MRN-BOB-2"}],
    "name": [{"family": "Okafor", "given": ["Bode"]}],
    "gender": "male",
    "birthDate": "1950-11-02",
}


def make_site(rt: Runtime, slug: str, roles: tuple[Role, ...] = tuple(Role)) -> Site:
    """A tenant with two patients, and a user and token for each of the roles."""
    tenant = rt.identity.create_tenant(slug, f"{slug.title()} Clinic", TenantKind.PRACTICE)
    site = Site(slug, tenant.tenant_id)
    gate = rt.gate(system_actor(tenant.tenant_id, "test fixture"))
    site.patient_id = gate.create("Patient", dict(PATIENT_ALICE)).resource_id
    site.other_patient_id = gate.create("Patient", dict(PATIENT_BOB)).resource_id
    for role in roles:
        patient = site.patient_id if role is Role.PATIENT else None
        email = f"{role.value}@{slug}.example.org"
        user_id = rt.identity.create_user(tenant, email, role, password="a long passphrase",
                                          patient_id=patient)  # fmt: skip
        site.tokens[role.value] = rt.identity.create_token(tenant, user_id).token
    return site


@pytest.fixture
def clinic(runtime: Runtime) -> Clinic:
    return Clinic(make_site(runtime, "north"), make_site(runtime, "south"))
