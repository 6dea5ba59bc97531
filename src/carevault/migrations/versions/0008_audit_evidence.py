"""signed audit checkpoints, chain anchors, purge archive records

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_checkpoints",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.String(length=32), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "kind", "seq", name=op.f("pk_audit_checkpoints")),
    )
    op.create_table(
        "audit_purges",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("purge_id", sa.String(length=36), nullable=False),
        sa.Column("before", sa.String(length=32), nullable=False),
        sa.Column(
            "first_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("entries", sa.Integer(), nullable=False),
        sa.Column("archive_name", sa.String(length=200), nullable=False),
        sa.Column("archive_sha256", sa.String(length=64), nullable=False),
        sa.Column("purged_at", sa.String(length=32), nullable=False),
        sa.Column("purged_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "purge_id", name=op.f("pk_audit_purges")),
    )


def downgrade() -> None:
    op.drop_table("audit_purges")
    op.drop_table("audit_checkpoints")
