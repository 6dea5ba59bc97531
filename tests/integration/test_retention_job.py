"""The retention job on a year of simulated time (Healthsoft's profile): biometric data an
inactive person gave only to verify who they are is deleted 3 years after their last
interaction — not a month before — while biometric PHI waits for the provider, an active
person's data stays, a legal hold keeps what it covers until lifted, and a dry run deletes
nothing. Each deletion is audited, each real run certified; the clock is the injected one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from carevault.audit.models import audit_entries
from carevault.clock import ManualClock
from carevault.errors import Invalid, NotFound
from carevault.identity.models import Actor, TenantKind, system_actor
from carevault.identity.permissions import Role
from carevault.policy import load_profile
from carevault.retention import certificates
from carevault.retention.categories import biometric_label
from carevault.retention.job import RetentionJob
from carevault.retention.service import Retention
from carevault.runtime import Runtime
from carevault.settings import Settings

THREE_YEARS = timedelta(days=1095)


def biometric(patient_id: str, *, phi: bool) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "face geometry"},
        "subject": {"reference": f"Patient/{patient_id}"},
        "meta": {"security": [biometric_label(phi=phi)]},
    }


def retention_for(rt: Runtime, profile: str = "healthsoft") -> Retention:
    policy = load_profile(profile)
    return Retention(rt.gate_services, rt.keys, rt.gate, lambda: policy)


def exists(rt: Runtime, system: Actor, rtype: str, rid: str) -> bool:
    try:
        rt.gate(system).read(rtype, rid)
    except NotFound:
        return False
    return True


def test_a_year_of_monthly_runs(runtime: Runtime, clock: ManualClock) -> None:
    rt = runtime
    tenant = rt.identity.create_tenant("north", "North", TenantKind.PRACTICE)
    system = system_actor(tenant.tenant_id, "test fixture")
    gate = rt.gate(system)
    start = clock.now()
    ids: dict[str, str] = {}
    for name in ("ivy", "ace", "hal", "pat"):
        ids[name] = gate.create(
            "Patient", {"resourceType": "Patient", "gender": "other"}
        ).resource_id
    ids["ivy-bio"] = gate.create("Observation", biometric(ids["ivy"], phi=False)).resource_id
    ids["ace-bio"] = gate.create("Observation", biometric(ids["ace"], phi=False)).resource_id
    ids["hal-bio"] = gate.create("Observation", biometric(ids["hal"], phi=False)).resource_id
    ids["pat-bio"] = gate.create("Observation", biometric(ids["pat"], phi=True)).resource_id
    officer_id = rt.identity.create_user(tenant, "po@north.example.org", Role.PRIVACY_OFFICER)
    officer = rt.identity.authenticate(rt.identity.create_token(tenant, officer_id).token)
    retention = retention_for(rt)
    hold = retention.holds.file(officer, ids["hal"], "litigation")
    job = RetentionJob(retention)

    # two and a half years on, then one run a month for a year
    clock.advance(timedelta(days=900))
    deleted_at: dict[str, int] = {}
    for month in range(12):
        clock.advance(timedelta(days=30))
        gate.update(
            "Patient",
            ids["ace"],  # ace keeps using the service every month
            {"resourceType": "Patient", "id": ids["ace"], "gender": "other"},
        )
        if month == 10:
            retention.holds.lift(officer, hold.hold_id)
        preview = job.run(tenant.tenant_id, dry_run=True)
        would = {d.resource_id for d in preview.due}
        assert exists(rt, system, "Observation", ids["ivy-bio"]) or "ivy" in deleted_at
        report = job.run(tenant.tenant_id)
        assert {d.resource_id for d in report.deleted} == would  # the dry run told the truth
        for name in ("ivy", "ace", "hal", "pat"):
            if f"{name}-bio" in ids and ids[f"{name}-bio"] in would:
                deleted_at[name] = month
        kept = {k.resource_id: k.why for k in report.kept}
        assert kept[ids["pat-bio"]] == "biometric PHI: kept until the provider asks"
        if month < 10 and clock.now() - start >= THREE_YEARS:
            assert kept[ids["hal-bio"]] == "legal hold"
        if report.deleted:
            cert = certificates.load(
                rt.gate_services, tenant.tenant_id, report.certificate_id or ""
            )
            assert certificates.verify(rt.gate_services, cert)
            assert {i.resource_id for i in cert.destroyed} == would

    # ivy: deleted at the first run on or after three years, not a month before
    first_due = next(m for m in range(12) if timedelta(days=900 + 30 * (m + 1)) >= THREE_YEARS)
    assert deleted_at["ivy"] == first_due
    assert deleted_at["hal"] == 10  # as soon as the hold was lifted
    assert "ace" not in deleted_at
    assert "pat" not in deleted_at
    assert not exists(rt, system, "Observation", ids["ivy-bio"])
    assert not exists(rt, system, "Observation", ids["hal-bio"])
    assert exists(rt, system, "Observation", ids["ace-bio"])
    assert exists(rt, system, "Observation", ids["pat-bio"])
    assert exists(rt, system, "Patient", ids["ivy"])  # only the biometric data went
    with rt.reader.connect() as conn:
        rows = conn.execute(
            sa.select(audit_entries).where(
                audit_entries.c.tenant_id == tenant.tenant_id,
                audit_entries.c.actor_id == "system:retention job",
                audit_entries.c.action == "delete",
            )
        ).all()
    assert sorted(orjson.loads(r.resource_ids)[0] for r in rows) == sorted(
        [ids["ivy-bio"], ids["hal-bio"]]
    )
    assert rt.audit_verification(tenant.tenant_id).ok


def test_a_dry_run_deletes_nothing(runtime: Runtime, clock: ManualClock) -> None:
    tenant = runtime.identity.create_tenant("north", "North", TenantKind.PRACTICE)
    gate = runtime.gate(system_actor(tenant.tenant_id, "test fixture"))
    pid = gate.create("Patient", {"resourceType": "Patient"}).resource_id
    bio = gate.create("Observation", biometric(pid, phi=False)).resource_id
    clock.advance(THREE_YEARS + timedelta(days=1))
    job = RetentionJob(retention_for(runtime))
    for _ in range(3):
        report = job.run(tenant.tenant_id, dry_run=True)
        assert [d.resource_id for d in report.due] == [bio]
        assert report.deleted == []
        assert report.certificate_id is None
    assert gate.read("Observation", bio).resource_id == bio


def test_an_inactivated_account_is_kept_for_its_period_then_erased(
    runtime: Runtime, clock: ManualClock
) -> None:
    rt = runtime
    tenant = rt.identity.create_tenant("north", "North", TenantKind.PRACTICE)
    user = rt.identity.create_user(tenant, "pat@north.example.org", Role.PATIENT)
    token = rt.identity.create_token(tenant, user).token
    retention = retention_for(rt, "allmeds")  # account: a year after it is closed
    system = system_actor(tenant.tenant_id, "account closure")
    kept = retention.inactivate_account(system, user)
    assert kept is not None
    assert kept.startswith(str(clock.now().year + 1))
    with pytest.raises(Exception, match=r"token|user|active|inactive"):
        rt.identity.authenticate(token)  # the account stopped at once …
    job = RetentionJob(retention)
    clock.advance(timedelta(days=364))
    assert job.run(tenant.tenant_id).deleted == []  # … its data is kept for the period
    clock.advance(timedelta(days=2))
    report = job.run(tenant.tenant_id)
    assert [(d.category, d.resource_id) for d in report.deleted] == [("account", user)]
    # the address is gone: a new account may use it
    rt.identity.create_user(tenant, "pat@north.example.org", Role.PATIENT)


def test_the_command_line_dry_run(
    settings: Settings, runtime: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from carevault import cli

    tenant = runtime.identity.create_tenant("north", "North", TenantKind.PRACTICE)
    gate = runtime.gate(system_actor(tenant.tenant_id, "test fixture"))
    gate.create("Patient", {"resourceType": "Patient"})
    for name, value in settings.model_dump().items():
        if value is not None and name in ("home", "database_url"):
            monkeypatch.setenv(f"CAREVAULT_{name.upper()}", str(value))
    result = CliRunner().invoke(cli.app, ["retention", "run", "--dry-run", "--tenant", "north"])
    assert result.exit_code == 0, result.output
    assert "0 would delete" in result.output
    ahead = CliRunner().invoke(
        cli.app, ["retention", "run", "--dry-run", "--as-of", "2999-01-01", "--tenant", "north"]
    )
    assert ahead.exit_code == 0, ahead.output
    assert "at 2999-01-01" in ahead.output
    early = CliRunner().invoke(
        cli.app, ["retention", "run", "--as-of", "2999-01-01", "--tenant", "north"]
    )
    assert early.exit_code != 0
    assert "dry run only" in early.output
    missing = CliRunner().invoke(cli.app, ["retention", "run", "--tenant", "nowhere"])
    assert missing.exit_code != 0


def test_a_dry_run_looks_ahead_but_a_run_never_deletes_early(
    runtime: Runtime, clock: ManualClock
) -> None:
    tenant = runtime.identity.create_tenant("north", "North", TenantKind.PRACTICE)
    gate = runtime.gate(system_actor(tenant.tenant_id, "test fixture"))
    pid = gate.create("Patient", {"resourceType": "Patient"}).resource_id
    bio = gate.create("Observation", biometric(pid, phi=False)).resource_id
    job = RetentionJob(retention_for(runtime))
    ahead = clock.now() + THREE_YEARS + timedelta(days=1)
    preview = job.run(tenant.tenant_id, dry_run=True, as_of=ahead)
    assert [d.resource_id for d in preview.due] == [bio]
    assert preview.at.startswith(ahead.date().isoformat())
    day_before = job.run(tenant.tenant_id, dry_run=True, as_of=ahead - timedelta(days=2))
    assert day_before.due == []
    with pytest.raises(Invalid, match="dry run only"):
        job.run(tenant.tenant_id, as_of=ahead)
    with pytest.raises(Invalid, match="past"):
        job.run(tenant.tenant_id, dry_run=True, as_of=clock.now() - timedelta(days=1))
    assert job.run(tenant.tenant_id).deleted == []  # today nothing is due: nothing went
    assert gate.read("Observation", bio).resource_id == bio
