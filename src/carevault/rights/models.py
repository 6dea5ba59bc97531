"""Tables and value types of rights requests: one tracked case for every kind of request.

No PHI in the clear: ids, kinds, codes and instants. What the requester wrote, who they are,
the written notices and statements are sealed (the requester's details under the tenant's
"rights" sub-key; anything about a patient's record under the patient's own data key, so
shredding the patient shreds it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Boolean, Column, Index, LargeBinary, String, Table, Text

from carevault.database import metadata


class Rulebook(StrEnum):
    HIPAA = "hipaa"  # PHI: the tenant (the covered entity) decides; CareVault runs the case
    CCPA = "ccpa"  # the vendor's own personal information: the vendor decides


class Action(StrEnum):
    """What the requester asks for, before the router names the right."""

    ACCESS = "access"  # a copy (HIPAA) / data portability (CCPA)
    KNOW = "know"  # CCPA: what is collected, why, and with whom it is shared
    AMEND = "amend"  # HIPAA amendment / CCPA correction
    CORRECT = "correct"
    DELETE = "delete"
    ACCOUNTING = "accounting"  # HIPAA accounting of disclosures
    OPT_OUT = "opt-out"  # of the sale or sharing of the vendor's own personal information
    SHINE_THE_LIGHT = "shine-the-light"  # Cal. Civ. Code 1798.83: disclosures for marketing


class Channel(StrEnum):
    PORTAL = "portal"
    API = "api"
    WEB_FORM = "web-form"
    EMAIL = "email"
    MAIL = "mail"
    PHONE = "phone"
    IN_PERSON = "in-person"


class RequesterKind(StrEnum):
    PATIENT = "patient"
    REPRESENTATIVE = "representative"
    AUTHORIZED_AGENT = "authorized-agent"  # CCPA: acting with the consumer's signed permission
    ACCOUNT_HOLDER = "account-holder"  # a signed-in user asking about their own account data
    PERSON = "person"  # not signed in (CCPA: verified by matching data points)


class Verification(StrEnum):
    SIGNED_IN = "signed-in"
    SIGNED_IN_MFA = "signed-in+mfa"
    REPRESENTATION = "verified-representation"  # recorded and verified by the practice
    DATA_POINTS_2 = "data-points:2"  # CCPA: reasonable degree of certainty
    DATA_POINTS_3_DECLARATION = "data-points:3+declaration"  # CCPA: reasonably high degree
    EMAIL_CONFIRMED = "email-confirmed"  # no account: the person proved they read the address


class Status(StrEnum):
    OPEN = "open"  # received and verified, awaiting a decision
    ACCEPTED = "accepted"  # decided in the requester's favour, awaiting fulfilment
    FULFILLED = "fulfilled"  # closed: the copy, amendment, accounting … was provided
    DENIED = "denied"  # closed: the written denial was sent


OPEN_STATUSES = (Status.OPEN.value, Status.ACCEPTED.value)


class Decision(StrEnum):
    ACCEPT = "accept"
    DENY = "deny"


class DenialBasis(StrEnum):
    """45 CFR 164.526(a)(2) (amendment) and 164.524(a)(2)-(3) (access); CCPA exceptions."""

    NOT_CREATED_HERE = "not-created-by-the-practice"
    NOT_DESIGNATED_RECORD_SET = "not-part-of-the-designated-record-set"
    NOT_AVAILABLE_FOR_INSPECTION = "not-available-for-inspection"
    ACCURATE_AND_COMPLETE = "accurate-and-complete"
    PSYCHOTHERAPY_NOTES = "psychotherapy-notes"
    LEGAL_PROCEEDING = "compiled-for-a-legal-proceeding"
    ENDANGERMENT = "reasonably-likely-to-endanger"
    LEGAL_OBLIGATION = "retention-required-by-law"  # CCPA delete exceptions
    OTHER = "other"


class NoticeKind(StrEnum):
    RECEIVED = "received"
    EXTENDED = "extended"
    DECIDED = "decided"
    DENIED = "denied"
    FULFILLED = "fulfilled"
    AMENDMENT_TO_RECIPIENT = "amendment-to-recipient"  # a prior recipient of the old version


class StatementKind(StrEnum):
    DISAGREEMENT = "disagreement"  # the individual's statement of disagreement (164.526(d)(1))
    REBUTTAL = "rebuttal"  # the practice's rebuttal (164.526(d)(3))


rights_requests = Table(
    "rights_requests",
    metadata,
    Column("tenant_id", String(36), primary_key=True),  # the deciding tenant, or "_vendor"
    Column("request_id", String(36), primary_key=True),
    Column(
        "right_name", String(48), nullable=False
    ),  # the policy's right: hipaa-access, ccpa-know …
    Column("rulebook", String(8), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("requester_kind", String(24), nullable=False),
    Column("requester_user_id", String(36), nullable=True),
    Column("subject_tenant_id", String(36), nullable=True),  # CCPA: whose account data
    Column("subject_user_id", String(36), nullable=True),
    Column("patient_id", String(64), nullable=True),  # HIPAA: whose record
    Column("verification", String(32), nullable=False),
    Column("details_sealed", LargeBinary, nullable=False),
    Column("received_at", String(32), nullable=False),
    Column("due_at", String(32), nullable=False),
    Column("extended_at", String(32), nullable=True),
    Column("status", String(16), nullable=False),
    Column("decided_at", String(32), nullable=True),
    Column("decided_by", String(128), nullable=True),
    Column("denial_basis", String(48), nullable=True),
    Column("fulfilled_at", String(32), nullable=True),
    Column("fulfilled_by", String(128), nullable=True),
    Column("fulfilment", Text, nullable=True),  # JSON: what was produced (ids and forms only)
    Column("attach_to_disclosures", Boolean, nullable=False, default=False),
    # A requester with no account (or whose account a deletion erases): the address they
    # confirmed, sealed under the chain's rights key, and its keyed hash (the 12-month limits).
    # Kept with the request's own record, which the law requires (Cal. Code Regs. 11, 7101).
    Column("requester_address_sealed", LargeBinary, nullable=True),
    Column("requester_address_hash", String(64), nullable=True),
    # the officer's queue: open cases by due date; the CCPA limit: one subject's requests
    Index("ix_rights_requests_queue", "tenant_id", "status", "due_at"),
    Index("ix_rights_requests_subject", "tenant_id", "subject_tenant_id", "subject_user_id"),
    Index("ix_rights_requests_patient", "tenant_id", "patient_id"),
    Index("ix_rights_requests_address", "tenant_id", "requester_address_hash"),
)

rights_email_checks = Table(
    "rights_email_checks",
    metadata,
    # "Is this address yours?": a token sent to the address, given back with the request.
    # The address is sealed, the token kept as a keyed hash; a check is used once.
    Column("tenant_id", String(36), primary_key=True),
    Column("check_id", String(36), primary_key=True),
    Column("address_hash", String(64), nullable=False),
    Column("address_sealed", LargeBinary, nullable=False),
    Column("token_hash", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=False),
    Column("used_at", String(32), nullable=True),
    Column("request_id", String(36), nullable=True),  # the request it verified
    Index("ix_rights_email_checks_token", "tenant_id", "token_hash", unique=True),
)

rights_provider_directions = Table(
    "rights_provider_directions",
    metadata,
    # A verified deletion's direction to one service provider the policy names (Cal. Civ.
    # Code 1798.105(c)): who, when, which categories. An outbox: an adapter for that provider
    # takes the pending ones, sends them, and marks them sent (and confirmed when answered).
    Column("tenant_id", String(36), primary_key=True),
    Column("direction_id", String(36), primary_key=True),
    Column("request_id", String(36), nullable=False),
    Column("recipient", String(64), nullable=False),  # the policy's recipient key
    Column("categories", Text, nullable=False),  # JSON list of the policy's categories
    Column("subject_ref", String(80), nullable=True),  # tenant/user ids, or "address"
    Column("directed_at", String(32), nullable=False),
    Column("state", String(16), nullable=False),  # pending | sent | confirmed
    Column("sent_at", String(32), nullable=True),
    Column("confirmed_at", String(32), nullable=True),
    Index("ix_rights_provider_directions_request", "tenant_id", "request_id"),
    Index("ix_rights_provider_directions_state", "tenant_id", "state", "directed_at"),
)

rights_notices = Table(
    "rights_notices",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("notice_id", String(36), primary_key=True),
    Column("request_id", String(36), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("sent_at", String(32), nullable=False),
    Column("message_id", String(36), nullable=True),  # the outbox row that tells of it
    Column("recipient_ref", String(160), nullable=True),  # a prior recipient (Organization/…)
    Column("body_sealed", LargeBinary, nullable=False),  # the written notice
    Index("ix_rights_notices_request", "tenant_id", "request_id", "sent_at"),
)

rights_copies = Table(
    "rights_copies",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("request_id", String(36), primary_key=True),
    Column("form", String(16), primary_key=True),  # bundle | pdf | json
    Column("media_type", String(64), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("body_sealed", LargeBinary, nullable=False),
)

rights_statements = Table(
    "rights_statements",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("statement_id", String(36), primary_key=True),
    Column("request_id", String(36), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("resource_refs", Text, nullable=False),  # JSON list of Type/id
    Column("filed_at", String(32), nullable=False),
    Column("filed_by", String(128), nullable=False),
    Column("body_sealed", LargeBinary, nullable=False),
    Index("ix_rights_statements_patient", "tenant_id", "patient_id"),
)


@dataclass(frozen=True)
class Route:
    """Which rulebook a request follows, and who decides it: told to the requester."""

    rulebook: Rulebook
    right: str
    decides: str
    runs: str
    explanation: str


@dataclass(frozen=True)
class QueueItem:
    request_id: str
    right: str
    rulebook: str
    status: str
    received_at: str
    due_at: str
    extended: bool
    late: bool
    days_left: int


@dataclass(frozen=True)
class NoticeView:
    kind: str
    sent_at: str
    text: str | None  # None when the key that sealed it was destroyed
    recipient_ref: str | None = None


@dataclass(frozen=True)
class RequestView:
    request_id: str
    right: str
    rulebook: str
    decides: str
    status: str
    channel: str
    requester_kind: str
    verification: str
    received_at: str
    due_at: str
    extended_at: str | None
    decided_at: str | None
    denial_basis: str | None
    fulfilled_at: str | None
    fulfilment: dict[str, object] | None
    late: bool
    notices: list[NoticeView] = field(default_factory=list)
    copies: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Attachment:
    """What travels with a future disclosure of amended-and-disputed information."""

    request_id: str
    kind: str  # request-and-denial | disagreement | rebuttal
    resource_refs: tuple[str, ...]
    filed_at: str
    text: str
