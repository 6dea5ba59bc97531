"""Alembic environment: the URL comes from the caller (carevault init), never from a file."""

from __future__ import annotations

from alembic import context

from carevault.database import make_engine
from carevault.privacy.schema import metadata

url = context.config.attributes.get("database_url") or context.config.get_main_option(
    "sqlalchemy.url"
)
if not url:
    raise RuntimeError("no database URL given to the migrations")

engine = make_engine(url, writer=True, pool_size=1)
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
finally:
    engine.dispose()
