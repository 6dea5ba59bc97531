"""Tables of the audit evidence: signed checkpoints and anchors, and the purge register.

No foreign key to tenants: the vendor chain (`_vendor`) is checkpointed too.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Column, Integer, String, Table

from carevault.database import metadata


class CheckpointKind(StrEnum):
    CHECKPOINT = "checkpoint"
    """A signed statement: the chain held `entry_hash` at `seq` at `signed_at`."""
    ANCHOR = "anchor"
    """Where verification starts after a purge: the last removed entry's seq and hash."""


audit_checkpoints = Table(
    "audit_checkpoints",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("entry_hash", String(64), nullable=False),
    Column("signed_at", String(32), nullable=False),
    Column("signature", String(128), nullable=False),
)

audit_purges = Table(
    "audit_purges",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("purge_id", String(36), primary_key=True),
    Column("before", String(32), nullable=False),
    Column("first_seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("last_seq", BigInteger().with_variant(Integer, "sqlite"), nullable=False),
    Column("entries", Integer, nullable=False),
    Column("archive_name", String(200), nullable=False),
    Column("archive_sha256", String(64), nullable=False),
    Column("purged_at", String(32), nullable=False),
    Column("purged_by", String(128), nullable=False),
)
