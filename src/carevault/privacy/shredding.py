"""Key custody through the gate's services: crypto-shredding one patient, and rotations.

Shredding destroys the patient's data key in the key store, so every copy of the database
(backups included) holds only ciphertext nobody can open. The live rows and their search
index entries go too, so live reads answer "not found" rather than failing on a missing
key. Order, for crash safety: the rows and the audit entry commit first, then the key is
destroyed; running it again after a crash finishes the job (and is audited again).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, delete, select, tuple_

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.crypto.keystore import VENDOR_CHAIN
from carevault.crypto.rotation import MasterRotation, TenantRotation
from carevault.crypto.vault import patient_key_name
from carevault.errors import CareVaultError, Forbidden, NotFound
from carevault.identity.models import Actor, system_actor
from carevault.identity.permissions import Purpose
from carevault.privacy.services import GateServices
from carevault.records.models import (
    resource_versions,
    resources,
    search_dates,
    search_quantities,
    search_refs,
    search_tokens,
)
from carevault.records.store import valid_id

_INDEXES = (search_tokens, search_dates, search_refs, search_quantities)


@dataclass(frozen=True)
class ShredReport:
    patient_id: str
    resources_removed: int
    key_destroyed: bool
    wal_truncated: bool


class KeyCustody:
    def __init__(self, services: GateServices) -> None:
        self._s = services

    def shred_patient(self, actor: Actor, patient_id: str) -> ShredReport:
        """Destroy one patient's data key (and their live rows); audited on the tenant chain."""
        tenant_id = actor.tenant_id
        key_name = patient_key_name(patient_id)
        try:
            if actor.role is not None:
                raise Forbidden("only a named system actor (the operator's command) may shred")
            if not valid_id(patient_id):
                raise NotFound("no such patient")
            has_key = self._s.vault.has_key(tenant_id, key_name)
        except CareVaultError as exc:
            self._refuse(actor, patient_id, exc)
            raise

        def job(conn: Connection) -> tuple[int, AuditRecord]:
            removed = _remove_rows(conn, tenant_id, patient_id)
            if removed == 0 and not has_key:
                raise NotFound("no such patient, or already shredded")
            detail = f"crypto-shred: {removed} resources removed, data key destroyed"
            return removed, self._entry(actor, patient_id, Outcome.SUCCESS, 200, detail)

        try:
            removed = self._s.audit.commit_with(self._s.committer, tenant_id, job)
        except CareVaultError as exc:
            self._refuse(actor, patient_id, exc)
            raise
        destroyed = self._s.vault.shred(tenant_id, key_name)
        busy, _, _ = self._s.vault.checkpoint()
        return ShredReport(patient_id, removed, destroyed, busy == 0)

    def rotate_tenant(self, actor: Actor) -> TenantRotation:
        result = self._s.vault.rotate_tenant(actor.tenant_id)
        detail = (
            f"keys rotate: tenant key-encryption key v{result.new_version}, "
            f"{result.rewrapped} data keys re-wrapped, retired {list(result.retired_versions)}"
        )
        self._admin(actor, actor.tenant_id, detail)
        return result

    def rotate_master(self, reason: str) -> MasterRotation:
        """A new master key file; audited on the vendor chain by a named system actor."""
        actor = system_actor(VENDOR_CHAIN, reason, Purpose.HSYSADMIN)
        result = self._s.vault.rotate_master()
        detail = (
            f"keys rotate --master: {result.old_fingerprint} -> {result.new_fingerprint}, "
            f"{result.rewrapped} keys re-wrapped; earlier escrow files are stale"
        )
        self._admin(actor, VENDOR_CHAIN, detail)
        return result

    # -- audit ---------------------------------------------------------------------

    def _entry(
        self, actor: Actor, patient_id: str, outcome: Outcome, status: int, detail: str
    ) -> AuditRecord:
        return AuditRecord.by(
            actor,
            isoformat(self._s.clock.now()),
            Action.DELETE,
            outcome=outcome,
            status=status,
            resource_type="Patient",
            resource_ids=(patient_id,) if valid_id(patient_id) else (),
            patient_ids=(patient_id,) if valid_id(patient_id) else (),
            detail=detail if actor.system_reason is None else f"{actor.system_reason}; {detail}",
        )

    def _refuse(self, actor: Actor, patient_id: str, exc: CareVaultError) -> None:
        outcome = Outcome.DENIED if exc.status == 403 else Outcome.NOT_FOUND
        record = self._entry(actor, patient_id, outcome, exc.status, "crypto-shred refused")
        self._s.audit.commit(self._s.committer, actor.tenant_id, record)

    def _admin(self, actor: Actor, chain: str, detail: str) -> None:
        record = AuditRecord.by(
            actor,
            isoformat(self._s.clock.now()),
            Action.ADMIN,
            resource_type="KeyStore",
            detail=detail if actor.system_reason is None else f"{actor.system_reason}; {detail}",
        )
        self._s.audit.commit(self._s.committer, chain, record)


def _remove_rows(conn: Connection, tenant_id: str, patient_id: str) -> int:
    """The patient's resources, every version and every index entry, in this transaction."""
    keys = select(resources.c.resource_type, resources.c.resource_id).where(
        resources.c.tenant_id == tenant_id, resources.c.patient_id == patient_id
    )
    found = conn.execute(keys).all()
    for table in _INDEXES:
        conn.execute(
            delete(table).where(
                table.c.tenant_id == tenant_id,
                tuple_(table.c.resource_type, table.c.resource_id).in_(keys),
            )
        )
    conn.execute(
        delete(resource_versions).where(
            resource_versions.c.tenant_id == tenant_id,
            resource_versions.c.patient_id == patient_id,
        )
    )
    conn.execute(
        delete(resources).where(
            resources.c.tenant_id == tenant_id, resources.c.patient_id == patient_id
        )
    )
    return len(found)
