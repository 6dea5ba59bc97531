"""the notification outbox and its delivery records

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_outbox",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("recipient_kind", sa.String(length=8), nullable=False),
        sa.Column("recipient", sa.String(length=128), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.tenant_id"],
            name=op.f("fk_notification_outbox_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "message_id", name=op.f("pk_notification_outbox")),
    )
    op.create_index(
        "ix_notification_outbox_due", "notification_outbox", ["state", "next_attempt_at"]
    )
    op.create_table(
        "notification_deliveries",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("delivery_id", sa.String(length=36), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=False),
        sa.Column("recipient_user_id", sa.String(length=36), nullable=True),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("smtp_code", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "message_id"],
            ["notification_outbox.tenant_id", "notification_outbox.message_id"],
            name=op.f("fk_notification_deliveries_tenant_id_notification_outbox"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "delivery_id", name=op.f("pk_notification_deliveries")
        ),
    )
    op.create_index(
        "ix_notification_deliveries_message",
        "notification_deliveries",
        ["tenant_id", "message_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_notification_deliveries_message", table_name="notification_deliveries")
    op.drop_table("notification_deliveries")
    op.drop_index("ix_notification_outbox_due", table_name="notification_outbox")
    op.drop_table("notification_outbox")
