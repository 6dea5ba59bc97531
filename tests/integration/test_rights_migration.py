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
