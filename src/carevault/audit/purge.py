"""Retention of the audit trail: kept at least six years, then purged under a signed anchor.

`purge` runs under the maintenance role (settings.maintenance_database_url; the app role
cannot delete audit entries on PostgreSQL). In one transaction, with the chain's head
locked: verify the chain, write the entries older than `before` to a sealed archive
(AES-GCM chunks under the tenant's "audit-archive" sub-key, each chunk bound to the file,
its index and whether it is the last), delete them, store a signed anchor (seq and hash
of the last removed entry) from which `audit verify` starts, and audit the purge itself.
"""

from __future__ import annotations

import hashlib
import os
import struct
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson
from sqlalchemy import Connection, Engine, delete, func, insert, select

from carevault.audit.checkpoints import Signer
from carevault.audit.evidence_models import CheckpointKind, audit_purges
from carevault.audit.models import Action, AuditRecord, Outcome, audit_entries, audit_heads
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.crypto.vault import Vault
from carevault.errors import CareVaultError, Invalid

RETENTION_YEARS = 6
ARCHIVE_PURPOSE = "audit-archive"
CHUNK_ENTRIES = 2000
_LENGTH = struct.Struct(">I")


class TooYoung(CareVaultError):
    status, code = 400, "business-rule"


@dataclass(frozen=True)
class PurgeReport:
    tenant_id: str
    removed: int
    first_seq: int | None
    last_seq: int | None
    archive: Path | None


def retention_floor(now: datetime) -> datetime:
    """The newest instant a purge may reach: six calendar years before now."""
    try:
        return now.replace(year=now.year - RETENTION_YEARS)
    except ValueError:  # 29 February
        return now.replace(year=now.year - RETENTION_YEARS, day=28)


def purge(
    engine: Engine,
    vault: Vault,
    clock: Clock,
    tenant_id: str,
    before: datetime,
    archive_dir: Path,
    *,
    by: str = "cli:audit-purge",
) -> PurgeReport:
    if before.tzinfo is None:
        raise Invalid("--before needs a time zone (or a plain date)")
    now = clock.now()
    if before > retention_floor(now):
        raise TooYoung(
            f"audit entries are kept {RETENTION_YEARS} years: --before must be on or before "
            f"{isoformat(retention_floor(now))}"
        )
    recorder = AuditRecorder(vault)
    cutoff = isoformat(before)
    with engine.begin() as conn:
        head = conn.execute(
            select(audit_heads.c.seq).where(audit_heads.c.tenant_id == tenant_id).with_for_update()
        ).one_or_none()
        if head is None:
            raise Invalid("no audit chain for that tenant")
        checked = recorder.verify(conn, tenant_id)
        if not checked.ok:
            raise Invalid(f"the chain does not verify; nothing purged: {checked.problem}")
        first_young = conn.execute(
            select(func.min(audit_entries.c.seq)).where(
                audit_entries.c.tenant_id == tenant_id, audit_entries.c.recorded_at >= cutoff
            )
        ).scalar()
        span = conn.execute(
            select(func.min(audit_entries.c.seq), func.max(audit_entries.c.seq)).where(
                audit_entries.c.tenant_id == tenant_id,
                *([audit_entries.c.seq < first_young] if first_young is not None else []),
            )
        ).one()
        first, last = span[0], span[1]
        if first is None:
            return PurgeReport(tenant_id, 0, None, None, None)
        purge_id = str(uuid.uuid4())
        archive_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = archive_dir / f"audit-{tenant_id}-{first}-{last}-{purge_id[:8]}.sealed"
        digest, removed, last_hash = _archive(conn, vault, tenant_id, first, last, path, purge_id)
        conn.execute(
            delete(audit_entries).where(
                audit_entries.c.tenant_id == tenant_id, audit_entries.c.seq <= last
            )
        )
        stamp = isoformat(now)
        signer = Signer(vault)
        signer.store(conn, signer.sign(tenant_id, CheckpointKind.ANCHOR, last, last_hash, stamp))
        conn.execute(
            insert(audit_purges).values(
                tenant_id=tenant_id, purge_id=purge_id, before=cutoff, first_seq=first,
                last_seq=last, entries=removed, archive_name=path.name, archive_sha256=digest,
                purged_at=stamp, purged_by=by,
            )
        )  # fmt: skip
        record = AuditRecord(
            recorded_at=stamp,
            actor_id=by,
            actor_role="system",
            action=Action.ADMIN,
            outcome=Outcome.SUCCESS,
            resource_type="AuditEvent",
            resource_ids=(purge_id,),
            detail=f"audit purge: entries {first}-{last} before {cutoff} archived and removed",
        )
        recorder.append(conn, tenant_id, [record])
    return PurgeReport(tenant_id, removed, int(first), int(last), path)


def _archive(
    conn: Connection, vault: Vault, tenant_id: str, first: int, last: int, path: Path, label: str
) -> tuple[str, int, str]:
    """Write entries first..last as sealed NDJSON chunks; (sha256 of file, count, last hash)."""
    digest = hashlib.sha256()
    count, last_hash = 0, ""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        chunks = _chunks(conn, tenant_id, first, last)
        current = next(chunks, None)
        index = 0
        while current is not None:
            following = next(chunks, None)
            lines, n, last_hash = current
            aad = f"{label}|{index}|{'last' if following is None else 'more'}".encode()
            sealed = vault.seal_for(tenant_id, ARCHIVE_PURPOSE, lines, aad)
            frame = _LENGTH.pack(len(sealed)) + sealed
            fh.write(frame)
            digest.update(frame)
            count, index, current = count + n, index + 1, following
        fh.flush()
        os.fsync(fh.fileno())
    return digest.hexdigest(), count, last_hash


def _chunks(
    conn: Connection, tenant_id: str, first: int, last: int
) -> Iterator[tuple[bytes, int, str]]:
    seq = first
    while seq <= last:
        rows = conn.execute(
            select(audit_entries)
            .where(audit_entries.c.tenant_id == tenant_id, audit_entries.c.seq.between(seq, last))
            .order_by(audit_entries.c.seq)
            .limit(CHUNK_ENTRIES)
        ).mappings()
        body = [{str(k): v for k, v in r.items()} for r in rows]
        if not body:
            return
        yield b"".join(orjson.dumps(r) + b"\n" for r in body), len(body), body[-1]["entry_hash"]
        seq = int(body[-1]["seq"]) + 1


def read_archive(
    vault: Vault, tenant_id: str, path: Path, label: str
) -> Iterator[dict[str, object]]:
    """The archived entries, in order; ValueError if the file was cut or altered."""
    data = path.read_bytes()
    frames, offset = [], 0
    while offset < len(data):
        (length,) = _LENGTH.unpack_from(data, offset)
        frames.append(data[offset + 4 : offset + 4 + length])
        offset += 4 + length
    for index, frame in enumerate(frames):
        aad = f"{label}|{index}|{'last' if index == len(frames) - 1 else 'more'}".encode()
        for line in vault.open_for(tenant_id, ARCHIVE_PURPOSE, frame, aad).splitlines():
            yield orjson.loads(line)
