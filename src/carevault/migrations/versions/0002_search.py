"""search features (quantities, search snapshots), type history index

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_quantities",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("param", sa.String(length=64), nullable=False),
        sa.Column("system", sa.String(length=255), nullable=False),
        sa.Column("code", sa.String(length=255), nullable=False),
        sa.Column("low", sa.Float(precision=53), nullable=False),
        sa.Column("high", sa.Float(precision=53), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id",
            "resource_type",
            "resource_id",
            "param",
            "system",
            "code",
            "low",
            "high",
            name=op.f("pk_search_quantities"),
        ),
    )
    with op.batch_alter_table("search_quantities", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_quantities_lookup",
            ["tenant_id", "resource_type", "param", "code", "low", "high", "resource_id"],
            unique=False,
        )
    op.create_table(
        "search_snapshots",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("snapshot_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.String(length=32), nullable=False),
        sa.Column("sealed_ids", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "snapshot_id", name=op.f("pk_search_snapshots")),
    )
    with op.batch_alter_table("search_snapshots", schema=None) as batch_op:
        batch_op.create_index(
            "ix_search_snapshots_expiry", ["tenant_id", "expires_at"], unique=False
        )

    # Type-level history reads versions by last update, newest first.
    with op.batch_alter_table("resource_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_resource_versions_updated",
            ["tenant_id", "resource_type", "last_updated", "resource_id", "version_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("resource_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_resource_versions_updated")
    with op.batch_alter_table("search_snapshots", schema=None) as batch_op:
        batch_op.drop_index("ix_search_snapshots_expiry")
    op.drop_table("search_snapshots")
    with op.batch_alter_table("search_quantities", schema=None) as batch_op:
        batch_op.drop_index("ix_search_quantities_lookup")
    op.drop_table("search_quantities")
