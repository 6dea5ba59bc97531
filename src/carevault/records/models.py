"""Record tables. `tenant_id` leads every key, so the schema shards by tenant (Citus).

Resource bodies exist only as AES-GCM ciphertext. The search tables hold keyed
hashes for direct identifiers and clear values only for codes, statuses, clinical
dates and birth years.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, LargeBinary, String, Table

from carevault.database import metadata

resources = Table(
    "resources",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    Column("last_updated", String(32), nullable=False),
    Column("deleted", Boolean, nullable=False),
    # The patient whose compartment holds this resource: the scope filter and the data key.
    Column("patient_id", String(64), nullable=True),
    Index("ix_resources_patient", "tenant_id", "patient_id", "resource_type"),
    Index("ix_resources_updated", "tenant_id", "resource_type", "last_updated"),
)

resource_versions = Table(
    "resource_versions",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("version_id", Integer, primary_key=True),
    Column("last_updated", String(32), nullable=False),
    Column("deleted", Boolean, nullable=False),
    Column("patient_id", String(64), nullable=True),
    Column("key_name", String(80), nullable=False),
    Column("sealed", LargeBinary, nullable=True),  # None for a deletion tombstone
    # Type history, newest first (records/history.py): an ordered index scan, no sort.
    Index(
        "ix_resource_versions_updated",
        "tenant_id",
        "resource_type",
        "last_updated",
        "resource_id",
        "version_id",
    ),
)

search_tokens = Table(
    "search_tokens",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("param", String(64), primary_key=True),
    Column("system", String(255), primary_key=True),  # "" when none (or hashed)
    Column("code", String(255), primary_key=True),
    # Covering (resource_id last): a search reads only this index, never the table.
    Index("ix_search_tokens_lookup", "tenant_id", "resource_type", "param", "code", "resource_id"),
)

search_dates = Table(
    "search_dates",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("param", String(64), primary_key=True),
    Column("low", String(32), primary_key=True),
    Column("high", String(32), primary_key=True),
    Index(
        "ix_search_dates_lookup",
        "tenant_id",
        "resource_type",
        "param",
        "low",
        "high",
        "resource_id",
    ),
)

search_refs = Table(
    "search_refs",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("param", String(64), primary_key=True),
    Column("target_type", String(64), primary_key=True),
    Column("target_id", String(64), primary_key=True),
    Index(
        "ix_search_refs_lookup", "tenant_id", "resource_type", "param", "target_id", "resource_id"
    ),
)

search_quantities = Table(
    "search_quantities",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("param", String(64), primary_key=True),
    Column("system", String(255), primary_key=True),  # "" when none; ISO 4217 for Money
    Column("code", String(255), primary_key=True),  # unit code, or currency for Money
    # [low, high): the value widened by its implicit precision (5.4 → [5.35, 5.45)).
    Column("low", Float(precision=53), primary_key=True),
    Column("high", Float(precision=53), primary_key=True),
    Index(
        "ix_search_quantities_lookup",
        "tenant_id",
        "resource_type",
        "param",
        "code",
        "low",
        "high",
        "resource_id",
    ),
)

search_snapshots = Table(
    "search_snapshots",
    metadata,
    # The ordered result of a sorted search, so its later pages stay stable under writes.
    Column("tenant_id", String(36), primary_key=True),
    Column("snapshot_id", String(36), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("resource_type", String(64), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("sealed_ids", LargeBinary, nullable=False),  # the id list, sealed to the user
    Index("ix_search_snapshots_expiry", "tenant_id", "expires_at"),
)

# Soft delete (privacy/soft_delete.py): a resource hidden from every screen but kept. Its
# table lives with the records so that listings here (type history) can leave hidden ones out.
hidden_resources = Table(
    "hidden_resources",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=True),
    Column("hidden_at", String(32), nullable=False),
    Column("hidden_by", String(128), nullable=False),
)
