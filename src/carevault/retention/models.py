"""Retention tables and value types: legal holds, deletion certificates, inactivated accounts.

No PHI here: ids, codes, times and counts. A hold's free-text note is sealed at rest (it may
name a matter or a court); a certificate lists ids and counts, never content.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Boolean, Column, Index, LargeBinary, String, Table, Text

from carevault.database import metadata

legal_holds = Table(
    "legal_holds",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("hold_id", String(36), primary_key=True),
    # None: the whole tenant is on hold.
    Column("patient_id", String(64), nullable=True),
    Column("reason_sealed", LargeBinary, nullable=False),
    Column("filed_by", String(128), nullable=False),
    Column("filed_at", String(32), nullable=False),
    Column("lifted_by", String(128), nullable=True),
    Column("lifted_at", String(32), nullable=True),
    Index("ix_legal_holds_patient", "tenant_id", "patient_id"),
)

deletion_certificates = Table(
    "deletion_certificates",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("certificate_id", String(36), primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("issued_at", String(32), nullable=False),
    Column("document", Text, nullable=False),  # canonical JSON, signed
    Column("signature", String(128), nullable=False),  # Ed25519, hex
)

account_inactivations = Table(
    "account_inactivations",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("user_id", String(36), primary_key=True),
    Column("inactivated_at", String(32), nullable=False),
    Column("inactivated_by", String(128), nullable=False),
    # None: kept until someone asks (the policy sets no period for account data).
    Column("keep_until", String(32), nullable=True),
    Column("erased", Boolean, nullable=False, default=False),
)


class CertificateKind(StrEnum):
    PATIENT = "patient"  # a patient's record, crypto-shredded
    SUBMISSION = "submission"  # a patient's own submission, deleted from their account
    RETENTION_RUN = "retention-run"  # what one run of the retention job deleted
    TENANT = "tenant"  # offboarding: everything of the tenant


@dataclass(frozen=True)
class DeletionRequest:
    """A verified, written request for permanent deletion (rights/ builds these)."""

    written_request: str
    """Where the written request is kept (a rights case id, a document id): not PHI."""
    verified_by: str
    """How the requester's identity was verified (e.g. "id-document", "portal-mfa")."""
    tenant_instruction: bool
    """PHI is the tenant's: deleting it needs the tenant's own instruction."""


@dataclass(frozen=True)
class Item:
    """One line of a certificate: what, of whom, and (for kept data) why."""

    what: str
    resource_type: str | None = None
    resource_id: str | None = None
    patient_id: str | None = None
    count: int | None = None
    why: str | None = None


@dataclass(frozen=True)
class Certificate:
    certificate_id: str
    tenant_id: str
    kind: CertificateKind
    issued_at: str
    destroyed: tuple[Item, ...]
    kept: tuple[Item, ...]
    method: str
    basis: dict[str, str] = field(default_factory=dict)
    signature: str = ""
    public_key: str = ""
