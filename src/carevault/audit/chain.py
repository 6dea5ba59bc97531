"""Appending to and verifying a tenant's audit chain.

Each entry's hash is an HMAC (key from the key store, not the database) over the
previous hash and the entry's own fields, seq included. Someone who can edit the
database but not read the key store cannot forge a consistent chain: an edit,
deletion or reordering breaks it at the first entry touched, and a truncation
leaves the head record pointing past the last entry. Beyond the chain, signed
checkpoints (checkpoints.py) catch a truncation or restore that rewrites the head too,
and after a purge verification starts at a signed anchor instead of the genesis.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, insert, select, update

from carevault.audit.models import AuditRecord, audit_entries, audit_heads

GENESIS = "0" * 64
_HASHED_FIELDS = (
    "tenant_id",
    "seq",
    "recorded_at",
    "request_id",
    "actor_id",
    "actor_role",
    "on_behalf_of",
    "action",
    "outcome",
    "status",
    "purpose",
    "resource_type",
    "resource_ids",
    "patient_ids",
    "source_ip",
    "user_agent",
    "detail",
)


# Built once: appending runs on every request and statement building is not free.
_LOCK_HEAD = (
    select(audit_heads.c.seq, audit_heads.c.entry_hash)
    .where(audit_heads.c.tenant_id == bindparam("tenant_id"))
    .with_for_update()
)
_COLUMNS = tuple(column.name for column in audit_entries.columns)


@cache
def _insert_sql_for(paramstyle: str) -> str:
    mark = "?" if paramstyle == "qmark" else "%s"
    # Only our own table and column names go into this string; values are bound.
    return (
        f"INSERT INTO {audit_entries.name} ({', '.join(_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join([mark] * len(_COLUMNS))})"
    )


def _insert_sql(conn: Connection) -> str:
    return _insert_sql_for(conn.dialect.paramstyle)


_MOVE_HEAD = (
    update(audit_heads)
    .where(audit_heads.c.tenant_id == bindparam("chain"))
    .values(
        seq=bindparam("new_seq"),
        entry_hash=bindparam("new_hash"),
        head_mac=bindparam("new_mac"),
    )
)


def _row_for(tenant_id: str, seq: int, record: AuditRecord) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "seq": seq,
        "recorded_at": record.recorded_at,
        "request_id": record.request_id,
        "actor_id": record.actor_id,
        "actor_role": record.actor_role,
        "on_behalf_of": record.on_behalf_of,
        "action": record.action.value,
        "outcome": record.outcome.value,
        "status": record.status,
        "purpose": record.purpose,
        "resource_type": record.resource_type,
        "resource_ids": orjson.dumps(list(record.resource_ids)).decode(),
        "patient_ids": orjson.dumps(sorted(set(record.patient_ids))).decode(),
        "source_ip": record.source_ip,
        "user_agent": (record.user_agent or "")[:256] or None,
        "detail": record.detail,
    }


def entry_hash(key: bytes, prev_hash: str, row: Mapping[str, Any]) -> str:
    body = orjson.dumps({f: row[f] for f in _HASHED_FIELDS}, option=orjson.OPT_SORT_KEYS)
    return hmac.new(key, prev_hash.encode() + body, hashlib.sha256).hexdigest()


def _head_mac(key: bytes, tenant_id: str, seq: int, last_hash: str) -> str:
    msg = f"head|{tenant_id}|{seq}|{last_hash}".encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def start_chain(conn: Connection, key: bytes, tenant_id: str) -> None:
    """Create the chain's head; done once, when the tenant is created."""
    conn.execute(
        insert(audit_heads).values(
            tenant_id=tenant_id,
            seq=0,
            entry_hash=GENESIS,
            head_mac=_head_mac(key, tenant_id, 0, GENESIS),
        )
    )


CheckpointHook = Callable[[Connection, str, int, str, str], None]
"""(conn, tenant_id, seq, entry_hash, recorded_at): writes a signed checkpoint."""


@dataclass(frozen=True)
class Anchor:
    """Where the chain starts after a purge: the seq and hash of the last removed entry."""

    seq: int
    entry_hash: str


GENESIS_ANCHOR = Anchor(0, GENESIS)


def append(
    conn: Connection,
    key: bytes,
    tenant_id: str,
    records: Iterable[AuditRecord],
    *,
    checkpoint: CheckpointHook | None = None,
    checkpoint_every: int = 1000,
) -> int:
    """Append records to the tenant's chain inside the caller's transaction; returns the last seq.

    The head row is locked (FOR UPDATE) so concurrent writers in other processes queue up.
    When the appended entries cross a multiple of `checkpoint_every`, `checkpoint` signs the
    new head in the same transaction.
    """
    head = conn.execute(_LOCK_HEAD, {"tenant_id": tenant_id}).one_or_none()
    if head is None:
        raise LookupError(f"no audit chain for tenant {tenant_id}")
    seq, prev = int(head.seq), str(head.entry_hash)
    start = seq
    rows = []
    for record in records:
        seq += 1
        row = _row_for(tenant_id, seq, record)
        row["prev_hash"] = prev
        row["entry_hash"] = prev = entry_hash(key, prev, row)
        rows.append(row)
    if rows:
        # The driver's own executemany: SQLAlchemy's per-row processing cost more than the
        # insert itself, on the path every answered request waits for.
        conn.exec_driver_sql(_insert_sql(conn), [tuple(r[c] for c in _COLUMNS) for r in rows])
        conn.execute(
            _MOVE_HEAD,
            {"chain": tenant_id, "new_seq": seq, "new_hash": prev,
             "new_mac": _head_mac(key, tenant_id, seq, prev)},
        )  # fmt: skip
        if checkpoint is not None and seq // checkpoint_every > start // checkpoint_every:
            checkpoint(conn, tenant_id, seq, prev, rows[-1]["recorded_at"])
    return seq


@dataclass(frozen=True)
class Verification:
    tenant_id: str
    verified: int
    first_bad_seq: int | None = None
    problem: str | None = None
    head_seq: int = 0
    head_hash: str = GENESIS

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(
    conn: Connection,
    key: bytes,
    tenant_id: str,
    *,
    anchor: Anchor = GENESIS_ANCHOR,
    batch: int = 5000,
) -> Verification:
    """Walk the chain in order from `anchor`; name the first entry that was altered, deleted
    or reordered. The anchor's own signature is the caller's to check (checkpoints.py)."""
    expected_seq, prev, count = anchor.seq + 1, anchor.entry_hash, 0
    last_seq = anchor.seq
    while True:
        rows = (
            conn.execute(
                select(audit_entries)
                .where(audit_entries.c.tenant_id == tenant_id, audit_entries.c.seq >= expected_seq)
                .order_by(audit_entries.c.seq)
                .limit(batch)
            )
            .mappings()
            .all()
        )
        for row in rows:
            if row["seq"] != expected_seq:
                return Verification(
                    tenant_id,
                    count,
                    expected_seq,
                    f"entry {expected_seq} is missing (deleted or renumbered)",
                )
            if row["prev_hash"] != prev or entry_hash(key, prev, dict(row)) != row["entry_hash"]:
                return Verification(
                    tenant_id,
                    count,
                    expected_seq,
                    f"entry {expected_seq} was altered or moved",
                )
            prev = row["entry_hash"]
            last_seq = expected_seq
            expected_seq += 1
            count += 1
        if len(rows) < batch:
            break
    head = conn.execute(select(audit_heads).where(audit_heads.c.tenant_id == tenant_id)).mappings()
    head_row = head.one_or_none()
    if head_row is None:
        return Verification(tenant_id, count, None, "the chain's head record is missing")
    if head_row["head_mac"] != _head_mac(key, tenant_id, head_row["seq"], head_row["entry_hash"]):
        return Verification(tenant_id, count, None, "the chain's head record was altered")
    if head_row["seq"] != last_seq or head_row["entry_hash"] != prev:
        return Verification(
            tenant_id,
            count,
            last_seq + 1,
            f"entries after {last_seq} were removed (the head records {head_row['seq']})",
        )
    return Verification(tenant_id, count, head_seq=last_seq, head_hash=prev)
