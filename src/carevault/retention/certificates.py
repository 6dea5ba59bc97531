"""Deletion certificates: what was destroyed, what was kept and why, and when; signed.

Signature: Ed25519 under a key of its own, derived from the key store on the vendor's chain
(`Vault.subkey(VENDOR_CHAIN, "deletion-certificate")`) — the business associate certifies
the destruction, and the key outlives any tenant's keys (offboarding destroys those). It is
deliberately not the audit checkpoint key, so a certificate can never pass for a checkpoint.
The public key travels in the certificate; `verify` checks it against the one derived here.
The document holds ids, counts and reasons only (no PHI); the PDF renders the same fields.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, replace
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fpdf import FPDF
from sqlalchemy import Connection, insert, select

from carevault.audit.models import Action, AuditRecord
from carevault.clock import isoformat
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.errors import NotFound
from carevault.identity.models import Actor
from carevault.privacy.services import GateServices
from carevault.report_pdf import latin1
from carevault.retention.models import Certificate, CertificateKind, Item, deletion_certificates

SIGNING_PURPOSE = "deletion-certificate"
ALGORITHM = "Ed25519"


def _key(services: GateServices) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(
        services.vault.subkey(VENDOR_CHAIN, SIGNING_PURPOSE)[:32]
    )


def public_key_hex(services: GateServices) -> str:
    raw = _key(services).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return raw.hex()


def document(cert: Certificate) -> dict[str, Any]:
    """The signed content: everything but the signature itself."""
    body = asdict(cert)
    body.pop("signature")
    body["kind"] = cert.kind.value
    body["destroyed"] = [_item(i) for i in cert.destroyed]
    body["kept"] = [_item(i) for i in cert.kept]
    body["algorithm"] = ALGORITHM
    return body


def _item(item: Item) -> dict[str, Any]:
    return {k: v for k, v in asdict(item).items() if v is not None}


def canonical(cert: Certificate) -> bytes:
    return orjson.dumps(document(cert), option=orjson.OPT_SORT_KEYS)


def to_json(cert: Certificate) -> bytes:
    body = document(cert)
    body["signature"] = cert.signature
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


def issue(
    services: GateServices,
    actor: Actor,
    kind: CertificateKind,
    *,
    destroyed: list[Item],
    kept: list[Item],
    method: str,
    basis: dict[str, str] | None = None,
) -> Certificate:
    """Sign and store a certificate (audited with it); returns it with its signature."""
    unsigned = Certificate(
        str(uuid.uuid4()),
        actor.tenant_id,
        kind,
        isoformat(services.clock.now()),
        tuple(destroyed),
        tuple(kept),
        method,
        dict(basis or {}),
        "",
        public_key_hex(services),
    )
    signature = _key(services).sign(canonical(unsigned)).hex()
    cert = replace(unsigned, signature=signature)

    def job(conn: Connection) -> tuple[Certificate, AuditRecord]:
        conn.execute(
            insert(deletion_certificates).values(
                tenant_id=actor.tenant_id,
                certificate_id=cert.certificate_id,
                kind=kind.value,
                issued_at=cert.issued_at,
                document=canonical(cert).decode(),
                signature=signature,
            )
        )
        patients = sorted({i.patient_id for i in destroyed if i.patient_id})[:50]
        return cert, AuditRecord.by(
            actor,
            cert.issued_at,
            Action.ADMIN,
            status=201,
            resource_type="DeletionCertificate",
            resource_ids=(cert.certificate_id,),
            patient_ids=tuple(patients),
            detail=f"deletion certificate issued: {kind.value}",
        )

    return services.audit.commit_with(services.committer, actor.tenant_id, job)


def load(services: GateServices, tenant_id: str, certificate_id: str) -> Certificate:
    c = deletion_certificates.c
    with services.reader.connect() as conn:
        row = conn.execute(
            select(deletion_certificates).where(
                c.tenant_id == tenant_id, c.certificate_id == certificate_id
            )
        ).one_or_none()
    if row is None:
        raise NotFound("no deletion certificate with that id")
    return from_document(orjson.loads(row.document), row.signature)


def list_ids(services: GateServices, tenant_id: str) -> list[tuple[str, str, str]]:
    """(certificate id, kind, issued at), oldest first."""
    c = deletion_certificates.c
    with services.reader.connect() as conn:
        rows = conn.execute(
            select(c.certificate_id, c.kind, c.issued_at)
            .where(c.tenant_id == tenant_id)
            .order_by(c.issued_at, c.certificate_id)
        ).all()
    return [(r.certificate_id, r.kind, r.issued_at) for r in rows]


def from_document(body: dict[str, Any], signature: str) -> Certificate:
    return Certificate(
        body["certificate_id"],
        body["tenant_id"],
        CertificateKind(body["kind"]),
        body["issued_at"],
        tuple(Item(**i) for i in body["destroyed"]),
        tuple(Item(**i) for i in body["kept"]),
        body["method"],
        dict(body["basis"]),
        signature,
        body["public_key"],
    )


def verify(services: GateServices, cert: Certificate) -> bool:
    """The signature is valid and made by this deployment's certificate key."""
    key = _key(services).public_key()
    if cert.public_key != public_key_hex(services):
        return False
    try:
        key.verify(bytes.fromhex(cert.signature), canonical(cert))
    except (InvalidSignature, ValueError):
        return False
    return True


def to_pdf(cert: Certificate) -> bytes:
    """The printable certificate (fpdf2, core fonts: the fields are ASCII ids and words)."""
    pdf = FPDF()
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, "Certificate of deletion", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=10)
    for label, value in (
        ("Certificate", cert.certificate_id),
        ("Tenant", cert.tenant_id),
        ("Kind", cert.kind.value),
        ("Issued (UTC)", cert.issued_at),
        ("Method", cert.method),
        *sorted(cert.basis.items()),
    ):
        pdf.multi_cell(0, 6, latin1(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    for title, items in (("Destroyed", cert.destroyed), ("Kept, and why", cert.kept)):
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=9)
        if not items:
            pdf.multi_cell(0, 5, "(nothing)", new_x="LMARGIN", new_y="NEXT")
        for item in items:
            pdf.multi_cell(0, 5, latin1("- " + _line(item)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    pdf.multi_cell(
        0, 4, latin1(f"{ALGORITHM} public key: {cert.public_key}"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.multi_cell(0, 4, latin1(f"Signature: {cert.signature}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _line(item: Item) -> str:
    parts = [item.what]
    if item.resource_type:
        parts.append(
            f"{item.resource_type}/{item.resource_id}" if item.resource_id else item.resource_type
        )
    if item.patient_id:
        parts.append(f"patient {item.patient_id}")
    if item.count is not None:
        parts.append(f"{item.count} resources")
    if item.why:
        parts.append(f"why: {item.why}")
    return "; ".join(parts)
