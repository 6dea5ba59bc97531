"""Tables for tenants, users and bearer tokens, and the Actor a request acts as.

Account holders' emails are PHI when the account is a patient's, so they are
stored as a keyed hash (for lookup) and a ciphertext (for display), never in clear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Table,
    Text,
    false,
)

from carevault.database import metadata
from carevault.identity.permissions import ALL_FHIR_PERMISSIONS, Permission, Purpose, Role


class TenantKind(StrEnum):
    PRACTICE = "practice"
    LABORATORY = "laboratory"
    IMAGING_CENTRE = "imaging-centre"


tenants = Table(
    "tenants",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("created_at", String(32), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("user_id", String(36), primary_key=True),
    Column("email_hash", String(64), nullable=False),
    Column("email_sealed", LargeBinary, nullable=False),
    Column("role", String(32), nullable=False),
    Column("password_hash", Text, nullable=True),
    # The Patient resource a patient user is; a representative's links come with the access issue.
    Column("patient_id", String(64), nullable=True),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", String(32), nullable=False),
    Column("mfa_sealed", LargeBinary, nullable=True),
    # The Practitioner resource a workforce user is (care-team rules, snooping checks).
    Column("practitioner_id", String(64), nullable=True),
    # Named in advance as allowed to break the glass (emergency access).
    Column("may_break_glass", Boolean, nullable=False, default=False, server_default=false()),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    Index("ix_users_email", "tenant_id", "email_hash", unique=True),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("token_id", String(36), primary_key=True),
    Column("user_id", String(36), nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("purpose", String(16), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("revoked_at", String(32), nullable=True),
    ForeignKeyConstraint(["tenant_id", "user_id"], ["users.tenant_id", "users.user_id"]),
    Index("ix_api_tokens_hash", "tenant_id", "token_hash", unique=True),
)


@dataclass(frozen=True)
class WorkforceFacts:
    """What reach needs about a workforce user, read with their token or session in the same
    query, so the gate's read path asks the database nothing more under the tenant-wide rule."""

    practitioner_id: str | None
    may_break_glass: bool
    care_rule: str | None
    """The tenant's care rule (`tenant_policy.CareRule`); None: the default."""


@dataclass(frozen=True)
class Actor:
    """Who is acting, for which tenant, why, and with what permissions (role ∩ token scope)."""

    tenant_id: str
    user_id: str
    role: Role | None  # None for a named system actor
    purpose: Purpose
    permissions: frozenset[str]
    patient_ids: frozenset[str] = field(default_factory=frozenset)
    """For compartment roles: the patients whose records the actor may reach."""
    token_id: str | None = None
    system_reason: str | None = None
    """For system actors (jobs, imports, the demo seeder): the stated reason."""
    workforce: WorkforceFacts | None = None
    """Read at authentication; None when the actor was built otherwise (reach reads it)."""

    @property
    def kind(self) -> str:
        return "system" if self.role is None else self.role.value


def system_actor(tenant_id: str, reason: str, purpose: Purpose = Purpose.HOPERAT) -> Actor:
    """A named system actor: it may do everything in one tenant, and is audited like anyone."""
    return Actor(
        tenant_id=tenant_id,
        user_id=f"system:{reason}",
        role=None,
        purpose=purpose,
        permissions=frozenset(Permission) | ALL_FHIR_PERMISSIONS,
        system_reason=reason,
    )
