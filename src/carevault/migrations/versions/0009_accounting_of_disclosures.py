"""accounting of disclosures: the disclosure ledger and suspensions of the accounting

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.tenant_id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def upgrade() -> None:
    op.create_table(
        "disclosures",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("disclosure_id", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("disclosed_at", sa.String(length=32), nullable=False),
        sa.Column("basis", sa.String(length=32), nullable=False),
        sa.Column("recipient_ref", sa.String(length=160), nullable=False),
        sa.Column("authorization_ref", sa.String(length=160), nullable=True),
        sa.Column("order_id", sa.String(length=64), nullable=True),
        sa.Column("actor_user_id", sa.String(length=128), nullable=False),
        sa.Column("details_sealed", sa.LargeBinary(), nullable=False),
        _tenant_fk("disclosures"),
        sa.PrimaryKeyConstraint("tenant_id", "disclosure_id", name=op.f("pk_disclosures")),
    )
    op.create_index(
        "ix_disclosures_patient", "disclosures", ["tenant_id", "patient_id", "disclosed_at"]
    )
    op.create_table(
        "accounting_suspensions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("suspension_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("agency_ref", sa.String(length=160), nullable=True),
        sa.Column("statement_form", sa.String(length=8), nullable=False),
        sa.Column("statement_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("filed_at", sa.String(length=32), nullable=False),
        sa.Column("filed_by", sa.String(length=128), nullable=False),
        sa.Column("ends_at", sa.String(length=32), nullable=False),
        sa.Column("ended_at", sa.String(length=32), nullable=True),
        sa.Column("ended_by", sa.String(length=128), nullable=True),
        _tenant_fk("accounting_suspensions"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "suspension_id", name=op.f("pk_accounting_suspensions")
        ),
    )
    op.create_index(
        "ix_accounting_suspensions_live", "accounting_suspensions", ["tenant_id", "ends_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_accounting_suspensions_live", table_name="accounting_suspensions")
    op.drop_table("accounting_suspensions")
    op.drop_index("ix_disclosures_patient", table_name="disclosures")
    op.drop_table("disclosures")
