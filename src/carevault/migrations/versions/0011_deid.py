"""de-identification: research projects, sealed pseudonym tables, releases

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deid_projects",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("sealed_secret", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_deid_projects_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "project_id", name=op.f("pk_deid_projects")),
    )
    op.create_index("ix_deid_projects_name", "deid_projects", ["tenant_id", "name"], unique=True)
    op.create_table(
        "deid_pseudonyms",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=36), nullable=False),
        sa.Column("patient_hash", sa.String(length=64), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "project_id"],
            ["deid_projects.tenant_id", "deid_projects.project_id"],
            name=op.f("fk_deid_pseudonyms_tenant_id_deid_projects"),
        ),
        sa.PrimaryKeyConstraint(
            "tenant_id", "project_id", "patient_hash", name=op.f("pk_deid_pseudonyms")
        ),
    )
    op.create_index(
        "ix_deid_pseudonyms_code",
        "deid_pseudonyms",
        ["tenant_id", "project_id", "code_hash"],
        unique=True,
    )
    op.create_table(
        "deid_releases",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("release_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=True),
        sa.Column("profile", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("released_at", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_deid_releases_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "release_id", name=op.f("pk_deid_releases")),
    )
    op.create_index(
        "ix_deid_releases_time", "deid_releases", ["tenant_id", "released_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_deid_releases_time", table_name="deid_releases")
    op.drop_table("deid_releases")
    op.drop_index("ix_deid_pseudonyms_code", table_name="deid_pseudonyms")
    op.drop_table("deid_pseudonyms")
    op.drop_index("ix_deid_projects_name", table_name="deid_projects")
    op.drop_table("deid_projects")
