"""Search snapshots: the ordered ids of a sorted search, kept so its pages stay stable.

The id list is sealed under the tenant's key and bound to the user and the snapshot id;
a snapshot lapses with its paging links, and expired ones are purged on each new write.
"""

from __future__ import annotations

from collections.abc import Sequence

import orjson
from sqlalchemy import Connection, delete, insert, select

from carevault.crypto.envelope import DecryptionError
from carevault.crypto.vault import Vault
from carevault.records.models import search_snapshots as snap

MAX_SNAPSHOT = 10_000
"""A sorted search may match at most this many resources (beyond: narrow the search)."""
_PURPOSE = "search-snapshot"


def _aad(user_id: str, snapshot_id: str) -> bytes:
    return f"{user_id}|{snapshot_id}".encode()


def write(
    conn: Connection,
    vault: Vault,
    tenant_id: str,
    user_id: str,
    snapshot_id: str,
    rtype: str,
    ids: Sequence[str],
    *,
    expires_at: str,
    now: str,
) -> None:
    conn.execute(delete(snap).where(snap.c.tenant_id == tenant_id, snap.c.expires_at < now))
    sealed = vault.seal_for(
        tenant_id, _PURPOSE, orjson.dumps(list(ids)), _aad(user_id, snapshot_id)
    )
    conn.execute(
        insert(snap),
        {"tenant_id": tenant_id, "snapshot_id": snapshot_id, "user_id": user_id,
         "resource_type": rtype, "expires_at": expires_at, "sealed_ids": sealed},
    )  # fmt: skip


def read(
    conn: Connection,
    vault: Vault,
    tenant_id: str,
    user_id: str,
    snapshot_id: str,
    rtype: str,
    now: str,
) -> list[str] | None:
    """The snapshot's ids, or None if it is unknown, expired, or not this user's."""
    row = conn.execute(
        select(snap.c.sealed_ids).where(
            snap.c.tenant_id == tenant_id,
            snap.c.snapshot_id == snapshot_id,
            snap.c.user_id == user_id,
            snap.c.resource_type == rtype,
            snap.c.expires_at >= now,
        )
    ).one_or_none()
    if row is None:
        return None
    try:
        ids = orjson.loads(
            vault.open_for(tenant_id, _PURPOSE, row.sealed_ids, _aad(user_id, snapshot_id))
        )
    except (DecryptionError, orjson.JSONDecodeError):
        return None
    return [str(i) for i in ids]
