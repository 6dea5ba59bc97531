"""Migration 0002 (search quantities, search snapshots): it builds exactly the tables the
models declare, and it downgrades and upgrades again cleanly, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from carevault.database import metadata
from carevault.runtime import alembic_config, initialize
from carevault.settings import Settings

OURS = ("search_quantities", "search_snapshots")


def _differences(engine: sa.Engine, tables: tuple[str, ...]) -> list[object]:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    return [d for d in diffs if any(name in repr(d) for name in tables)]


def test_migration_0002_matches_the_models_and_round_trips(settings: Settings) -> None:
    initialize(settings)
    url = settings.resolved_database_url
    engine = sa.create_engine(url)
    try:
        assert set(OURS) <= set(sa.inspect(engine).get_table_names())
        assert _differences(engine, OURS) == []
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("search_quantities")}
        assert "ix_search_quantities_lookup" in indexes

        command.downgrade(alembic_config(url), "0001")
        assert not set(OURS) & set(sa.inspect(engine).get_table_names())
        command.upgrade(alembic_config(url), "head")
        assert set(OURS) <= set(sa.inspect(engine).get_table_names())
        assert _differences(engine, OURS) == []
    finally:
        engine.dispose()
