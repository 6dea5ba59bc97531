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
    op.create_table(
        "sign_in_throttle",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("email_hash", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.String(length=32), nullable=False),
        sa.Column("next_attempt_at", sa.String(length=32), nullable=True),
        sa.Column("locked_until", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.tenant_id"], name=op.f("fk_sign_in_throttle_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", "email_hash", name=op.f("pk_sign_in_throttle")),
    )
    op.create_table(
        "account_factors",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("totp_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("totp_pending_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("totp_last_step", sa.Integer(), nullable=True),
        sa.Column("phone_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("last_sign_in_at", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.user_id"],
            name=op.f("fk_account_factors_tenant_id_users"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "user_id", name=op.f("pk_account_factors")),
    )
    op.create_table(
        "password_resets",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("reset_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.String(length=32), nullable=False),
        sa.Column("used_at", sa.String(length=32), nullable=True),
        sa.Column("challenge", sa.String(length=128), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.user_id"],
            name=op.f("fk_password_resets_tenant_id_users"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "reset_id", name=op.f("pk_password_resets")),
    )
    op.create_index(
        "ix_password_resets_token", "password_resets", ["tenant_id", "token_hash"], unique=True
    )
    op.create_table(
        "sessions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("last_seen_at", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.String(length=32), nullable=False),
        sa.Column("fresh_until", sa.String(length=32), nullable=True),
        sa.Column("challenge", sa.String(length=128), nullable=True),
        sa.Column("challenge_kind", sa.String(length=16), nullable=True),
        sa.Column("ended_at", sa.String(length=32), nullable=True),
        sa.Column("ended_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.user_id"],
            name=op.f("fk_sessions_tenant_id_users"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "session_id", name=op.f("pk_sessions")),
    )
    op.create_index("ix_sessions_token", "sessions", ["tenant_id", "token_hash"], unique=True)
    op.create_index("ix_sessions_user", "sessions", ["tenant_id", "user_id"], unique=False)
    op.create_table(
        "webauthn_credentials",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("credential_id", sa.String(length=512), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("last_used_at", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id", "user_id"],
            ["users.tenant_id", "users.user_id"],
            name=op.f("fk_webauthn_credentials_tenant_id_users"),
        ),
        sa.PrimaryKeyConstraint("tenant_id", "credential_id", name=op.f("pk_webauthn_credentials")),
    )
    op.create_index(
        "ix_webauthn_credentials_user",
        "webauthn_credentials",
        ["tenant_id", "user_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_webauthn_credentials_user", table_name="webauthn_credentials")
    op.drop_table("webauthn_credentials")
    op.drop_index("ix_sessions_user", table_name="sessions")
    op.drop_index("ix_sessions_token", table_name="sessions")
    op.drop_table("sessions")
    op.drop_index("ix_password_resets_token", table_name="password_resets")
    op.drop_table("password_resets")
    op.drop_table("account_factors")
    op.drop_table("sign_in_throttle")
    op.drop_table("tenant_policies")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("may_break_glass")
        batch.drop_column("practitioner_id")
