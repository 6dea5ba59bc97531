"""PostgreSQL privileges: the application's role may append to the audit, never rewrite it.

`grant_app_role` is run by the owner (maintenance) role after each migration: the app role
gets read/write on the tables it works with, but only SELECT and INSERT on the audit
entries and checkpoints, and only SELECT on the purge register and the migration version.
The head row (audit_heads) stays updatable: its MAC and the signed checkpoints catch a
forged head.
"""

from __future__ import annotations

import re

from sqlalchemy import Connection

APPEND_ONLY = ("audit_entries", "audit_checkpoints")
READ_ONLY = ("audit_purges", "alembic_version")
_ROLE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def grant_app_role(conn: Connection, role: str) -> None:
    if conn.dialect.name != "postgresql":
        raise ValueError("database roles apply to PostgreSQL; SQLite has none")
    if not _ROLE.match(role):
        raise ValueError("the role name must be lower-case letters, digits and underscores")
    # The name is validated above and quoted; identifiers cannot be bound parameters.
    who = f'"{role}"'
    statements = [
        f"GRANT USAGE ON SCHEMA public TO {who}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {who}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {who}",
        f"REVOKE UPDATE, DELETE, TRUNCATE ON {', '.join(APPEND_ONLY)} FROM {who}",
        f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON {', '.join(READ_ONLY)} FROM {who}",
    ]
    for statement in statements:
        conn.exec_driver_sql(statement)
