"""policy versions: each posted version of the privacy policy, when posted and when in effect

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policy_versions",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("posted_at", sa.String(length=32), nullable=False),
        sa.Column("effective_at", sa.String(length=32), nullable=False),
        sa.Column("posted_by", sa.String(length=128), nullable=False),
        sa.Column("tenants_notified", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_policy_versions")),
    )


def downgrade() -> None:
    op.drop_table("policy_versions")
