"""Steps shared by the retention, communications and de-identification promise tests: each one
is what a user, the privacy officer or the scheduler does, through the API, the command line
or the job the scheduler triggers (with the deployment's injected clock)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner, Result

from carevault.errors import CareVaultError
from carevault.identity.models import system_actor
from carevault.messaging.models import notification_outbox
from carevault.privacy.disclosure.facts import VERIFIED_ADDRESS
from carevault.privacy.disclosure.recipient_rules import RECIPIENT_CLASS
from carevault.retention.categories import biometric_label
from carevault.retention.job import RetentionJob, RunReport
from carevault.retention.service import Retention
from tests.conftest import Site
from tests.disclosure_helpers import ORG_TYPE
from tests.promises.conftest import Deployment

Profiled = Callable[[str], Deployment]
"""The `profiled` fixture: `profiled("healthsoft")` is a deployment under that profile."""


_USERS: dict[tuple[str, str], str] = {}
"""(tenant id, role) → the user behind the site's token: learnt while the token is fresh."""


def user_id(dep: Deployment, site: Site, role: str) -> str:
    """The account behind the site's token for `role`."""
    key = (site.tenant_id, role)
    if key not in _USERS:
        _USERS[key] = dep.runtime.identity.authenticate(site.tokens[role]).user_id
    return _USERS[key]


def advance(dep: Deployment, delta: timedelta) -> None:
    """Move the deployment's clock, and give every still-active account a fresh token (as
    people sign in again): bearer tokens expire within hours, a schedule runs for years."""
    for site in (dep.clinic.north, dep.clinic.south):
        for role in site.tokens:
            try:
                user_id(dep, site, role)
            except CareVaultError:
                continue  # closed: it signs in no more
    dep.clock.advance(delta)
    for site in (dep.clinic.north, dep.clinic.south):
        tenant = dep.runtime.identity.tenant_by_slug(site.slug)
        for role in list(site.tokens):
            if (site.tenant_id, role) not in _USERS:
                continue
            try:
                site.tokens[role] = dep.runtime.identity.create_token(
                    tenant, _USERS[(site.tenant_id, role)]
                ).token
            except CareVaultError:
                continue  # an inactivated or erased account gets no new token


def create(dep: Deployment, site: Site, body: dict[str, Any], role: str = "practitioner") -> str:
    """POST a resource as `role`; its id."""
    answer = dep.client.post(f"/fhir/{body['resourceType']}", json=body, headers=site.headers(role))
    assert answer.status_code == 201, answer.text
    rid: str = answer.json()["id"]
    return rid


def read_status(
    dep: Deployment, site: Site, rtype: str, rid: str, role: str = "practitioner"
) -> int:
    status: int = dep.client.get(f"/fhir/{rtype}/{rid}", headers=site.headers(role)).status_code
    return status


def visit(patient_id: str) -> dict[str, Any]:
    """An ordinary observation in the person's record: an interaction with the service."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "visit"},
        "subject": {"reference": f"Patient/{patient_id}"},
    }


def biometric(patient_id: str, *, phi: bool) -> dict[str, Any]:
    """A face-geometry Observation: PHI (collected for care) or identity verification only."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "face geometry template"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "meta": {"security": [biometric_label(phi=phi)]},
    }


def scheduled_run(dep: Deployment, site: Site) -> RunReport:
    """What the scheduler triggers (`carevault retention run`), at the deployment's "now"."""
    return RetentionJob(Retention.from_runtime(dep.runtime)).run(site.tenant_id)


def dry_run(dep: Deployment, site: Site) -> dict[str, Any]:
    """The privacy officer's report of what the next run would delete."""
    answer = dep.client.get("/privacy/retention/dry-run", headers=site.headers("privacy-officer"))
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = answer.json()
    return report


@contextmanager
def cli_env(dep: Deployment) -> Iterator[CliRunner]:
    """A CliRunner whose `carevault` opens this deployment's data folder and profile."""
    settings = dep.runtime.settings
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CAREVAULT_HOME", str(settings.home))
        if settings.database_url:
            mp.setenv("CAREVAULT_DATABASE_URL", str(settings.database_url))
        mp.setenv("CAREVAULT_POLICY_PROFILE", dep.profile)
        mp.setenv("CAREVAULT_WARM_STRICT_VALIDATION", "false")
        yield CliRunner()


def carevault(dep: Deployment, *args: str) -> Result:
    from carevault import cli

    with cli_env(dep) as runner:
        return runner.invoke(cli.app, list(args))


def outbox_rows(dep: Deployment, site: Site, template: str | None = None) -> list[Any]:
    o = notification_outbox.c
    query = sa.select(notification_outbox).where(o.tenant_id == site.tenant_id)
    if template is not None:
        query = query.where(o.template == template)
    with dep.runtime.reader.connect() as conn:
        return list(conn.execute(query.order_by(o.created_at)))


def params_of(row: Any) -> dict[str, Any]:
    found: dict[str, Any] = orjson.loads(row.params or b"{}")
    return found


def patient(gender: str, state: str, birth: str = "1980-06-01") -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "gender": gender,
        "birthDate": birth,
        "address": [{"state": state}],
    }


def recipient(
    dep: Deployment, site: Site, kind: str, name: str, *, klass: str | None = None
) -> str:
    """A directory entry the practice files for a recipient (its address verified), under one
    of the policy's recipient classes when `klass` is given; "Organization/{id}"."""
    tags = [{"system": VERIFIED_ADDRESS[0], "code": VERIFIED_ADDRESS[1]}]
    if klass is not None:
        tags.append({"system": RECIPIENT_CLASS, "code": klass})
    body: dict[str, Any] = {
        "resourceType": "Organization",
        "name": name,
        "type": [{"coding": [{"system": ORG_TYPE, "code": kind}]}],
        "address": [{"line": ["1 Quay Street"], "city": "Springfield", "postalCode": "01102"}],
        "meta": {"tag": tags},
    }
    gate = dep.runtime.gate(system_actor(site.tenant_id, "directory entry"))
    return f"Organization/{gate.create('Organization', body).resource_id}"
