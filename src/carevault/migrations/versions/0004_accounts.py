"""people and access: tenant policy, sign-in factors, sessions, lockout

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("practitioner_id", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("may_break_glass", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "tenant_policies",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("care_rule", sa.String(length=16), nullable=False),
        sa.Column("session_idle_minutes", sa.Integer(), nullable=False),
        sa.Column("session_absolute_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_tenant_policies_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_policies")),
    )


def downgrade() -> None:
    op.drop_table("tenant_policies")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("may_break_glass")
        batch.drop_column("practitioner_id")
