"""Migration 0009 (the disclosure ledger and accounting suspensions) builds exactly the tables
the models declare, downgrades to 0008 and upgrades again, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from carevault.runtime import alembic_config, initialize
from carevault.settings import Settings
from tests.integration.test_migrations import _differences

TABLES = ("disclosures", "accounting_suspensions")


def test_0009_matches_the_models_and_round_trips(settings: Settings) -> None:
    initialize(settings)
    url = settings.resolved_database_url
    engine = sa.create_engine(url)
    try:
        assert set(TABLES) <= set(sa.inspect(engine).get_table_names())
        assert _differences(engine, TABLES) == []
        command.downgrade(alembic_config(url), "0008")
        assert not set(TABLES) & set(sa.inspect(engine).get_table_names())
        command.upgrade(alembic_config(url), "head")
        assert set(TABLES) <= set(sa.inspect(engine).get_table_names())
        assert _differences(engine, TABLES) == []
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("disclosures")}
        assert "ix_disclosures_patient" in indexes
    finally:
        engine.dispose()
