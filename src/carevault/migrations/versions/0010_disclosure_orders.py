"""disclosure path: business associate agreements, legal orders, held notices, signed
authorizations

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _tenant_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["tenant_id"], ["tenants.tenant_id"], name=op.f(f"fk_{table}_tenant_id_tenants")
    )


def _s(name: str, length: int, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "business_associate_agreements",
        _s("tenant_id", 36), _s("baa_id", 36), _s("recipient_ref", 100),
        _s("effective_on", 10), _s("ends_on", 10, True), _s("document_sha256", 64),
        _s("recorded_by", 128), _s("recorded_at", 32),
        _tenant_fk("business_associate_agreements"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "baa_id", name=op.f("pk_business_associate_agreements")
        ),
    )  # fmt: skip
    op.create_index(
        "ix_baa_recipient", "business_associate_agreements", ["tenant_id", "recipient_ref"]
    )
    op.create_table(
        "legal_orders",
        _s("tenant_id", 36), _s("order_id", 36), _s("kind", 24), _s("patient_id", 64, True),
        _s("recipient_ref", 100, True),
        sa.Column("resource_types", sa.Text(), nullable=False),
        sa.Column("resource_refs", sa.Text(), nullable=False),
        _s("date_from", 10, True), _s("date_to", 10, True), _s("expires_on", 10, True),
        _s("gag", 16), _s("gag_until", 32, True), _s("gag_lifted_at", 32, True),
        _s("gag_lifted_by", 128, True),
        sa.Column("assurances", sa.Text(), nullable=False),
        _s("document_sha256", 64),
        sa.Column("request_copy_sealed", sa.LargeBinary(), nullable=True),
        _s("recorded_by", 128), _s("recorded_at", 32),
        _tenant_fk("legal_orders"),
        sa.PrimaryKeyConstraint("tenant_id", "order_id", name=op.f("pk_legal_orders")),
    )  # fmt: skip
    op.create_index("ix_legal_orders_patient", "legal_orders", ["tenant_id", "patient_id"])
    op.create_table(
        "held_notices",
        _s("tenant_id", 36), _s("notice_id", 36), _s("disclosure_id", 36), _s("order_id", 36),
        _s("patient_id", 64), _s("held_at", 32), _s("release_at", 32, True),
        _s("released_at", 32, True),
        _tenant_fk("held_notices"),
        sa.PrimaryKeyConstraint("tenant_id", "notice_id", name=op.f("pk_held_notices")),
    )  # fmt: skip
    op.create_index(
        "ix_held_notices_due", "held_notices", ["tenant_id", "released_at", "release_at"]
    )
    op.create_index("ix_held_notices_order", "held_notices", ["tenant_id", "order_id"])
    op.create_table(
        "authorization_documents",
        _s("tenant_id", 36), _s("consent_id", 64), _s("document_id", 36), _s("patient_id", 64),
        _s("consent_version", 16), _s("signed_at", 32), _s("signed_by", 128),
        _s("authority", 32), _s("representation_id", 36, True), _s("terms_sha256", 64),
        _s("document_sha256", 64),
        sa.Column("document_sealed", sa.LargeBinary(), nullable=False),
        _s("revoked_at", 32, True), _s("revoked_by", 128, True),
        _tenant_fk("authorization_documents"),
        sa.PrimaryKeyConstraint(
            "tenant_id", "consent_id", name=op.f("pk_authorization_documents")
        ),
    )  # fmt: skip
    op.create_index(
        "ix_authorization_documents_patient",
        "authorization_documents",
        ["tenant_id", "patient_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_authorization_documents_patient", table_name="authorization_documents")
    op.drop_table("authorization_documents")
    op.drop_index("ix_held_notices_order", table_name="held_notices")
    op.drop_index("ix_held_notices_due", table_name="held_notices")
    op.drop_table("held_notices")
    op.drop_index("ix_legal_orders_patient", table_name="legal_orders")
    op.drop_table("legal_orders")
    op.drop_index("ix_baa_recipient", table_name="business_associate_agreements")
    op.drop_table("business_associate_agreements")
