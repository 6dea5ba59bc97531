"""rights: requesters with no account (sealed address recipients, email checks), deletion
directions to service providers; the outbox loses its tenants foreign key (vendor messages)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 21:30:00
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_OUTBOX_FK = "fk_notification_outbox_tenant_id_tenants"


def _around_deliveries(change: Callable[[], None]) -> None:
    """SQLite rebuilds the outbox to change a constraint; its delivery rows (children, with
    foreign keys on) are set aside and put back so that the rebuild orphans none."""
    if op.get_bind().dialect.name != "sqlite":
        change()
        return
    op.execute("CREATE TEMP TABLE _kept_deliveries AS SELECT * FROM notification_deliveries")
    op.execute("DELETE FROM notification_deliveries")
    change()
    op.execute("INSERT INTO notification_deliveries SELECT * FROM _kept_deliveries")
    op.execute("DROP TABLE _kept_deliveries")


def upgrade() -> None:
    def drop_fk() -> None:
        with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
            batch_op.drop_constraint(_OUTBOX_FK, type_="foreignkey")

    _around_deliveries(drop_fk)
    op.create_table(
        "notification_addresses",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("address_id", sa.String(length=36), nullable=False),
        sa.Column("address_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", "address_id", name=op.f("pk_notification_addresses")),
    )
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("requester_address_sealed", sa.LargeBinary(), nullable=True))
        batch_op.add_column(
            sa.Column("requester_address_hash", sa.String(length=64), nullable=True)
        )
        batch_op.create_index(
            "ix_rights_requests_address", ["tenant_id", "requester_address_hash"], unique=False
        )
    op.create_table(
        "rights_email_checks",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("check_id", sa.String(length=36), nullable=False),
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("address_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("expires_at", sa.String(length=32), nullable=False),
        sa.Column("used_at", sa.String(length=32), nullable=True),
        sa.Column("request_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("tenant_id", "check_id", name=op.f("pk_rights_email_checks")),
    )
    op.create_index(
        "ix_rights_email_checks_token",
        "rights_email_checks",
        ["tenant_id", "token_hash"],
        unique=True,
    )
    op.create_table(
        "rights_provider_directions",
        sa.Column("tenant_id", sa.String(length=36), nullable=False),
        sa.Column("direction_id", sa.String(length=36), nullable=False),
        sa.Column("request_id", sa.String(length=36), nullable=False),
        sa.Column("recipient", sa.String(length=64), nullable=False),
        sa.Column("categories", sa.Text(), nullable=False),
        sa.Column("subject_ref", sa.String(length=80), nullable=True),
        sa.Column("directed_at", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("sent_at", sa.String(length=32), nullable=True),
        sa.Column("confirmed_at", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint(
            "tenant_id", "direction_id", name=op.f("pk_rights_provider_directions")
        ),
    )
    op.create_index(
        "ix_rights_provider_directions_request",
        "rights_provider_directions",
        ["tenant_id", "request_id"],
    )
    op.create_index(
        "ix_rights_provider_directions_state",
        "rights_provider_directions",
        ["tenant_id", "state", "directed_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_rights_provider_directions_state", "rights_provider_directions")
    op.drop_index("ix_rights_provider_directions_request", "rights_provider_directions")
    op.drop_table("rights_provider_directions")
    op.drop_index("ix_rights_email_checks_token", "rights_email_checks")
    op.drop_table("rights_email_checks")
    with op.batch_alter_table("rights_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_rights_requests_address")
        batch_op.drop_column("requester_address_hash")
        batch_op.drop_column("requester_address_sealed")
    op.drop_table("notification_addresses")
    # The vendor's own messages have no tenant row to refer to: they go before the key returns.
    orphan = "tenant_id NOT IN (SELECT tenant_id FROM tenants)"
    op.execute(f"DELETE FROM notification_deliveries WHERE {orphan}")  # noqa: S608
    op.execute(f"DELETE FROM notification_outbox WHERE {orphan}")  # noqa: S608

    def add_fk() -> None:
        with op.batch_alter_table("notification_outbox", schema=None) as batch_op:
            batch_op.create_foreign_key(_OUTBOX_FK, "tenants", ["tenant_id"], ["tenant_id"])

    _around_deliveries(add_fk)
