"""rights requests: tracked cases, written notices, copies, statements of disagreement

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rights_requests",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("right_name", sa.String(length=48), nullable=False),
        sa.Column("rulebook", sa.String(length=8), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("requester_kind", sa.String(length=24), nullable=False),
        sa.Column("requester_user_id", sa.String(length=36), nullable=True),
        sa.Column("subject_tenant_id", sa.String(length=36), nullable=True),
        sa.Column("subject_user_id", sa.String(length=36), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("verification", sa.String(length=32), nullable=False),
        sa.Column("details_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.String(length=32), nullable=False),
        sa.Column("due_at", sa.String(length=32), nullable=False),
        sa.Column("extended_at", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.String(length=32), nullable=True),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("denial_basis", sa.String(length=48), nullable=True),
        sa.Column("fulfilled_at", sa.String(length=32), nullable=True),
        sa.Column("fulfilled_by", sa.String(length=128), nullable=True),
        sa.Column("fulfilment", sa.Text(), nullable=True),
        sa.Column("attach_to_disclosures", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "request_id", name=op.f("pk_rights_requests")),
    )
    op.create_index(
        "ix_rights_requests_queue", "rights_requests", ["tenant_id", "status", "due_at"]
    )
    op.create_index(
        "ix_rights_requests_subject",
        "rights_requests",
        ["tenant_id", "subject_tenant_id", "subject_user_id"],
    )
    op.create_index("ix_rights_requests_patient", "rights_requests", ["tenant_id", "patient_id"])
    op.create_table(
        "rights_notices",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("notice_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("sent_at", sa.String(length=32), nullable=False),
        sa.Column("message_id", sa.String(length=36), nullable=True),
        sa.Column("recipient_ref", sa.String(length=160), nullable=True),
        sa.Column("body_sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "notice_id", name=op.f("pk_rights_notices")),
    )
    op.create_index(
        "ix_rights_notices_request", "rights_notices", ["tenant_id", "request_id", "sent_at"]
    )
    op.create_table(
        "rights_copies",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("media_type", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("body_sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "request_id", "form", name=op.f("pk_rights_copies")),
    )
    op.create_table(
        "rights_statements",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("statement_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("resource_refs", sa.Text(), nullable=False),
        sa.Column("filed_at", sa.String(length=32), nullable=False),
        sa.Column("filed_by", sa.String(length=128), nullable=False),
        sa.Column("body_sealed", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "statement_id", name=op.f("pk_rights_statements")),
    )
    op.create_index(
        "ix_rights_statements_patient", "rights_statements", ["tenant_id", "patient_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_rights_statements_patient", table_name="rights_statements")
    op.drop_table("rights_statements")
    op.drop_table("rights_copies")
    op.drop_index("ix_rights_notices_request", table_name="rights_notices")
    op.drop_table("rights_notices")
    op.drop_index("ix_rights_requests_patient", table_name="rights_requests")
    op.drop_index("ix_rights_requests_subject", table_name="rights_requests")
    op.drop_index("ix_rights_requests_queue", table_name="rights_requests")
    op.drop_table("rights_requests")
