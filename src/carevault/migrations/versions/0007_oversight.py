"""snooping alerts: restricted records, alerts, and the audit entries each links

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.tenant_id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def upgrade() -> None:
    op.create_table(
        "restricted_patients",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("flagged_at", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("flagged_by", sa.String(length=128), nullable=False),
        sa.Column("unflagged_at", sa.String(length=32), nullable=True),
        sa.Column("unflagged_by", sa.String(length=128), nullable=True),
        _tenant_fk("restricted_patients"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "patient_id", "flagged_at", name=op.f("pk_restricted_patients")
        ),
    )
    op.create_table(
        "snooping_alerts",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("raised_at", sa.String(length=32), nullable=False),
        sa.Column("opened_count", sa.Integer(), nullable=True),
        sa.Column("threshold", sa.Integer(), nullable=True),
        sa.Column("closed_at", sa.String(length=32), nullable=True),
        sa.Column("closed_by", sa.String(length=128), nullable=True),
        sa.Column("note_sealed", sa.LargeBinary(), nullable=True),
        _tenant_fk("snooping_alerts"),
        sa.PrimaryKeyConstraint("tenant_id", "alert_id", name=op.f("pk_snooping_alerts")),
    )
    op.create_index(
        "ix_snooping_alerts_once",
        "snooping_alerts",
        ["tenant_id", "user_id", "patient_id", "kind", "day"],
        unique=True,
    )
    op.create_index(
        "ix_snooping_alerts_listing", "snooping_alerts", ["tenant_id", "state", "raised_at"]
    )
    op.create_table(
        "snooping_alert_entries",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("alert_id", sa.String(length=36), nullable=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "alert_id"],
            ["snooping_alerts.tenant_id", "snooping_alerts.alert_id"],
            name=op.f("fk_snooping_alert_entries_tenant_id_snooping_alerts"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "alert_id", "seq", name=op.f("pk_snooping_alert_entries")
        ),
    )
    op.create_table(
        "sentinel_watermarks",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("last_seq", SEQ, nullable=False),
        sa.Column("scanned_at", sa.String(length=32), nullable=False),
        _tenant_fk("sentinel_watermarks"),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_sentinel_watermarks")),
    )
    op.create_table(
        "daily_opens",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("first_seq", SEQ, nullable=False),
        _tenant_fk("daily_opens"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "user_id", "day", "patient_id", name=op.f("pk_daily_opens")
        ),
    )
    op.create_table(
        "person_fingerprints",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.Integer(), nullable=False),
        _tenant_fk("person_fingerprints"),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "resource_type",
            "resource_id",
            "kind",
            "digest",
            name=op.f("pk_person_fingerprints"),
        ),
    )
    op.create_index(
        "ix_person_fingerprints_digest", "person_fingerprints", ["tenant_id", "kind", "digest"]
    )


def downgrade() -> None:
    op.drop_index("ix_person_fingerprints_digest", table_name="person_fingerprints")
    op.drop_table("person_fingerprints")
    op.drop_table("daily_opens")
    op.drop_table("sentinel_watermarks")
    op.drop_table("snooping_alert_entries")
    op.drop_index("ix_snooping_alerts_listing", table_name="snooping_alerts")
    op.drop_index("ix_snooping_alerts_once", table_name="snooping_alerts")
    op.drop_table("snooping_alerts")
    op.drop_table("restricted_patients")
