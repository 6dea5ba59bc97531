"""Tables of the disclosure path: BAAs, legal orders, held notices, signed authorizations.

No PHI in the clear: ids, kinds, dates and digests. What an order says in words (the copy of
the request, the assurances' text) and the signed authorization text are sealed.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import Column, ForeignKeyConstraint, Index, LargeBinary, String, Table, Text

from carevault.database import metadata


class OrderKind(StrEnum):
    COURT_ORDER = "court-order"
    WARRANT = "warrant"
    SUBPOENA = "subpoena"  # without a court order: 164.512(e)(1)(ii) assurances needed
    ADMINISTRATIVE = "administrative"  # administrative request, 164.512(f)(1)(ii)(C)
    IRB_WAIVER = "irb-waiver"  # research, 164.512(i)(1)(i)
    PRIVACY_BOARD_WAIVER = "privacy-board-waiver"


COMPELLING_KINDS = frozenset({OrderKind.COURT_ORDER, OrderKind.WARRANT, OrderKind.ADMINISTRATIVE})
WAIVER_KINDS = frozenset({OrderKind.IRB_WAIVER, OrderKind.PRIVACY_BOARD_WAIVER})


class Gag(StrEnum):
    NONE = "none"
    UNTIL_DATE = "until-date"
    UNTIL_LIFTED = "until-lifted"


class Assurance(StrEnum):
    """164.512(e)(1)(ii): what the party seeking a subpoenaed record has shown."""

    NOTICE_TO_INDIVIDUAL = "notice-to-individual"  # (A), with (e)(1)(iii)'s statement
    QUALIFIED_PROTECTIVE_ORDER = "qualified-protective-order"  # (B), with (e)(1)(iv)'s


def _tenant_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"])


business_associate_agreements = Table(
    "business_associate_agreements",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("baa_id", String(36), primary_key=True),
    Column("recipient_ref", String(100), nullable=False),  # Organization/{id}
    Column("effective_on", String(10), nullable=False),  # YYYY-MM-DD, inclusive
    Column("ends_on", String(10), nullable=True),  # inclusive; None: until terminated
    Column("document_sha256", String(64), nullable=False),
    Column("recorded_by", String(128), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    _tenant_fk(),
    Index("ix_baa_recipient", "tenant_id", "recipient_ref"),
)

legal_orders = Table(
    "legal_orders",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("order_id", String(36), primary_key=True),
    Column("kind", String(24), nullable=False),
    Column("patient_id", String(64), nullable=True),  # None: any patient (research waivers)
    Column("recipient_ref", String(100), nullable=True),  # who may receive under it
    Column("resource_types", Text, nullable=False),  # JSON list; [] with refs only
    Column("resource_refs", Text, nullable=False),  # JSON list of Type/id
    Column("date_from", String(10), nullable=True),
    Column("date_to", String(10), nullable=True),
    Column("expires_on", String(10), nullable=True),
    Column("gag", String(16), nullable=False),
    Column("gag_until", String(32), nullable=True),
    Column("gag_lifted_at", String(32), nullable=True),
    Column("gag_lifted_by", String(128), nullable=True),
    Column("assurances", Text, nullable=False),  # JSON list of Assurance codes
    Column("document_sha256", String(64), nullable=False),
    Column("request_copy_sealed", LargeBinary, nullable=True),  # the order's words, sealed
    Column("recorded_by", String(128), nullable=False),
    Column("recorded_at", String(32), nullable=False),
    _tenant_fk(),
    Index("ix_legal_orders_patient", "tenant_id", "patient_id"),
)

held_notices = Table(
    "held_notices",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("notice_id", String(36), primary_key=True),
    Column("disclosure_id", String(36), nullable=False),
    Column("order_id", String(36), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("held_at", String(32), nullable=False),
    Column("release_at", String(32), nullable=True),  # None: until the gag is lifted
    Column("released_at", String(32), nullable=True),
    _tenant_fk(),
    Index("ix_held_notices_due", "tenant_id", "released_at", "release_at"),
    Index("ix_held_notices_order", "tenant_id", "order_id"),
)

authorization_documents = Table(
    "authorization_documents",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("consent_id", String(64), primary_key=True),
    Column("document_id", String(36), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("consent_version", String(16), nullable=False),  # the version the signature made
    Column("signed_at", String(32), nullable=False),
    Column("signed_by", String(128), nullable=False),  # the signer's user id
    Column("authority", String(32), nullable=False),  # self, or the representation kind
    Column("representation_id", String(36), nullable=True),
    Column("terms_sha256", String(64), nullable=False),  # of the terms the Consent carries
    Column("document_sha256", String(64), nullable=False),  # of the rendered text
    Column("document_sealed", LargeBinary, nullable=False),  # under the patient's key
    Column("revoked_at", String(32), nullable=True),
    Column("revoked_by", String(128), nullable=True),
    _tenant_fk(),
    Index("ix_authorization_documents_patient", "tenant_id", "patient_id"),
)
