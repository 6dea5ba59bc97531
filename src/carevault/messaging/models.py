"""The outbox: one row per message, written in the same transaction as the event it tells of.

A row names its recipient (a user, or every active user holding a role) and a template
with a few non-PHI parameters; the address is looked up, and the text rendered, only
when the message is delivered.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Column, ForeignKeyConstraint, Index, Integer, String, Table, Text

from carevault.database import metadata


class RecipientKind(StrEnum):
    USER = "user"
    ROLE = "role"


class MessageState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    """Given up after the last retry; the delivery records say why."""


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
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    Index("ix_notification_outbox_due", "state", "next_attempt_at"),
)
