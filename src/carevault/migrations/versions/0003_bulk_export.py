"""bulk data export jobs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 07:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "export_jobs",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("request_url", sa.Text(), nullable=False),
        sa.Column("transaction_time", sa.String(length=32), nullable=False),
        sa.Column("completed_at", sa.String(length=32), nullable=True),
        sa.Column("expires_at", sa.String(length=32), nullable=True),
        sa.Column("progress", sa.Integer(), nullable=False),
        sa.Column("output", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_export_jobs_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "job_id", name=op.f("pk_export_jobs")),
    )
    op.create_index("ix_export_jobs_expires", "export_jobs", ["tenant_id", "expires_at"])


def downgrade() -> None:
    op.drop_index("ix_export_jobs_expires", table_name="export_jobs")
    op.drop_table("export_jobs")
