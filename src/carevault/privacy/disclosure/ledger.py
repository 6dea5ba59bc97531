"""The accounting-of-disclosures ledger (45 CFR 164.528(b)): one row per disclosure.

The caller (the disclosure path) writes the entry in the SAME transaction as the disclosure's
audit entry, inside its writer job:

    record_disclosure(conn, entry, vault)   # conn: the writer job's connection

`vault` is the process's `carevault.crypto.vault.Vault` (`GateServices.vault`). The patient id,
basis, instants and references (ids only) stay in the clear for the report's query; the
recipient's name and address, the purpose, the description and the copy of the request may
identify the patient or carry clinical facts, so they are sealed together under the patient's
own data key (as break-glass reasons are): shredding the patient shreds their ledger too.
Bad input raises `Invalid` with a message that names the field, never its value: a basis
that is not a `Basis`, an authorization without `authorization_ref`, neither a purpose nor a
request copy, a recipient that is not a Organization/Practitioner/PractitionerRole/
RelatedPerson/Patient reference, an instant without a time zone.

Suspensions of the patient's right to an accounting (164.528(a)(2)) live beside it, in
`accounting_suspensions` (disclosure/accounting.py files and ends them).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    Column,
    Connection,
    ForeignKeyConstraint,
    Index,
    LargeBinary,
    String,
    Table,
    insert,
    select,
)

from carevault.clock import isoformat
from carevault.crypto.vault import Vault, patient_key_name
from carevault.database import metadata
from carevault.errors import Invalid
from carevault.policy.bases import Basis

RECIPIENT_TYPES = ("Organization", "Practitioner", "PractitionerRole", "RelatedPerson", "Patient")
_REF = re.compile(r"^(?P<type>[A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})$")
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MAX_TEXT = 4000
MAX_DESCRIPTION = 200_000  # a release of many resources may list them all

disclosures = Table(
    "disclosures",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("disclosure_id", String(64), primary_key=True),
    Column("patient_id", String(64), nullable=False),
    Column("disclosed_at", String(32), nullable=False),
    Column("basis", String(32), nullable=False),
    Column("recipient_ref", String(160), nullable=False),  # e.g. Organization/<id>: an id only
    Column("authorization_ref", String(160), nullable=True),  # Consent/<id>
    Column("order_id", String(64), nullable=True),  # a legal order on file
    Column("actor_user_id", String(128), nullable=False),
    Column("details_sealed", LargeBinary, nullable=False),  # name, address, what, why, request
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    # the report: one patient's disclosures in a window, oldest first
    Index("ix_disclosures_patient", "tenant_id", "patient_id", "disclosed_at"),
)

accounting_suspensions = Table(
    "accounting_suspensions",
    metadata,
    Column("tenant_id", String(36), primary_key=True),
    Column("suspension_id", String(36), primary_key=True),
    Column("patient_id", String(64), nullable=True),  # None: every patient of the tenant
    Column("kind", String(32), nullable=False),  # law-enforcement | health-oversight
    Column("agency_ref", String(160), nullable=True),  # only disclosures to this recipient
    Column("statement_form", String(8), nullable=False),  # written | oral (30 days at most)
    Column("statement_sealed", LargeBinary, nullable=False),  # agency name and its statement
    Column("filed_at", String(32), nullable=False),
    Column("filed_by", String(128), nullable=False),
    Column("ends_at", String(32), nullable=False),
    Column("ended_at", String(32), nullable=True),  # lifted early by the privacy officer
    Column("ended_by", String(128), nullable=True),
    ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"]),
    Index("ix_accounting_suspensions_live", "tenant_id", "ends_at"),
)


@dataclass(frozen=True)
class DisclosureEntry:
    """One disclosure, as the accounting needs it (164.528(b)(2))."""

    tenant_id: str
    disclosure_id: str
    patient_id: str
    disclosed_at: str  # ISO 8601 instant with a time zone
    recipient_ref: str  # FHIR reference: Organization/<id>, Practitioner/<id>, RelatedPerson/…
    recipient_name: str
    recipient_address: str
    basis: Basis
    purpose: str  # a brief statement of the purpose …
    description: str  # … and a brief description of what was disclosed
    resource_refs: tuple[str, ...]  # Type/id of every resource released
    authorization_ref: str | None  # Consent/<id> for Basis.AUTHORIZATION
    order_id: str | None  # the legal order on file (required-by-law, subpoena …)
    request_copy: str | None  # a copy of the written request, in place of the purpose
    actor_user_id: str


def _aad(tenant_id: str, disclosure_id: str, patient_id: str) -> bytes:
    return f"{tenant_id}|disclosure|{disclosure_id}|{patient_id}".encode()


def _instant(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{name} must be an ISO 8601 instant")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 instant") from None
    if when.tzinfo is None:
        raise Invalid(f"{name} needs a time zone")
    return isoformat(when)


def _text(value: object, name: str, *, required: bool = True, limit: int = MAX_TEXT) -> str:
    if not isinstance(value, str) or len(value) > limit or (required and not value.strip()):
        raise Invalid(f"{name} must be text of 1 to {limit} characters")
    return value.strip()


def check_reference(value: object, name: str, types: Sequence[str]) -> str:
    match = _REF.match(value) if isinstance(value, str) else None
    if match is None or match["type"] not in types:
        raise Invalid(f"{name} must be a reference to one of: {', '.join(types)}")
    return str(value)


def _checked(entry: DisclosureEntry) -> dict[str, Any]:
    """The row's clear columns, checked; raises Invalid naming the field."""
    for name in ("tenant_id", "disclosure_id", "patient_id", "actor_user_id"):
        value = getattr(entry, name)
        if not isinstance(value, str) or not value or len(value) > 128:
            raise Invalid(f"{name} is required")
    if not _ID.match(entry.patient_id) or not _ID.match(entry.disclosure_id):
        raise Invalid("patient_id and disclosure_id must be FHIR ids")
    if not isinstance(entry.basis, Basis):
        raise Invalid("basis must be a disclosure basis")
    if entry.basis is Basis.AUTHORIZATION and not entry.authorization_ref:
        raise Invalid("a disclosure under an authorization names the authorization")
    if not entry.purpose.strip() and not (entry.request_copy or "").strip():
        raise Invalid("a disclosure states its purpose or carries a copy of the request")
    for ref in entry.resource_refs:
        check_reference(ref, "resource_refs", (ref.split("/")[0],))
    if entry.order_id is not None and not _ID.match(entry.order_id):
        raise Invalid("order_id must be an id")
    return {
        "tenant_id": entry.tenant_id,
        "disclosure_id": entry.disclosure_id,
        "patient_id": entry.patient_id,
        "disclosed_at": _instant(entry.disclosed_at, "disclosed_at"),
        "basis": entry.basis.value,
        "recipient_ref": check_reference(entry.recipient_ref, "recipient_ref", RECIPIENT_TYPES),
        "authorization_ref": None
        if entry.authorization_ref is None
        else check_reference(entry.authorization_ref, "authorization_ref", ("Consent",)),
        "order_id": entry.order_id,
        "actor_user_id": entry.actor_user_id,
    }


def record_disclosure(conn: Connection, entry: DisclosureEntry, vault: Vault) -> None:
    """Write one ledger entry on the caller's connection (its transaction, its audit entry)."""
    row = _checked(entry)
    details = {
        "recipient_name": _text(entry.recipient_name, "recipient_name"),
        "recipient_address": _text(entry.recipient_address, "recipient_address", required=False),
        "purpose": _text(entry.purpose, "purpose", required=False),
        "description": _text(entry.description, "description", limit=MAX_DESCRIPTION),
        "request_copy": None
        if entry.request_copy is None
        else _text(entry.request_copy, "request_copy", required=False, limit=MAX_DESCRIPTION),
        "resource_refs": list(entry.resource_refs),
    }
    sealed = vault.seal_record(
        entry.tenant_id,
        patient_key_name(entry.patient_id),
        orjson.dumps(details),
        _aad(entry.tenant_id, entry.disclosure_id, entry.patient_id),
    )
    conn.execute(insert(disclosures).values(**row, details_sealed=sealed))


@dataclass(frozen=True)
class LedgerRow:
    """An entry as read back; `entry` is None when the patient's key was destroyed."""

    disclosure_id: str
    disclosed_at: str
    basis: Basis
    recipient_ref: str
    entry: DisclosureEntry | None


def read_entries(
    conn: Connection, vault: Vault, tenant_id: str, patient_id: str, since: str | None = None
) -> list[LedgerRow]:
    """One patient's ledger from `since` (an instant, inclusive), oldest first."""
    d = disclosures
    query = select(d).where(d.c.tenant_id == tenant_id, d.c.patient_id == patient_id)
    if since is not None:
        query = query.where(d.c.disclosed_at >= since)
    rows = conn.execute(query.order_by(d.c.disclosed_at, d.c.disclosure_id)).all()
    return [_opened(vault, row) for row in rows]


def _opened(vault: Vault, row: Any) -> LedgerRow:
    basis = Basis(row.basis)
    try:
        plain = vault.open_record(
            row.tenant_id,
            patient_key_name(row.patient_id),
            row.details_sealed,
            _aad(row.tenant_id, row.disclosure_id, row.patient_id),
        )
    except Exception:  # a shredded key: the entry's details are gone, its date and basis stay
        return LedgerRow(row.disclosure_id, row.disclosed_at, basis, row.recipient_ref, None)
    details = orjson.loads(plain)
    entry = DisclosureEntry(
        tenant_id=row.tenant_id,
        disclosure_id=row.disclosure_id,
        patient_id=row.patient_id,
        disclosed_at=row.disclosed_at,
        recipient_ref=row.recipient_ref,
        recipient_name=details["recipient_name"],
        recipient_address=details["recipient_address"],
        basis=basis,
        purpose=details["purpose"],
        description=details["description"],
        resource_refs=tuple(details["resource_refs"]),
        authorization_ref=row.authorization_ref,
        order_id=row.order_id,
        request_copy=details["request_copy"],
        actor_user_id=row.actor_user_id,
    )
    return LedgerRow(row.disclosure_id, row.disclosed_at, basis, row.recipient_ref, entry)
