"""Signed checkpoints of a chain's head, and the anchors a purge leaves behind.

The chain's HMAC proves order and integrity, but its head row lives in the same database:
someone who restores an older copy, or cuts the tail and the head together, leaves a
consistent-looking chain. A checkpoint is an Ed25519 signature over (tenant, seq,
entry_hash, time) with a key derived from the key store; its public key can be given to
an auditor, and a checkpoint exported to a file outside the database (`carevault audit
checkpoint --out`) catches a restored or truncated database when `audit verify` is given
it. Checkpoints are written every `CHECKPOINT_EVERY` entries, in the transaction that
crosses the mark, and on demand.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import Connection, insert, select

from carevault.audit import chain
from carevault.audit.evidence_models import CheckpointKind, audit_checkpoints
from carevault.audit.models import audit_entries, audit_heads
from carevault.crypto.vault import Vault

SIGNING_PURPOSE = "audit-checkpoint"
CHECKPOINT_EVERY = 1000
"""A checkpoint every this many entries: one signature (~50 µs) per thousand appends."""
FORMAT = "carevault-audit-checkpoint/1"


class BadCheckpoint(ValueError):
    """An exported checkpoint file that is not one we wrote."""


@dataclass(frozen=True)
class Checkpoint:
    tenant_id: str
    kind: CheckpointKind
    seq: int
    entry_hash: str
    signed_at: str
    signature: str

    def message(self) -> bytes:
        return _message(self.tenant_id, self.kind, self.seq, self.entry_hash, self.signed_at)

    def to_json(self, public_key: str) -> bytes:
        body = {
            "format": FORMAT,
            "tenant_id": self.tenant_id,
            "kind": self.kind.value,
            "seq": self.seq,
            "entry_hash": self.entry_hash,
            "signed_at": self.signed_at,
            "signature": self.signature,
            "public_key": public_key,
        }
        return orjson.dumps(body, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> Checkpoint:
        try:
            body: dict[str, Any] = orjson.loads(raw)
            if body.get("format") != FORMAT:
                raise BadCheckpoint("not a CareVault audit checkpoint file")
            return cls(
                tenant_id=str(body["tenant_id"]),
                kind=CheckpointKind(body["kind"]),
                seq=int(body["seq"]),
                entry_hash=str(body["entry_hash"]),
                signed_at=str(body["signed_at"]),
                signature=str(body["signature"]),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, BadCheckpoint):
                raise
            raise BadCheckpoint("the checkpoint file is not well-formed") from None


def _message(tenant_id: str, kind: CheckpointKind, seq: int, entry_hash: str, at: str) -> bytes:
    return f"{FORMAT}|{kind.value}|{tenant_id}|{seq}|{entry_hash}|{at}".encode()


class Signer:
    """Ed25519 keys per chain, derived from the key store (never stored in the database)."""

    def __init__(self, vault: Vault) -> None:
        self._vault = vault
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self._lock = threading.Lock()

    def _key(self, tenant_id: str) -> Ed25519PrivateKey:
        with self._lock:
            key = self._keys.get(tenant_id)
            if key is None:
                seed = self._vault.subkey(tenant_id, SIGNING_PURPOSE)
                key = self._keys[tenant_id] = Ed25519PrivateKey.from_private_bytes(seed[:32])
            return key

    def public_key(self, tenant_id: str) -> Ed25519PublicKey:
        return self._key(tenant_id).public_key()

    def public_key_hex(self, tenant_id: str) -> str:
        return self.public_key(tenant_id).public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def public_key_pem(self, tenant_id: str) -> str:
        pem = self.public_key(tenant_id).public_bytes(
            Encoding.PEM, PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode()

    def sign(
        self, tenant_id: str, kind: CheckpointKind, seq: int, entry_hash: str, at: str
    ) -> Checkpoint:
        signature = self._key(tenant_id).sign(_message(tenant_id, kind, seq, entry_hash, at))
        return Checkpoint(tenant_id, kind, seq, entry_hash, at, signature.hex())

    def valid(self, checkpoint: Checkpoint) -> bool:
        try:
            signature = bytes.fromhex(checkpoint.signature)
            self.public_key(checkpoint.tenant_id).verify(signature, checkpoint.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    # -- storage -----------------------------------------------------------------

    def store(self, conn: Connection, checkpoint: Checkpoint) -> None:
        conn.execute(
            insert(audit_checkpoints).values(
                tenant_id=checkpoint.tenant_id,
                kind=checkpoint.kind.value,
                seq=checkpoint.seq,
                entry_hash=checkpoint.entry_hash,
                signed_at=checkpoint.signed_at,
                signature=checkpoint.signature,
            )
        )

    def periodic(
        self, conn: Connection, tenant_id: str, seq: int, entry_hash: str, at: str
    ) -> None:
        """The hook chain.append calls when a batch crosses a multiple of CHECKPOINT_EVERY."""
        self.store(conn, self.sign(tenant_id, CheckpointKind.CHECKPOINT, seq, entry_hash, at))

    def checkpoint_head(self, conn: Connection, tenant_id: str, at: str) -> Checkpoint:
        """Sign the current head (inside the caller's transaction) unless it is signed already."""
        head = conn.execute(
            select(audit_heads.c.seq, audit_heads.c.entry_hash).where(
                audit_heads.c.tenant_id == tenant_id
            )
        ).one_or_none()
        if head is None:
            raise LookupError(f"no audit chain for tenant {tenant_id}")
        existing = _load(conn, tenant_id, CheckpointKind.CHECKPOINT, seq=int(head.seq))
        if existing:
            return existing[0]
        checkpoint = self.sign(
            tenant_id, CheckpointKind.CHECKPOINT, int(head.seq), str(head.entry_hash), at
        )
        self.store(conn, checkpoint)
        return checkpoint


def _load(
    conn: Connection, tenant_id: str, kind: CheckpointKind, *, seq: int | None = None
) -> list[Checkpoint]:
    query = select(audit_checkpoints).where(
        audit_checkpoints.c.tenant_id == tenant_id, audit_checkpoints.c.kind == kind.value
    )
    if seq is not None:
        query = query.where(audit_checkpoints.c.seq == seq)
    rows = conn.execute(query.order_by(audit_checkpoints.c.seq)).mappings().all()
    return [
        Checkpoint(r["tenant_id"], kind, int(r["seq"]), r["entry_hash"], r["signed_at"],
                   r["signature"])
        for r in rows
    ]  # fmt: skip


def verify_all(
    conn: Connection,
    key: bytes,
    signer: Signer,
    tenant_id: str,
    exported: Sequence[Checkpoint] = (),
) -> chain.Verification:
    """The chain from its latest signed anchor, then every stored and exported checkpoint."""
    anchors = _load(conn, tenant_id, CheckpointKind.ANCHOR)
    bad = next((a for a in anchors if not signer.valid(a)), None)
    if bad is not None:
        return chain.Verification(tenant_id, 0, bad.seq, f"the anchor at {bad.seq} is forged")
    start = chain.Anchor(anchors[-1].seq, anchors[-1].entry_hash) if anchors else None
    result = chain.verify(conn, key, tenant_id, anchor=start or chain.GENESIS_ANCHOR)
    if not result.ok:
        return result
    stored = _load(conn, tenant_id, CheckpointKind.CHECKPOINT)
    problem = _check_points(conn, signer, tenant_id, [*stored, *exported], result, start)
    if problem is not None:
        first_bad, text = problem
        return chain.Verification(tenant_id, result.verified, first_bad, text,
                                  result.head_seq, result.head_hash)  # fmt: skip
    return result


def _check_points(
    conn: Connection,
    signer: Signer,
    tenant_id: str,
    points: list[Checkpoint],
    result: chain.Verification,
    anchor: chain.Anchor | None,
) -> tuple[int, str] | None:
    floor = anchor.seq if anchor else 0
    wanted: dict[int, str] = {}
    for point in points:
        if point.tenant_id != tenant_id:
            continue
        if not signer.valid(point):
            return point.seq, f"the checkpoint at {point.seq} has a bad signature"
        if point.seq > result.head_seq:
            return (
                result.head_seq + 1,
                f"a checkpoint signed at {point.signed_at} vouches for {point.seq} entries; "
                f"only {result.head_seq} remain (truncated, or an older copy was restored)",
            )
        if point.seq > floor:
            wanted[point.seq] = point.entry_hash
    seqs = sorted(wanted)
    for i in range(0, len(seqs), 500):
        chunk = seqs[i : i + 500]
        query = select(audit_entries.c.seq, audit_entries.c.entry_hash).where(
            audit_entries.c.tenant_id == tenant_id, audit_entries.c.seq.in_(chunk)
        )
        found = {int(row[0]): str(row[1]) for row in conn.execute(query)}
        for seq in chunk:
            if found.get(seq) != wanted[seq]:
                return seq, f"entry {seq} differs from its signed checkpoint (chain rewritten)"
    return None
