"""Export through the gate: every resource the actor may read, by type, in keyset batches.

The same flow as every gate read, per batch: decide (once, up front) → scope in SQL →
decrypt → minimum necessary → audit. Before a batch leaves, one durable audit entry
per patient in it names that patient and the resource ids (plus one entry for the
resources in no compartment), all committed together in one group commit.

The bodies leave as the decrypted JSON bytes (they carry id and meta already): an
NDJSON writer appends a newline and nothing else is re-serialized.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from carevault.audit.models import Action, Outcome
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Forbidden, Invalid
from carevault.identity.models import Actor
from carevault.identity.permissions import fhir_permission
from carevault.privacy.gate_hooks import GateHooks
from carevault.records.bulk_read import BulkQuery, BulkReader
from carevault.records.params import IN_COMPARTMENT, SUPPORTED_TYPES
from carevault.records.store import Version

EXPORT_BATCH = 1000
"""Resources per batch: one query, one decryption pass and one audit commit each."""

COMPARTMENT_TYPES: tuple[str, ...] = tuple(t for t in SUPPORTED_TYPES if t in IN_COMPARTMENT)
"""What a patient-level (or group-level) export holds: the patient compartment's types."""


@dataclass(frozen=True)
class ExportRequest:
    types: Sequence[str] | None = None
    """Types asked for; None: every type the actor may read (at patient level, in the
    compartment)."""
    patients: Collection[str] | None = None
    """Only these patients' compartments (a group export); implies patient level."""
    patient_level: bool = False
    """Compartment types only (Patient/$export)."""
    since: str | datetime | None = None
    """Only resources written after this instant."""

    @property
    def level(self) -> str:
        if self.patients is not None:
            return "group"
        return "patient" if self.patient_level else "system"


@dataclass(frozen=True)
class ExportBatch:
    """Up to one batch of one type, decrypted, cut and audited."""

    resource_type: str
    bodies: list[bytes]
    """One resource JSON per element, as stored (id and meta included); no newline."""


class ExportStream:
    """The decided export; iterate it for the batches (each audited before it is yielded)."""

    def __init__(
        self, parts: GateHooks, types: tuple[str, ...], query: ExportRequest, batch_size: int
    ) -> None:
        self._p = parts
        self.types = types
        self._since = _instant(query.since)
        self._patients = None if query.patients is None else frozenset(query.patients)
        self._detail = f"bulk export; level={query.level}"
        self._batch_size = batch_size
        self._reader = BulkReader(parts.services.vault)

    def count(self) -> int:
        """How many resources the export holds now (for a progress bar)."""
        with self._p.services.reader.connect() as conn:
            total = sum(self._reader.count(conn, self._p.scope, self._query(t)) for t in self.types)
            conn.rollback()
        return total

    def __iter__(self) -> Iterator[ExportBatch]:
        # The next batch is read and decrypted while this one's audit entries commit: the
        # commit's fsync is the longest step, and nothing leaves before it is durable.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="carevault-export") as ahead:
            for rtype in self.types:
                query = self._query(rtype)
                upcoming = ahead.submit(self._read, query, None)
                while versions := upcoming.result():
                    more = len(versions) == self._batch_size
                    if more:
                        upcoming = ahead.submit(self._read, query, versions[-1].resource_id)
                    # after the batch's paging: what the security labels hide is left out
                    kept = self._p.screen(None, (rtype,)).keep(versions)
                    cut = [self._p.minimum(v) for v in kept]
                    self._audit(rtype, cut)
                    yield ExportBatch(rtype, [v.body for v in cut if v.body is not None])
                    if not more:
                        break

    def _query(self, rtype: str) -> BulkQuery:
        return BulkQuery(rtype, self._patients, self._since)

    def _read(self, query: BulkQuery, after: str | None) -> list[Version]:
        rtype, scope = query.resource_type, self._p.scope
        try:
            with self._p.services.reader.connect() as conn:
                found = self._reader.batch(conn, scope, query, after=after, limit=self._batch_size)
                conn.rollback()
        except CareVaultError as exc:
            self._p.audit_refusal(Action.EXPORT, rtype, (), exc, self._detail)
            raise
        except Exception:
            self._p.audit_refusal(Action.EXPORT, rtype, (), None, self._detail)
            raise
        return found

    def _audit(self, rtype: str, versions: list[Version]) -> None:
        """One entry per patient in the batch, one for the rest; durable before we go on."""
        by_patient: dict[str | None, list[Version]] = {}
        for version in versions:
            by_patient.setdefault(version.patient_id, []).append(version)
        records = [
            self._p.record(Action.EXPORT, rtype, Outcome.SUCCESS, 200, group, (), self._detail)
            for group in by_patient.values()
        ]
        services, tenant_id = self._p.services, self._p.actor.tenant_id

        def append(conn: Connection) -> Any:
            return services.audit.append(conn, tenant_id, records)

        services.committer.submit(append)


def open_export(parts: GateHooks, query: ExportRequest, batch_size: int) -> ExportStream:
    """Decide what the actor may export (refusals audited) and return the stream."""
    try:
        types = _decide_types(parts.actor, query)
        if batch_size < 1:
            raise Invalid("the export batch size must be positive")
        return ExportStream(parts, types, query, batch_size)
    except CareVaultError as exc:
        parts.audit_refusal(Action.EXPORT, "", (), exc, f"bulk export; level={query.level}")
        raise


def readable_types(actor: Actor, *, patient_level: bool) -> tuple[str, ...]:
    """Every type the actor's role and token let them read (at patient level, in the
    compartment): what an export without `_type` holds."""
    candidates = COMPARTMENT_TYPES if patient_level else SUPPORTED_TYPES
    return tuple(t for t in candidates if fhir_permission(t, "read") in actor.permissions)


def _decide_types(actor: Actor, query: ExportRequest) -> tuple[str, ...]:
    patient_level = query.patient_level or query.patients is not None
    if query.types is None:
        return readable_types(actor, patient_level=patient_level)
    types = tuple(dict.fromkeys(query.types))
    for rtype in types:
        if rtype not in SUPPORTED_TYPES:
            raise Invalid("_type names a resource type that is not served here")
        if patient_level and rtype not in IN_COMPARTMENT:
            raise Invalid("a patient or group export holds only the patient compartment's types")
        if fhir_permission(rtype, "read") not in actor.permissions:
            raise Forbidden(f"your role and token do not allow read on {rtype}")
    return types


def _instant(since: str | datetime | None) -> str | None:
    """`_since` as the store writes instants (UTC, microseconds), so strings compare."""
    if since is None:
        return None
    if isinstance(since, str):
        try:
            since = datetime.fromisoformat(since)
        except ValueError:
            raise Invalid("_since must be a FHIR instant such as 2024-01-01T00:00:00Z") from None
    if since.tzinfo is None:
        raise Invalid("_since must carry a time zone (e.g. Z)")
    return isoformat(since)
