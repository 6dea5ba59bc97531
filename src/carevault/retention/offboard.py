"""Tenant offboarding (AllMeds): when the contract ends, an archive of all the tenant's ePHI is
produced for it, then the data is removed as the BAA requires, with a signed certificate.

Steps, each audited: (1) refused while any legal hold covers the tenant or one of its
patients; (2) soft-deleted records are shown again (they are kept data: they belong in the
archive); (3) `Gate.export` as the named system actor "tenant offboarding" writes every
resource, as NDJSON, into one archive sealed under a fresh random AES-256-GCM key that is
handed to the caller once (the tenant's own keys are about to be destroyed); (4) every
patient is crypto-shredded (KeyCustody.shred_patient), then the directory resources and the
tenant's shared data key go; (5) the tenant's accounts are inactivated; (6) the certificate.
The tenant's key-encryption key stays in the key store (KeyCustody has no way to destroy it
yet); no data key under it is left, so it opens nothing.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, select, update

from carevault.audit.models import Action, AuditRecord
from carevault.clock import isoformat
from carevault.errors import Conflict, Invalid, NotFound
from carevault.identity import sessions
from carevault.identity.models import system_actor, users
from carevault.privacy import offboarding
from carevault.retention import certificates
from carevault.retention.holds import UnderLegalHold
from carevault.retention.models import CertificateKind, Item
from carevault.retention.service import AUDIT_KEPT, SHRED_METHOD, Retention

REASON = "tenant offboarding"


@dataclass(frozen=True)
class OffboardReport:
    archive: Path
    archive_key: str
    """Hex AES-256-GCM key of the archive: shown once, give it to the tenant apart from it."""
    archive_sha256: str
    exported: dict[str, int]
    patients_shredded: int
    certificate_id: str


def offboard(retention: Retention, tenant_id: str, slug: str, archive_dir: Path) -> OffboardReport:
    services = retention.services
    actor = system_actor(tenant_id, REASON)
    with services.reader.connect() as conn:
        tenant_held, held = retention.holds.held_patients(conn, tenant_id)
        conn.rollback()
    if tenant_held or held:
        raise UnderLegalHold(
            "the tenant's data is under legal hold: the privacy officer must lift every hold "
            "before the tenant can be offboarded"
        )
    rule = retention.policy().retention.get("phi")
    if rule is not None and rule.on_contract_end == "keep":
        raise Conflict(
            "the policy keeps this tenant's PHI after the contract ends (under the BAA): "
            "change the policy or the agreement before offboarding removes it"
        )
    if not archive_dir.is_dir():
        raise Invalid("the archive folder must exist")
    for patient_id in sorted(retention.soft.hidden_patients_of(tenant_id)):
        retention.soft.restore_patient(actor, patient_id)
    for hidden in retention.soft.list_hidden(actor):  # outside any patient's record
        retention.soft.restore_resource(actor, hidden.resource_type, hidden.resource_id)
    archive_id = str(uuid.uuid4())
    path = archive_dir / f"{slug}-{archive_id}.cvarchive"
    writer = offboarding.ArchiveWriter(path, archive_id)
    exported: dict[str, int] = {}
    for batch in retention.gate(actor).export():
        exported[batch.resource_type] = exported.get(batch.resource_type, 0) + len(batch.bodies)
        writer.write(b"".join(body + b"\n" for body in batch.bodies))
    writer.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    patients = offboarding.patients_of(services, tenant_id)
    for patient_id in patients:
        try:
            retention.keys.shred_patient(actor, patient_id)
        except NotFound:
            continue  # already shredded by an earlier, interrupted run
    remaining, shared_destroyed = offboarding.remove_tenant_remainder(services, actor)
    closed = _close_accounts(retention, actor.tenant_id)
    cert = certificates.issue(
        services,
        actor,
        CertificateKind.TENANT,
        destroyed=[
            *[Item("patient record, crypto-shredded", "Patient", p, p) for p in patients],
            Item("directory resources outside any patient's record", count=remaining),
            Item("the tenant's shared data key" + ("" if shared_destroyed else " (none held)")),
        ],
        kept=[
            Item(
                "the archive handed to the tenant",
                why=f"sha256 {digest}, sealed under a key given to the tenant only",
            ),
            Item(
                "the tenant's user accounts, inactivated",
                count=closed,
                why="the vendor's own account data: kept for its retention period",
            ),
            AUDIT_KEPT,
        ],
        method=SHRED_METHOD,
        basis={
            "reason": "contract ended: business associate agreement requires return and "
            "destruction",
            "archive": path.name,
        },
    )
    return OffboardReport(
        path, writer.key.hex(), digest, exported, len(patients), cert.certificate_id
    )


def _close_accounts(retention: Retention, tenant_id: str) -> int:
    services = retention.services
    now = services.clock.now()
    actor = system_actor(tenant_id, REASON)

    def job(conn: Connection) -> tuple[int, AuditRecord]:
        ids = [
            r.user_id
            for r in conn.execute(
                select(users.c.user_id).where(
                    users.c.tenant_id == tenant_id, users.c.active.is_(True)
                )
            )
        ]
        conn.execute(update(users).where(users.c.tenant_id == tenant_id).values(active=False))
        for user_id in ids:
            sessions.end_all(conn, tenant_id, user_id, now, "offboarded")
        return len(ids), AuditRecord.by(
            actor,
            isoformat(now),
            Action.ADMIN,
            resource_type="User",
            detail=f"{REASON}; {len(ids)} accounts inactivated",
        )

    return services.audit.commit_with(services.committer, tenant_id, job)
