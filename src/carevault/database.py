"""The SQL engine: SQLite (WAL, synchronous=FULL) by default, PostgreSQL by URL.

Only the engine lives here; each domain declares its own tables on `metadata`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.pool import QueuePool

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def make_engine(url: str, *, writer: bool, pool_size: int = 16) -> Engine:
    """An engine for reads (concurrent snapshots) or for writes (one writer at a time)."""
    if url.startswith("sqlite"):
        return _sqlite_engine(url, pool_size, writer=writer)
    # No pre-ping: it costs a round trip per checkout; recycle instead of stale connections.
    return create_engine(url, pool_size=pool_size, max_overflow=8, pool_recycle=1800)


def _sqlite_engine(url: str, pool_size: int, *, writer: bool) -> Engine:
    engine = create_engine(
        url,
        poolclass=QueuePool,
        pool_size=pool_size,
        max_overflow=8,
        # We issue BEGIN ourselves (below); pysqlite's implicit transactions are off.
        connect_args={"isolation_level": None, "check_same_thread": False, "timeout": 30},
    )

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    if writer:

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # The writer takes the lock up front: no deadlock when a reader would upgrade.
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def analyze(engine: Engine) -> None:
    """Refresh the planner's statistics (after bulk loads), so searches use their indexes."""
    with engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
