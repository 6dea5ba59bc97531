"""Oversight tables: restricted patients, snooping alerts and what the sentinel remembers.

No PHI in clear: ids, codes, days, counts, keyed hashes. The privacy officer's closing
note is free text, so it is stored sealed.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
)

from carevault.database import metadata


class RestrictionReason(StrEnum):
    STAFF = "staff"
    PUBLIC_FIGURE = "public-figure"
    OTHER = "other"


class AlertKind(StrEnum):
    SAME_SURNAME = "same-surname"
    SAME_ADDRESS = "same-address"
    RESTRICTED = "restricted"
    VOLUME = "volume"


class AlertState(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


SEQ = BigInteger().with_variant(Integer, "sqlite")

restricted_patients = Table(
    "restricted_patients",
    metadata,
    # One row per flagging; unflagging closes the row, so "restricted at the time of the read"
    # can be answered for reads the sentinel sees after the flag was lifted.
    Column("tenant_id", String(36), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Column("flagged_at", String(32), primary_key=True),
    Column("reason", String(16), nullable=False),
    Column("flagged_by", String(128), nullable=False),
    Column("unflagged_at", String(32), nullable=True),
    Column("unflagged_by", String(128), nullable=True),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)

snooping_alerts = Table(
    "snooping_alerts",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("alert_id", String(36), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("patient_id", String(64), nullable=False),  # "" for a volume alert (many patients)
    Column("kind", String(16), nullable=False),
    Column("day", String(10), nullable=False),  # UTC day of the reads, YYYY-MM-DD
    Column("state", String(8), nullable=False),
    Column("raised_at", String(32), nullable=False),
    Column("opened_count", Integer, nullable=True),  # volume: distinct patients that day
    Column("threshold", Integer, nullable=True),  # volume: the limit it went over
    Column("closed_at", String(32), nullable=True),
    Column("closed_by", String(128), nullable=True),
    Column("note_sealed", LargeBinary, nullable=True),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    # One alert per (user, patient, kind) per day, not one per read.
    Index(
        "ix_snooping_alerts_once", "tenant_id", "user_id", "patient_id", "kind", "day", unique=True
    ),
    Index("ix_snooping_alerts_listing", "tenant_id", "state", "raised_at"),
)

snooping_alert_entries = Table(
    "snooping_alert_entries",
    metadata,
    # The audit entries (by seq in the tenant's chain) an alert is based on.
    Column("tenant_id", String(36), primary_key=True),
    Column("alert_id", String(36), primary_key=True),
    Column("seq", SEQ, primary_key=True),
    ForeignKeyConstraint(
        ["tenant_id", "alert_id"], ["snooping_alerts.tenant_id", "snooping_alerts.alert_id"]
    ),
)

sentinel_watermarks = Table(
    "sentinel_watermarks",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("last_seq", SEQ, nullable=False),  # the last audit entry scanned
    Column("scanned_at", String(32), nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)

daily_opens = Table(
    "daily_opens",
    metadata,
    # Distinct patients each workforce user opened each day: the volume baseline, in SQL.
    Column("tenant_id", String(36), primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("day", String(10), primary_key=True),
    Column("patient_id", String(64), primary_key=True),
    Column("first_seq", SEQ, nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
)

person_fingerprints = Table(
    "person_fingerprints",
    metadata,
    # Keyed hashes (tenant search key, domain oversight.*) of the folded family names and
    # addresses of a Patient or Practitioner, at the version they were taken from.
    Column("tenant_id", String(36), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True),  # family, address, or none (nothing to hash)
    Column("digest", String(64), primary_key=True),
    Column("version_id", Integer, nullable=False),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    Index("ix_person_fingerprints_digest", "tenant_id", "kind", "digest"),
)
