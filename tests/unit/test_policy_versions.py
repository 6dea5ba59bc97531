"""Policy versions: the one in effect at an instant, their order, the notice's dates and the
tenants' message (the PHI guard lets the effective day through, spelled as counts)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from carevault.clock import ManualClock
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.errors import Conflict, Forbidden
from carevault.identity.models import Actor, TenantKind, system_actor
from carevault.identity.permissions import Purpose, Role
from carevault.messaging.templates import template
from carevault.policy import PrivacyPolicy, load_profile, policies_dir
from carevault.policy import versions as versions_module
from carevault.policy.render import Posting, dates_line
from carevault.privacy.schema import metadata
from carevault.runtime import Runtime, alembic_config, initialize
from carevault.settings import Settings

OPERATOR = system_actor(VENDOR_CHAIN, "test: policy post", Purpose.HSYSADMIN)


def default_text(*, name: str = "CareVault default", days: int | None = None) -> str:
    text = (policies_dir() / "default.yaml").read_text(encoding="utf-8")
    text = text.replace("name: CareVault default\n", f"name: {name}\n", 1)
    if days is not None:
        text += f"changes:\n  effective_after_days: {days}\n  notify: [tenants]\n"
    return text


def test_the_tenants_message_renders_with_the_day_it_takes_effect() -> None:
    params = {"days": 7, "year": 2026, "month": 12, "day": 8}
    rendered = template("policy-change-posted").render(
        params, tenant="Riverside Clinic", origin="https://care.example.test"
    )
    assert "takes effect 7 days after posting: on day 8 of month 12 of 2026 (UTC)" in " ".join(
        rendered.text.split()
    )
    assert "Riverside Clinic" in rendered.text


def test_the_notice_prints_the_posting_dates_and_a_pending_version() -> None:
    doc = load_profile("lifeimage").document
    assert dates_line(doc) == "Effective 2016-12-14."
    posted = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    line = dates_line(doc, Posting(2, posted, posted + timedelta(days=7)))
    assert line == "Version 2, posted 2026-12-01 09:30 UTC; in effect from 2026-12-08 09:30 UTC."
    line = dates_line(doc, Posting(0, None, None, 1, posted, posted + timedelta(days=7)))
    assert line == (
        "Effective 2016-12-14. A new version (1) was posted 2026-12-01 09:30 UTC and takes "
        "effect 2026-12-08 09:30 UTC; until then this one applies."
    )


def test_a_version_takes_effect_after_the_days_of_the_version_in_effect(
    runtime: Runtime, clock: ManualClock
) -> None:
    posts = runtime.policy_posts
    assert isinstance(runtime.policy, PrivacyPolicy)  # every package keeps asking the same
    # the default promises no delay: version 1 is in effect at once, and it promises 7 days
    first = posts.post(OPERATOR, default_text(name="Default one", days=7), "one.yaml")
    assert first.effective_at == clock.now()
    assert runtime.policy.name == runtime.disclosures.policy.name == "Default one"
    clock.advance(timedelta(hours=1))
    second = posts.post(OPERATOR, default_text(name="Default two", days=0), "two.yaml")
    assert second.effective_at == clock.now() + timedelta(days=7)
    # version 2 promises no delay, but version 3 cannot overtake it
    third = posts.post(OPERATOR, default_text(name="Default three", days=0), "three.yaml")
    assert third.effective_at == second.effective_at
    assert runtime.policy.name == "Default one"
    clock.advance(timedelta(days=7))
    assert runtime.policy.name == "Default three"
    states = [(v.version, v.state) for v in posts.listed(OPERATOR)]
    assert states == [(0, "superseded"), (1, "superseded"), (2, "superseded"), (3, "in-effect")]
    assert "Version 2, posted" in posts.notice(2)
    assert "Version 3, posted" in posts.notice()


def test_only_the_vendor_posts_and_the_same_policy_is_refused(runtime: Runtime) -> None:
    posts = runtime.policy_posts
    tenant = runtime.identity.create_tenant("north", "North Clinic", TenantKind.PRACTICE)
    admin = Actor(tenant.tenant_id, "u", Role.PRACTICE_ADMIN, Purpose.HOPERAT, frozenset())
    with pytest.raises(Forbidden):
        posts.post(admin, default_text(name="Changed"), "x.yaml")
    with pytest.raises(Conflict, match="the same policy as version 0"):
        posts.post(OPERATOR, default_text() + "\n# only a comment\n", "x.yaml")
    assert [v.version for v in posts.listed(OPERATOR)] == [0]


def test_another_process_sees_a_posted_version(
    settings: Settings, runtime: Runtime, clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Runtime(settings, clock=clock)
    try:
        monkeypatch.setattr(versions_module, "RELOAD_SECONDS", -1.0)  # re-read at every ask
        runtime.policy_posts.post(OPERATOR, default_text(name="Posted elsewhere"), "x.yaml")
        assert other.policy.name == "Posted elsewhere"
    finally:
        other.close()


def test_the_policy_versions_migration_matches_the_model_and_round_trips(
    settings: Settings,
) -> None:
    initialize(settings)
    url = settings.resolved_database_url
    engine = sa.create_engine(url)

    def differences() -> list[object]:
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
        return [d for d in diffs if "policy_versions" in repr(d)]

    try:
        assert differences() == []
        command.downgrade(alembic_config(url), "0014")
        assert "policy_versions" not in sa.inspect(engine).get_table_names()
        command.upgrade(alembic_config(url), "head")
        assert differences() == []
    finally:
        engine.dispose()
