"""Erase an account's identity, keeping the row that audit entries name by its id.

Two paths end here: the retention job, once an inactivated account's period is over, and a
verified CCPA deletion, at once. Both remove the same things: the address, password and
second factors, passkeys and reset requests, the sessions and API tokens, and the account's
links to a Patient or Practitioner. Runs inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, Table, delete, update

from carevault.identity.account_models import (
    account_factors,
    password_resets,
    sessions,
    webauthn_credentials,
)
from carevault.identity.models import api_tokens, users

SIGN_IN_TABLES = (account_factors, webauthn_credentials, password_resets)
USAGE_TABLES = (sessions, api_tokens)


def erase_identity(conn: Connection, tenant_id: str, user_id: str) -> dict[str, int]:
    """Rows removed per table; the user row keeps only its id, role and creation date."""
    removed = _delete_rows(conn, tenant_id, user_id, (*USAGE_TABLES, *SIGN_IN_TABLES))
    conn.execute(
        update(users)
        .where(users.c.tenant_id == tenant_id, users.c.user_id == user_id)
        .values(
            email_hash=f"erased:{user_id}",  # frees the address for a new account
            email_sealed=b"",
            password_hash=None,
            mfa_sealed=None,
            practitioner_id=None,
            patient_id=None,
            may_break_glass=False,
            active=False,
        )
    )
    return removed


def delete_usage(conn: Connection, tenant_id: str, user_id: str) -> dict[str, int]:
    """The account's usage records (sessions, API tokens): rows removed per table."""
    return _delete_rows(conn, tenant_id, user_id, USAGE_TABLES)


def _delete_rows(
    conn: Connection, tenant_id: str, user_id: str, tables: Iterable[Table]
) -> dict[str, int]:
    return {
        str(table.name): conn.execute(
            delete(table).where(table.c.tenant_id == tenant_id, table.c.user_id == user_id)
        ).rowcount
        for table in tables
    }
