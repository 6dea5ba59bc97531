"""Tables for reach beyond a patient's own record: representations and break-glass grants.

No PHI in the clear: ids, kinds, instants. A break-glass reason and a review note may
mention clinical facts, so they are sealed under the tenant's key.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Column, ForeignKeyConstraint, Index, LargeBinary, String, Table

from carevault.database import metadata


class RepresentationKind(StrEnum):
    PARENT = "parent"
    GUARDIAN = "guardian"
    AUTHORIZED_AGENT = "authorized-agent"
    PERSONAL_REPRESENTATIVE = "personal-representative"


MINOR_KINDS = frozenset({RepresentationKind.PARENT, RepresentationKind.GUARDIAN})
"""Reach ends on the minor's 18th birthday."""
DOCUMENTED_KINDS = frozenset(
    {RepresentationKind.AUTHORIZED_AGENT, RepresentationKind.PERSONAL_REPRESENTATIVE}
)
"""Must carry a supporting document and an expiry."""


representations = Table(
    "representations",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("representation_id", String(36), primary_key=True),
    Column("representative_id", String(36), nullable=False),  # the representative's user id
    Column("patient_id", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("document_ref", String(64), nullable=True),  # a DocumentReference id
    Column("document_digest", String(64), nullable=True),  # sha-256 of a sealed document
    Column("expires_at", String(32), nullable=True),
    Column("reach_ends_at", String(32), nullable=True),  # a minor's 18th birthday (UTC)
    Column("recorded_by", String(128), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    Column("verified_by", String(128), nullable=True),
    Column("verified_at", String(32), nullable=True),
    Column("verification_method", String(32), nullable=True),
    Column("revoked_by", String(128), nullable=True),
    Column("revoked_at", String(32), nullable=True),
    ForeignKeyConstraint(["tenant_id", "representative_id"], ["users.tenant_id", "users.user_id"]),
    Index("ix_representations_representative", "tenant_id", "representative_id"),
    Index("ix_representations_patient", "tenant_id", "patient_id"),
)

break_glass_grants = Table(
    "break_glass_grants",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("grant_id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("reason_sealed", LargeBinary, nullable=False),
    Column("opened_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("reviewed_by", String(128), nullable=True),
    Column("reviewed_at", String(32), nullable=True),
    Column("review_note_sealed", LargeBinary, nullable=True),
    ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.user_id"]),
    # the gate's lookup: this user's live grants
    Index("ix_break_glass_grants_user", "tenant_id", "user_id", "expires_at"),
    # the review report: grants nobody has reviewed yet
    Index("ix_break_glass_grants_review", "tenant_id", "reviewed_at", "opened_at"),
)
