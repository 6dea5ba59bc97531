"""care relationships, representatives, break-glass grants

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "representations",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("representation_id", sa.String(length=36), nullable=False),
        sa.Column("representative_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("document_ref", sa.String(length=64), nullable=True),
        sa.Column("document_digest", sa.String(length=64), nullable=True),
        sa.Column("expires_at", sa.String(length=32), nullable=True),
        sa.Column("reach_ends_at", sa.String(length=32), nullable=True),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("recorded_at", sa.String(length=32), nullable=False),
        sa.Column("verified_by", sa.String(length=128), nullable=True),
        sa.Column("verified_at", sa.String(length=32), nullable=True),
        sa.Column("verification_method", sa.String(length=32), nullable=True),
        sa.Column("revoked_by", sa.String(length=128), nullable=True),
        sa.Column("revoked_at", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "representative_id"],
            ["users.tenant_id", "users.user_id"],
            name=op.f("fk_representations_tenant_id_users"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "representation_id", name=op.f("pk_representations")),
    )
    op.create_index(
        "ix_representations_representative",
        "representations",
        ["tenant_id", "representative_id"],
    )
    op.create_index("ix_representations_patient", "representations", ["tenant_id", "patient_id"])
    op.create_table(
        "break_glass_grants",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("grant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("reason_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("opened_at", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.String(length=32), nullable=False),
        sa.Column("reviewed_by", sa.String(length=128), nullable=True),
        sa.Column("reviewed_at", sa.String(length=32), nullable=True),
        sa.Column("review_note_sealed", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.user_id"],
            name=op.f("fk_break_glass_grants_tenant_id_users"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "grant_id", name=op.f("pk_break_glass_grants")),
    )
    op.create_index(
        "ix_break_glass_grants_user", "break_glass_grants", ["tenant_id", "user_id", "expires_at"]
    )
    op.create_index(
        "ix_break_glass_grants_review",
        "break_glass_grants",
        ["tenant_id", "reviewed_at", "opened_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_break_glass_grants_review", table_name="break_glass_grants")
    op.drop_index("ix_break_glass_grants_user", table_name="break_glass_grants")
    op.drop_table("break_glass_grants")
    op.drop_index("ix_representations_patient", table_name="representations")
    op.drop_index("ix_representations_representative", table_name="representations")
    op.drop_table("representations")
