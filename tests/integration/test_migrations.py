"""Each migration builds exactly the tables the models declare, and downgrades to its parent
and upgrades again cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from carevault.privacy.schema import metadata
from carevault.runtime import alembic_config, initialize
from carevault.settings import Settings

MIGRATIONS = {
    # revision: (its parent, the tables it creates)
    "0002": ("0001", ("search_quantities", "search_snapshots")),
    "0004": ("0003", ("tenant_policies", "account_factors", "webauthn_credentials",
                      "sign_in_throttle", "sessions", "password_resets")),
    "0005": ("0004", ("notification_outbox", "notification_deliveries")),
    "0006": ("0005", ("representations", "break_glass_grants")),
    "0007": ("0006", ("restricted_patients", "snooping_alerts", "snooping_alert_entries",
                      "sentinel_watermarks", "daily_opens", "person_fingerprints")),
    "0008": ("0007", ("audit_checkpoints", "audit_purges")),
    "0009": ("0008", ("disclosures", "accounting_suspensions")),
    "0010": ("0009", ("business_associate_agreements", "legal_orders", "held_notices",
                      "authorization_documents")),
    "0011": ("0010", ("deid_projects", "deid_pseudonyms", "deid_releases")),
    "0012": ("0011", ("rights_requests", "rights_notices", "rights_copies", "rights_statements")),
    "0013": ("0012", ("hidden_resources", "legal_holds", "deletion_certificates",
                      "account_inactivations", "communication_preferences", "suppression_list")),
    "0014": ("0013", ("notification_addresses", "rights_email_checks",
                      "rights_provider_directions")),
    "0015": ("0014", ("policy_versions",)),
}  # fmt: skip


def _differences(engine: sa.Engine, tables: tuple[str, ...]) -> list[object]:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    return [d for d in diffs if any(name in repr(d) for name in tables)]


@pytest.mark.parametrize("revision", sorted(MIGRATIONS))
def test_migration_matches_the_models_and_round_trips(settings: Settings, revision: str) -> None:
    parent, tables = MIGRATIONS[revision]
    initialize(settings)
    url = settings.resolved_database_url
    engine = sa.create_engine(url)
    try:
        assert set(tables) <= set(sa.inspect(engine).get_table_names())
        assert _differences(engine, tables) == []
        command.downgrade(alembic_config(url), parent)
        assert not set(tables) & set(sa.inspect(engine).get_table_names())
        command.upgrade(alembic_config(url), "head")
        assert set(tables) <= set(sa.inspect(engine).get_table_names())
        assert _differences(engine, tables) == []
    finally:
        engine.dispose()


def test_the_users_columns_of_0004_round_trip(settings: Settings) -> None:
    initialize(settings)
    url = settings.resolved_database_url
    engine = sa.create_engine(url)
    try:
        command.downgrade(alembic_config(url), "0003")
        columns = {c["name"] for c in sa.inspect(engine).get_columns("users")}
        assert not {"practitioner_id", "may_break_glass"} & columns
        command.upgrade(alembic_config(url), "head")
        engine.dispose()  # the inspector caches; look again
        columns = {c["name"] for c in sa.inspect(engine).get_columns("users")}
        assert {"practitioner_id", "may_break_glass"} <= columns
        assert _differences(engine, ("users",)) == []
    finally:
        engine.dispose()


def test_the_search_quantities_lookup_index_exists(settings: Settings) -> None:
    initialize(settings)
    engine = sa.create_engine(settings.resolved_database_url)
    try:
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("search_quantities")}
        assert "ix_search_quantities_lookup" in indexes
    finally:
        engine.dispose()
