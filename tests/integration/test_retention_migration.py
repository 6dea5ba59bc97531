"""Migration 0013 builds exactly the retention and preference tables the models declare, and
downgrades to 0012 and upgrades again cleanly."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from carevault.messaging import preferences  # noqa: F401  (registers its tables)
from carevault.privacy import soft_delete  # noqa: F401
from carevault.privacy.schema import metadata
from carevault.retention import models  # noqa: F401
from carevault.runtime import alembic_config, initialize
from carevault.settings import Settings

TABLES = (
    "hidden_resources",
    "legal_holds",
    "deletion_certificates",
    "account_inactivations",
    "communication_preferences",
    "suppression_list",
)


def _differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    return [d for d in diffs if any(name in repr(d) for name in TABLES)]


def test_0013_matches_the_models_and_round_trips(settings: Settings) -> None:
    initialize(settings)
    url = settings.resolved_database_url
    engine = sa.create_engine(url)
    try:
        assert set(TABLES) <= set(sa.inspect(engine).get_table_names())
        assert _differences(engine) == []
        command.downgrade(alembic_config(url), "0012")
        assert not set(TABLES) & set(sa.inspect(engine).get_table_names())
        command.upgrade(alembic_config(url), "head")
        assert _differences(engine) == []
    finally:
        engine.dispose()
