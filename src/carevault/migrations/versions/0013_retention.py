"""retention: legal holds, deletion certificates, soft-delete flags, account inactivations,
communication preferences and the marketing suppression list

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "hidden_resources",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("hidden_at", sa.String(length=32), nullable=False),
        sa.Column("hidden_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "resource_type", "resource_id", name=op.f("pk_hidden_resources")
        ),
    )
    op.create_table(
        "legal_holds",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("hold_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("reason_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("filed_by", sa.String(length=128), nullable=False),
        sa.Column("filed_at", sa.String(length=32), nullable=False),
        sa.Column("lifted_by", sa.String(length=128), nullable=True),
        sa.Column("lifted_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "hold_id", name=op.f("pk_legal_holds")),
    )
    op.create_index("ix_legal_holds_patient", "legal_holds", ["tenant_id", "patient_id"])
    op.create_table(
        "deletion_certificates",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("certificate_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("issued_at", sa.String(length=32), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint(
            "tenant_id", "certificate_id", name=op.f("pk_deletion_certificates")
        ),
    )
    op.create_table(
        "account_inactivations",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("inactivated_at", sa.String(length=32), nullable=False),
        sa.Column("inactivated_by", sa.String(length=128), nullable=False),
        sa.Column("keep_until", sa.String(length=32), nullable=True),
        sa.Column("erased", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_account_inactivations")),
    )
    op.create_table(
        "communication_preferences",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("marketing_opt_out", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_communication_preferences")),
    )
    op.create_table(
        "suppression_list",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "address_hash", name=op.f("pk_suppression_list")),
    )


def downgrade() -> None:
    op.drop_table("suppression_list")
    op.drop_table("communication_preferences")
    op.drop_table("account_inactivations")
    op.drop_table("deletion_certificates")
    op.drop_index("ix_legal_holds_patient", table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_table("hidden_resources")
