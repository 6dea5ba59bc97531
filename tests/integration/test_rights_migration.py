"""Migration 0012 builds exactly the tables rights/models.py declares, and round-trips."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from carevault.privacy.schema import metadata
from carevault.rights import models as rights_models
from carevault.runtime import alembic_config, initialize
from carevault.settings import Settings

TABLES = ("rights_requests", "rights_notices", "rights_copies", "rights_statements")


def _differences(engine: sa.Engine) -> list[object]:
    assert rights_models.rights_requests.metadata is metadata  # registered on the one metadata
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    return [d for d in diffs if any(name in repr(d) for name in TABLES)]


def test_0012_matches_the_models_and_round_trips(settings: Settings) -> None:
    initialize(settings)
    url = settings.resolved_database_url
    engine = sa.create_engine(url)
    try:
        assert set(TABLES) <= set(sa.inspect(engine).get_table_names())
        assert _differences(engine) == []
        script = alembic_config(url)
        command.downgrade(script, "0011")
        assert not set(TABLES) & set(sa.inspect(engine).get_table_names())
        command.upgrade(script, "head")
        assert _differences(engine) == []
    finally:
        engine.dispose()


ADDED = ("notification_addresses", "rights_email_checks", "rights_provider_directions")


def test_0014_matches_the_models_and_round_trips_with_messages_kept(
    settings: Settings,
) -> None:
    """0014 drops the outbox's tenants key (the vendor writes to people with no
    account) and adds the rights tables; the rebuild keeps every message and delivery."""
    initialize(settings)
    url = settings.resolved_database_url
    engine = sa.create_engine(url)
    names = (*TABLES, *ADDED, "notification_outbox")
    try:
        diffs = _all_differences(engine, names)
        assert diffs == []
        with engine.begin() as conn:
            tenant = conn.execute(sa.text("SELECT tenant_id FROM tenants")).scalar()
            if tenant is None:
                conn.execute(
                    sa.text(
                        "INSERT INTO tenants (tenant_id, slug, name, kind, created_at) "
                        "VALUES ('t1', 't1', 'T1', 'practice', '2026-12-01T00:00:00+00:00')"
                    )
                )
                tenant = "t1"
            for table, values in _messages(str(tenant)):
                conn.execute(sa.text(f"INSERT INTO {table} VALUES {values}"))
        script = alembic_config(url)
        command.downgrade(script, "0013")
        assert not set(ADDED) & set(sa.inspect(engine).get_table_names())
        assert _count(engine, "notification_deliveries") == 1  # the tenant's, kept
        assert _count(engine, "notification_outbox") == 1  # the vendor's went with the key
        command.upgrade(script, "head")
        assert _all_differences(engine, names) == []
        assert _count(engine, "notification_deliveries") == 1
    finally:
        engine.dispose()


def _messages(tenant: str) -> list[tuple[str, str]]:
    cols = (
        "(tenant_id, message_id, created_at, recipient_kind, recipient, template, params, "
        "state, attempts, next_attempt_at)"
    )
    row = "('{t}', '{m}', '2026-12-01', 'user', 'u1', 'rights-request-new', '{{}}', 'sent', 1, 'x')"
    deliveries = (
        "(tenant_id, delivery_id, message_id, recipient_user_id, attempt, at, outcome, "
        "smtp_code, reason)"
    )
    return [
        (f"notification_outbox {cols}", row.format(t=tenant, m="m1")),
        (f"notification_outbox {cols}", row.format(t="_vendor", m="m2")),
        (
            f"notification_deliveries {deliveries}",
            f"('{tenant}', 'd1', 'm1', 'u1', 1, '2026-12-01', 'sent', 250, NULL)",
        ),
    ]


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one())


def _all_differences(engine: sa.Engine, names: tuple[str, ...]) -> list[object]:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    return [d for d in diffs if any(name in repr(d) for name in names)]
