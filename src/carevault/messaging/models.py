"""The outbox: one row per message, written in the same transaction as the event it tells of.

A row names its recipient (a user, or every active user holding a role) and a template
with a few non-PHI parameters; the address is looked up, and the text rendered, only
when the message is delivered.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    Column,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from carevault.database import metadata


class RecipientKind(StrEnum):
    USER = "user"
    ROLE = "role"
    ADDRESS = "address"
    """A sealed address (notification_addresses): someone with no account, e.g. a person who
    wrote in with a privacy request; opened only at send time."""


class MessageState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    """Given up after the last retry; the delivery records say why."""


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    TEMPORARY_FAILURE = "temporary-failure"
    """A 4xx answer or no connection: tried again later (backoff by the injected clock)."""
    PERMANENT_FAILURE = "permanent-failure"
    """A 5xx answer, no address to send to, or refused by the PHI guard: not tried again."""


notification_outbox = Table(
    "notification_outbox",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("message_id", String(36), primary_key=True),
    Column("created_at", String(32), nullable=False),
    Column("recipient_kind", String(8), nullable=False),
    Column("recipient", String(128), nullable=False),
    Column("template", String(64), nullable=False),
    Column("params", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(32), nullable=False),
    # No foreign key to tenants: the vendor's own chain ("_vendor") writes to people with no
    # account (migration 0014 drops the one 0005 made).
    Index("ix_notification_outbox_due", "state", "next_attempt_at"),
)

notification_addresses = Table(
    "notification_addresses",
    metadata,
    # An address to write to that belongs to no account: sealed under the chain's
    # "message-addresses" sub-key, opened only by recipients.resolve at send time.
    Column("tenant_id", String(36), primary_key=True),
    Column("address_id", String(36), primary_key=True),
    Column("address_sealed", LargeBinary, nullable=False),
    Column("created_at", String(32), nullable=False),
)

notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("delivery_id", String(36), primary_key=True),
    Column("message_id", String(36), nullable=False),
    # The user it went to (None when there was nobody to send to); never the address.
    Column("recipient_user_id", String(36), nullable=True),
    Column("attempt", Integer, nullable=False),
    Column("at", String(32), nullable=False),
    Column("outcome", String(24), nullable=False),
    Column("smtp_code", Integer, nullable=True),
    # A short reason code (e.g. "smtp", "connection", "inactive", "phi-guard"); no free text.
    Column("reason", String(32), nullable=True),
    ForeignKeyConstraint(
        ["tenant_id", "message_id"],
        ["notification_outbox.tenant_id", "notification_outbox.message_id"],
    ),
    Index("ix_notification_deliveries_message", "tenant_id", "message_id"),
)
