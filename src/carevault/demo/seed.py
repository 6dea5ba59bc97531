"""Write the demo clinic through the gate, create its users, and issue their tokens.

Two tenants: "riverside" (Riverside Family Practice) and "northlab" (Northlab
Diagnostics, a laboratory). Every clinical resource is created through the gate as
the named system actor "demo seed", so the audit chain records each write like any
other. Idempotent: when a demo tenant exists its data is left alone and only fresh
tokens are issued (and any missing demo user created). An interrupted first run
therefore leaves a partial tenant: start again from an empty data folder.

Passwords are generated per run with `secrets`, printed once, and stored only as
Argon2 hashes; users that already existed keep their passwords.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from carevault.audit.models import RequestInfo
from carevault.demo.generator import (
    DEFAULT_PATIENTS_PER_TENANT,
    DEFAULT_SEED,
    DemoPatient,
    DemoResource,
    DemoTenant,
    PatientIdentity,
    generate,
)
from carevault.errors import NotFound
from carevault.identity.models import system_actor
from carevault.identity.permissions import Role
from carevault.identity.service import Tenant
from carevault.privacy.gate import Gate
from carevault.runtime import Runtime

SEED_REASON = "demo seed"
SEED_ACTOR = f"system:{SEED_REASON}"
WRITERS = 8
"""Patients written concurrently, so that the group committer batches their commits."""
HASHERS = 4
"""Users created concurrently (password hashing is the slow part)."""
PATIENT_USERS = 2
API_BASE = "http://127.0.0.1:8000/fhir"

Advance = Callable[[], None]


@dataclass(frozen=True)
class DemoUser:
    tenant: str
    """The tenant's slug."""
    email: str
    role: Role
    label: str
    """Who this is, for the printed table (e.g. "Dr. Gideon Lindqvist, MD", "front desk")."""
    token: str
    token_expires: str
    password: str | None
    """Set only when the user was created by this run; never stored in clear."""
    patient_id: str | None = None
    """For patient users: the Patient resource they are."""


@dataclass(frozen=True)
class DemoLogins:
    tenants: tuple[str, ...]
    """The demo tenants' slugs."""
    seeded: tuple[str, ...]
    """The tenants whose clinical data this run wrote (the others existed already)."""
    users: tuple[DemoUser, ...]
    patients: tuple[PatientIdentity, ...]
    """The generated patients' direct identifiers (for a no-plaintext scan of the data folder)."""
    resources_written: int

    def user(self, tenant: str, role: Role) -> DemoUser:
        """The first demo user of this tenant with this role."""
        for user in self.users:
            if user.tenant == tenant and user.role is role:
                return user
        raise KeyError(f"no demo {role.value} in {tenant}")


@dataclass(frozen=True)
class _PlannedUser:
    email: str
    role: Role
    label: str
    patient: PatientIdentity | None = None


def seed_demo(
    rt: Runtime,
    *,
    seed: int = DEFAULT_SEED,
    patients_per_tenant: int = DEFAULT_PATIENTS_PER_TENANT,
    console: Console | None = None,
) -> DemoLogins:
    """Create the demo tenants, their data and users (unless they exist); issue fresh tokens."""
    data = generate(seed, patients_per_tenant)
    # One request id per run, so the audit trail shows which entries this run made.
    request = RequestInfo(
        request_id=f"demo-seed-{secrets.token_hex(8)}", user_agent="carevault demo"
    )
    found = {t.spec.slug: _existing(rt, t.spec.slug) for t in data.tenants}
    to_write = [t for t in data.tenants if found[t.spec.slug] is None]
    users: list[DemoUser] = []
    written = 0
    with _progress(console, sum(len(list(t.resources())) for t in to_write)) as advance:
        for demo in data.tenants:
            tenant = found[demo.spec.slug]
            ids: dict[str, str] | None = None
            if tenant is None:
                tenant = rt.identity.create_tenant(
                    demo.spec.slug, demo.spec.name, demo.spec.kind, by=SEED_ACTOR
                )
                ids = _write_tenant(rt, tenant, demo, advance, request)
                written += len(ids)
            users.extend(_users(rt, tenant, demo, ids, request))
    if written:
        rt.refresh_statistics()  # a bulk load: let the planner see it before the first search
    return DemoLogins(
        tenants=tuple(t.spec.slug for t in data.tenants),
        seeded=tuple(t.spec.slug for t in to_write),
        users=tuple(users),
        patients=tuple(data.patients()),
        resources_written=written,
    )


def print_logins(logins: DemoLogins, console: Console, *, base_url: str = API_BASE) -> None:
    """The demo logins and tokens as tables, and a curl line to try the API with."""
    for slug in logins.tenants:
        mine = [u for u in logins.users if u.tenant == slug]
        table = Table(title=f"tenant {slug}", title_justify="left", box=box.SIMPLE_HEAD)
        # Emails and passwords are copied by hand: never cut or wrap them.
        table.add_column("role", no_wrap=True, min_width=15)
        email_width = max((len(u.email) for u in mine), default=10)
        table.add_column("sign-in email", no_wrap=True, min_width=email_width)
        table.add_column("password", no_wrap=True, min_width=16)
        for user in mine:
            table.add_row(user.role.value, user.email, escape(user.password or "(unchanged)"))
        console.print(table)
        console.print(f"[bold]bearer tokens for {slug}[/bold]")
        for user in mine:
            line = f"  {user.label} <{user.email}>, expires {user.token_expires[:10]}"
            console.print(line, soft_wrap=True, highlight=False, markup=False)
            # soft_wrap: a long token must stay on one line to be copied whole
            console.print(f"    {user.token}", soft_wrap=True, highlight=False, markup=False)
        console.print()
    sample = next((u for u in logins.users if u.role is Role.PRACTITIONER), None)
    if sample is not None:
        console.print("Try the API (synthetic data only):")
        command = (f'curl -H "Authorization: Bearer {sample.token}" '
                   f"{base_url}/Patient?_count=5")  # fmt: skip
        console.print(f"  {command}", soft_wrap=True, highlight=False, markup=False)
    console.print(
        "Passwords are shown once and stored only as hashes; running `carevault demo` again "
        "issues new tokens and leaves the data as it is.",
        highlight=False,
    )


# -- writing -------------------------------------------------------------------


def _existing(rt: Runtime, slug: str) -> Tenant | None:
    try:
        return rt.identity.tenant_by_slug(slug)
    except NotFound:
        return None


@contextmanager
def _progress(console: Console | None, total: int) -> Iterator[Advance]:
    if total == 0:
        yield lambda: None
        return
    columns = (TextColumn("writing the demo clinic"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task("demo", total=total)
        yield lambda: bar.advance(task)


def _write_tenant(
    rt: Runtime, tenant: Tenant, demo: DemoTenant, advance: Advance, request: RequestInfo
) -> dict[str, str]:
    """Create the tenant's resources in dependency order; the generated key → server id map."""
    gate = _seed_gate(rt, tenant, request)
    ids: dict[str, str] = {}
    for resource in demo.directory:
        ids[resource.key] = _create(gate, resource, ids)
        advance()
    directory = dict(ids)
    # Each patient's chart is written in order by one thread; patients run side by side so
    # their commits share fsyncs in the group committer.
    with ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="demo-seed") as pool:
        futures = [pool.submit(_write_patient, gate, p, directory, advance)
                   for p in demo.patients]  # fmt: skip
        try:
            for future in futures:
                ids.update(future.result())
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return ids


def _write_patient(
    gate: Gate, patient: DemoPatient, directory: dict[str, str], advance: Advance
) -> dict[str, str]:
    ids = dict(directory)
    for resource in patient.resources:
        ids[resource.key] = _create(gate, resource, ids)
        advance()
    return {key: ids[key] for key in (r.key for r in patient.resources)}


def _seed_gate(rt: Runtime, tenant: Tenant, request: RequestInfo) -> Gate:
    # A Gate holds no per-call state: the patient writers share one.
    return rt.gate(system_actor(tenant.tenant_id, SEED_REASON), request)


def _create(gate: Gate, resource: DemoResource, ids: dict[str, str]) -> str:
    body = _rewrite(resource.body, ids)
    body.pop("id", None)  # the server assigns ids
    return gate.create(resource.resource_type, body).resource_id


def _rewrite(node: Any, ids: dict[str, str]) -> Any:
    """A copy of node whose "Type/key" references name the created resources' ids."""
    if isinstance(node, list):
        return [_rewrite(item, ids) for item in node]
    if not isinstance(node, dict):
        return node
    copy = {name: _rewrite(value, ids) for name, value in node.items()}
    reference = copy.get("reference")
    if isinstance(reference, str) and "/" in reference:
        rtype, key = reference.split("/", 1)
        if key in ids:
            copy["reference"] = f"{rtype}/{ids[key]}"
    return copy


# -- users ---------------------------------------------------------------------


def _plan_users(demo: DemoTenant) -> list[_PlannedUser]:
    domain = demo.spec.email_domain
    planned = [_PlannedUser(p.email, Role.PRACTITIONER, p.display) for p in demo.practitioners[:2]]
    planned += [
        _PlannedUser(f"frontdesk@{domain}", Role.STAFF, "front desk"),
        _PlannedUser(f"admin@{domain}", Role.PRACTICE_ADMIN, "practice administrator"),
        _PlannedUser(f"privacy@{domain}", Role.PRIVACY_OFFICER, "privacy officer"),
    ]
    # Adults only: a minor's portal access goes through a representative (the access issue).
    adults = [p.identity for p in demo.patients if p.identity.is_adult][:PATIENT_USERS]
    planned += [_PlannedUser(a.email, Role.PATIENT, "patient", a) for a in adults]
    return planned


def _users(
    rt: Runtime,
    tenant: Tenant,
    demo: DemoTenant,
    ids: dict[str, str] | None,
    request: RequestInfo,
) -> list[DemoUser]:
    # Argon2 hashing dominates user creation and runs outside the GIL: hash side by side.
    with ThreadPoolExecutor(max_workers=HASHERS, thread_name_prefix="demo-users") as pool:
        made = pool.map(lambda plan: _user(rt, tenant, plan, ids, request), _plan_users(demo))
        return [user for user in made if user is not None]


def _user(
    rt: Runtime,
    tenant: Tenant,
    plan: _PlannedUser,
    ids: dict[str, str] | None,
    request: RequestInfo,
) -> DemoUser | None:
    """The user (created if missing) with a fresh token; None if its patient is not there."""
    patient_id = None
    if plan.patient is not None:
        patient_id = (ids or {}).get(plan.patient.key) or _find_patient(
            _seed_gate(rt, tenant, request), plan.patient
        )
        if patient_id is None:
            return None  # the tenant was seeded with another seed: this patient is not there
    password = None
    try:
        user_id = rt.identity.user_id_by_email(tenant, plan.email)
    except NotFound:
        password = secrets.token_urlsafe(12)
        user_id = rt.identity.create_user(
            tenant, plan.email, plan.role, password=password, patient_id=patient_id, by=SEED_ACTOR
        )
    issued = rt.identity.create_token(tenant, user_id, by=SEED_ACTOR)
    return DemoUser(tenant.slug, plan.email, plan.role, plan.label, issued.token,
                    issued.expires_at, password, patient_id)  # fmt: skip


def _find_patient(gate: Gate, who: PatientIdentity) -> str | None:
    """The Patient with this MRN, searched by keyed hash through the gate (and audited)."""
    found = gate.search("Patient", [("identifier", f"{who.mrn_system}|{who.mrn}"), ("_count", "2")])
    return found.resources[0].resource_id if len(found.resources) == 1 else None
