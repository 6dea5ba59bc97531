"""What a tenant holds, and removing it: the record-table side of retention and offboarding.

records/ is reachable only from privacy/, so the retention job and tenant offboarding ask
here, never the tables themselves:

- `inventory`: per resource its type, id, patient, first and last write and security labels
  (from the search index, in the clear by design) — no body is decrypted, nothing leaves
  but ids, codes and times;
- `purge_resource`: one resource with every version and index entry (a patient's own
  submission, deleted at their request), audited in the same transaction;
- `remove_tenant_remainder`: after every patient was crypto-shredded (KeyCustody), the
  resources outside any compartment and the tenant's shared data key;
- `ArchiveWriter` / `read_archive`: the offboarding archive, sealed under a fresh random
  key handed to the tenant (the tenant's own keys are destroyed right after).

All changes are for named system actors only (the deletion service authorizes the person).
"""

from __future__ import annotations

import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Connection, delete, exists, or_, select, tuple_

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.crypto.vault import TENANT_SHARED_KEY
from carevault.errors import CareVaultError, Forbidden, NotFound
from carevault.identity.models import Actor
from carevault.privacy.services import GateServices
from carevault.records.models import (
    hidden_resources,
    resource_versions,
    resources,
    search_dates,
    search_quantities,
    search_refs,
    search_tokens,
)
from carevault.records.store import valid_id

_INDEXES = (search_tokens, search_dates, search_refs, search_quantities)
_LENGTH = struct.Struct(">I")
ARCHIVE_MAGIC = b"CVARCHIVE1\n"


@dataclass(frozen=True)
class ResourceFact:
    resource_type: str
    resource_id: str
    patient_id: str | None
    created: str
    last_updated: str
    hidden: bool
    security: tuple[tuple[str, str], ...] = field(default=())
    """(system, code) of meta.security, as indexed."""


def inventory(
    services: GateServices, tenant_id: str, patient_id: str | None = None
) -> list[ResourceFact]:
    """Every kept resource of the tenant, or of one patient (live or soft-deleted), without
    decrypting any."""
    r, rv, t, h = resources.c, resource_versions.c, search_tokens.c, hidden_resources.c
    hidden = exists().where(
        h.tenant_id == r.tenant_id,
        h.resource_type == r.resource_type,
        h.resource_id == r.resource_id,
    )
    where = [r.tenant_id == tenant_id, or_(r.deleted.is_(False), hidden)]
    if patient_id is not None:
        where.append(r.patient_id == patient_id)
    with services.reader.connect() as conn:
        rows = conn.execute(
            select(
                r.resource_type, r.resource_id, r.patient_id, r.last_updated, hidden.label("hidden")
            )
            .where(*where)
            .order_by(r.resource_type, r.resource_id)
        ).all()
        first = {
            (row.resource_type, row.resource_id): row.last_updated
            for row in conn.execute(
                select(rv.resource_type, rv.resource_id, rv.last_updated).where(
                    rv.tenant_id == tenant_id, rv.version_id == 1
                )
            )
        }
        labels: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for row in conn.execute(
            select(t.resource_type, t.resource_id, t.system, t.code).where(
                t.tenant_id == tenant_id, t.param == "_security"
            )
        ):
            labels.setdefault((row.resource_type, row.resource_id), []).append(
                (row.system, row.code)
            )
        conn.rollback()
    return [
        ResourceFact(
            row.resource_type,
            row.resource_id,
            row.patient_id,
            first.get((row.resource_type, row.resource_id), row.last_updated),
            row.last_updated,
            bool(row.hidden),
            tuple(sorted(labels.get((row.resource_type, row.resource_id), []))),
        )
        for row in rows
    ]


def patients_of(services: GateServices, tenant_id: str) -> list[str]:
    """Every patient with rows in the tenant (live, soft-deleted or tombstoned)."""
    r = resources.c
    with services.reader.connect() as conn:
        found = conn.execute(
            select(r.patient_id)
            .distinct()
            .where(r.tenant_id == tenant_id, r.patient_id.is_not(None))
        ).all()
        conn.rollback()
    return sorted(str(row.patient_id) for row in found)


def purge_resource(services: GateServices, actor: Actor, rtype: str, rid: str) -> str | None:
    """Remove one resource, every version and index entry; returns its patient. Audited."""
    r = resources.c
    try:
        if actor.role is not None:
            raise Forbidden("only a named system actor may purge a resource")
        if not valid_id(rid):
            raise NotFound("no such record")
    except CareVaultError as exc:
        _refuse(services, actor, rtype, rid, exc)
        raise

    def job(conn: Connection) -> tuple[str | None, AuditRecord]:
        row = conn.execute(
            select(r.patient_id).where(
                r.tenant_id == actor.tenant_id, r.resource_type == rtype, r.resource_id == rid
            )
        ).one_or_none()
        if row is None:
            raise NotFound("no such record")
        keys = {"tenant_id": actor.tenant_id, "resource_type": rtype, "resource_id": rid}
        for table in (*_INDEXES, resource_versions, hidden_resources, resources):
            conn.execute(delete(table).filter_by(**keys))
        patient = row.patient_id
        detail = "permanent deletion: every version and index entry removed"
        return patient, _entry(services, actor, rtype, (rid,), patient, detail)

    try:
        return services.audit.commit_with(services.committer, actor.tenant_id, job)
    except CareVaultError as exc:
        _refuse(services, actor, rtype, rid, exc)
        raise


def remove_tenant_remainder(services: GateServices, actor: Actor) -> tuple[int, bool]:
    """After every patient is shredded: what is left (directory resources) and the tenant's
    shared data key. Returns (resources removed, shared key destroyed)."""
    if actor.role is not None:
        raise Forbidden("only a named system actor may remove a tenant's data")
    tenant_id = actor.tenant_id
    r = resources.c

    def job(conn: Connection) -> tuple[int, AuditRecord]:
        keys = select(r.resource_type, r.resource_id).where(r.tenant_id == tenant_id)
        removed = len(conn.execute(keys).all())
        for table in _INDEXES:
            conn.execute(
                delete(table).where(
                    table.c.tenant_id == tenant_id,
                    tuple_(table.c.resource_type, table.c.resource_id).in_(keys),
                )
            )
        for table in (resource_versions, hidden_resources, resources):
            conn.execute(delete(table).where(table.c.tenant_id == tenant_id))
        detail = f"tenant offboarding: {removed} remaining resources removed, shared key destroyed"
        return removed, _entry(services, actor, "Tenant", (), None, detail)

    removed = services.audit.commit_with(services.committer, tenant_id, job)
    destroyed = services.vault.shred(tenant_id, TENANT_SHARED_KEY)
    services.vault.checkpoint()
    return removed, destroyed


def _entry(
    services: GateServices,
    actor: Actor,
    rtype: str,
    ids: tuple[str, ...],
    patient: str | None,
    detail: str,
    outcome: Outcome = Outcome.SUCCESS,
    status: int = 200,
) -> AuditRecord:
    return AuditRecord.by(
        actor,
        isoformat(services.clock.now()),
        Action.DELETE,
        outcome=outcome,
        status=status,
        resource_type=rtype,
        resource_ids=ids,
        patient_ids=(patient,) if patient else (),
        detail=detail if actor.system_reason is None else f"{actor.system_reason}; {detail}",
    )


def _refuse(
    services: GateServices, actor: Actor, rtype: str, rid: str, exc: CareVaultError
) -> None:
    outcome = Outcome.DENIED if exc.status == 403 else Outcome.NOT_FOUND
    ids = (rid,) if valid_id(rid) else ()
    record = _entry(
        services, actor, rtype, ids, None, "permanent deletion refused", outcome, exc.status
    )
    services.audit.commit(services.committer, actor.tenant_id, record)


# -- the offboarding archive ------------------------------------------------------------


class ArchiveWriter:
    """NDJSON lines sealed in frames (AES-256-GCM, a fresh key): the tenant gets the key."""

    def __init__(self, path: Path, archive_id: str) -> None:
        self.key = secrets.token_bytes(32)
        self._aead = AESGCM(self.key)
        self._id = archive_id
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: BinaryIO = os.fdopen(fd, "wb")
        self._file.write(ARCHIVE_MAGIC + archive_id.encode() + b"\n")
        self._index = 0
        self._pending: bytes | None = None

    def write(self, chunk: bytes) -> None:
        # One frame behind, so the last frame is known to be the last when it is sealed.
        if self._pending is not None:
            self._seal(self._pending, last=False)
        self._pending = chunk

    def close(self) -> None:
        self._seal(self._pending or b"", last=True)
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()

    def _seal(self, chunk: bytes, *, last: bool) -> None:
        nonce = secrets.token_bytes(12)
        sealed = nonce + self._aead.encrypt(nonce, chunk, _aad(self._id, self._index, last))
        self._file.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1


def _aad(archive_id: str, index: int, last: bool) -> bytes:
    return f"{archive_id}|{index}|{'last' if last else 'more'}".encode()


def read_archive(path: Path, key: bytes) -> Iterator[bytes]:
    """The archive's chunks, in order; ValueError if it was cut short or altered."""
    with path.open("rb") as fh:
        if fh.readline() != ARCHIVE_MAGIC:
            raise ValueError("not a CareVault archive")
        archive_id = fh.readline().rstrip(b"\n").decode()
        aead = AESGCM(key)
        frames: list[bytes] = []
        while header := fh.read(_LENGTH.size):
            (length,) = _LENGTH.unpack(header)
            frames.append(fh.read(length))
    if not frames:
        raise ValueError("the archive is cut short")
    for index, frame in enumerate(frames):
        try:
            yield aead.decrypt(
                frame[:12], frame[12:], _aad(archive_id, index, index == len(frames) - 1)
            )
        except Exception as exc:  # InvalidTag: wrong key, reordered, cut short, altered
            raise ValueError("the archive failed authentication") from exc
