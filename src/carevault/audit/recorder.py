"""The audit recorder: the chain functions, with keys from the key store."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from typing import TypeVar

from sqlalchemy import Connection

from carevault.audit import chain, checkpoints
from carevault.audit.models import AuditRecord
from carevault.committer import GroupCommitter
from carevault.crypto.vault import Vault

AUDIT_KEY_PURPOSE = "audit-chain"
T = TypeVar("T")


class AuditRecorder:
    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self.signer = checkpoints.Signer(vault)

    def start_chain(self, conn: Connection, tenant_id: str) -> None:
        chain.start_chain(conn, self._key(tenant_id), tenant_id)

    def append(self, conn: Connection, tenant_id: str, records: Iterable[AuditRecord]) -> int:
        return chain.append(
            conn,
            self._key(tenant_id),
            tenant_id,
            records,
            checkpoint=self.signer.periodic,
            checkpoint_every=checkpoints.CHECKPOINT_EVERY,
        )

    def commit(self, committer: GroupCommitter, tenant_id: str, record: AuditRecord) -> None:
        """Append one entry in the next group commit, merged with the batch's other entries
        for the same chain; returns once it is durable."""
        committer.submit_merged(self._flush, tenant_id, record)

    def commit_with(
        self,
        committer: GroupCommitter,
        tenant_id: str,
        work: Callable[[Connection], tuple[T, AuditRecord]],
    ) -> T:
        """Run a change that returns (result, its audit entry): both commit together."""
        return committer.submit_then_merge(work, self._flush, tenant_id)

    def _flush(self, conn: Connection, tenant_id: Hashable, records: list[AuditRecord]) -> None:
        self.append(conn, str(tenant_id), records)

    def verify(
        self,
        conn: Connection,
        tenant_id: str,
        exported: tuple[checkpoints.Checkpoint, ...] = (),
    ) -> chain.Verification:
        """The chain from its signed anchor, and every stored (and exported) checkpoint."""
        return checkpoints.verify_all(conn, self._key(tenant_id), self.signer, tenant_id, exported)

    def _key(self, tenant_id: str) -> bytes:
        return self._vault.subkey(tenant_id, AUDIT_KEY_PURPOSE)
