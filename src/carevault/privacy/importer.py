"""Import through the gate: FHIR NDJSON and Bundle files, under the resources' own ids.

Two passes over the input, so that nothing is written before everything is known:

1. **check** (worker processes when the input is large): every item is parsed and
   validated, and what it declares (Type/id, identifiers) and references is noted.
   Then, per type, the write permission is decided; conditional references
   (`Practitioner?identifier=…`) are resolved, once per distinct reference, against the
   tenant and the import itself; and every reference must name a resource of the import
   or a live one of the tenant. A refusal can make its dependants fail: repeated until
   nothing changes.
2. **write**: types in dependency order, batches of one type, each batch written with one
   statement per table and audited (resource and patient ids) in the same transaction.

`abort` (the default) writes nothing when any item is refused; `skip` writes every good
item and lists the refused ones. Either way a resource is written whole (version, current
row, index rows, audit entry) or not at all.
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from multiprocessing import get_context
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import (
    CareVaultError,
    Forbidden,
    Invalid,
    PreconditionFailed,
    Unprocessable,
)
from carevault.privacy.gate_hooks import GateHooks
from carevault.privacy.import_check import Checked, Key, check_items, digest
from carevault.privacy.services import GateServices
from carevault.records import conditional
from carevault.records.bulk_write import BulkWriter, References, RowRefused, live_keys
from carevault.records.store import Scope, Version
from carevault.transfer.sources import Item, UnreadableFile
from carevault.transfer.sources import Source as Source  # the gate names it from here

TYPE_ORDER = (
    "Organization", "Location", "Practitioner", "PractitionerRole", "Medication", "Patient",
    "Group", "Device", "Encounter",
)  # fmt: skip
"""What others reference comes first; the rest follow in alphabetical order."""
log = logging.getLogger("carevault.import")
BATCH_SIZE = 500
CHUNK = 200
"""Items per worker task: large enough to amortize the hand-over, small enough to stream."""
POOL_THRESHOLD_BYTES = 2_000_000
"""Below this input size, checking in-process beats starting worker processes."""

Decide = Callable[[str, str], None]


class OnError(StrEnum):
    ABORT = "abort"
    SKIP = "skip"


class ImportProgress(Protocol):
    def phase(self, name: str, total: int | None) -> None: ...

    def advance(self, count: int) -> None: ...


class _Silent:
    def phase(self, name: str, total: int | None) -> None:
        pass

    def advance(self, count: int) -> None:
        pass


@dataclass(frozen=True)
class Refusal:
    source: str
    unit: str
    position: int
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.position}" if self.position else self.source
        return f"{where}: {self.reason}"


@dataclass
class ImportReport:
    written: Counter[str] = field(default_factory=Counter)
    """Resources written, per type."""
    refused: list[Refusal] = field(default_factory=list)
    aborted: bool = False
    """Refusals under `abort`: nothing was written."""
    unresolved_kept: Counter[str] = field(default_factory=Counter)
    """References left unresolved by the operator's choice, per target type."""
    seconds: float = 0.0

    @property
    def total_written(self) -> int:
        return sum(self.written.values())


@dataclass
class _SourceState:
    source: Source
    checked: dict[int, Checked] = field(default_factory=dict)
    """By position."""
    unreadable: str | None = None
    """Why the file as a whole cannot be read: then it is refused whole."""


class _Refuse(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Importer:
    def __init__(
        self, gate: GateHooks, *, batch_size: int = BATCH_SIZE, workers: int | None = None
    ) -> None:
        self._s = gate.services
        self._actor = gate.actor
        self._scope = gate.scope
        self._decide = gate.decide
        self._make_record = gate.record
        self._batch_size = batch_size
        self._workers = workers if workers is not None else min(2, os.cpu_count() or 1)
        self._writer = BulkWriter(gate.services.vault)

    def run(
        self,
        sources: Sequence[Source],
        *,
        on_error: OnError = OnError.ABORT,
        keep_unresolved: bool = False,
        progress: ImportProgress | None = None,
    ) -> ImportReport:
        started = time.perf_counter()
        if self._scope.patient_ids is not None:
            # An import writes for the whole tenant; an actor held to some patients' records
            # (the store's compartment rule) is refused before anything is read.
            refusal = Forbidden("an import needs access to the whole tenant")
            self._audit_outcome(Outcome.DENIED, refusal.status, "import refused: Forbidden")
            raise refusal
        progress = progress or _Silent()
        report = ImportReport()
        states = self._check_all(sources, progress)
        plan = _Plan(states, keep_unresolved)
        plan.refuse_forbidden(self._decide)
        with self._s.reader.connect() as conn:
            plan.settle(conn, self._s, self._scope)
            conn.rollback()
        report.refused = plan.refusals()
        report.unresolved_kept = plan.unresolved_kept
        if report.refused and on_error is OnError.ABORT:
            report.aborted = True
            self._audit_refused(len(report.refused))
        else:
            self._write_all(plan, on_error, progress, report)
        report.seconds = time.perf_counter() - started
        return report

    # -- pass 1: check -------------------------------------------------------------

    def _check_all(self, sources: Sequence[Source], progress: ImportProgress) -> list[_SourceState]:
        """Check every item, in worker processes when the input is large enough to pay for them.

        The workers are forked: they inherit the loaded models and start in milliseconds, and
        they run only pure functions (no database, no keys, no logging).
        """
        hints = [source.count_hint() for source in sources]
        progress.phase("checking", None if None in hints else sum(h or 0 for h in hints))
        states = [_SourceState(source) for source in sources]
        size = sum(source.size_bytes for source in sources)
        if self._workers < 2 or size < POOL_THRESHOLD_BYTES:
            for state, chunk in self._chunks(states):
                _collect(state, check_items(chunk), progress)
            return states
        pending: deque[tuple[_SourceState, Future[list[Checked]]]] = deque()
        with ProcessPoolExecutor(self._workers, mp_context=get_context("fork")) as pool:
            for state, chunk in self._chunks(states):
                pending.append((state, pool.submit(check_items, chunk)))
                while len(pending) > 4 * self._workers:  # bounded: the input is streamed
                    done_state, future = pending.popleft()
                    _collect(done_state, future.result(), progress)
            while pending:
                done_state, future = pending.popleft()
                _collect(done_state, future.result(), progress)
        return states

    @staticmethod
    def _chunks(
        states: list[_SourceState],
    ) -> Iterator[tuple[_SourceState, list[tuple[int, bytes]]]]:
        """Every source's items in chunks, one stream across files (the pool never drains);
        a file that cannot be read is refused whole."""
        for state in states:
            try:
                for chunk in _chunks(state.source.items(), CHUNK):
                    yield state, chunk
            except UnreadableFile as exc:
                state.unreadable = str(exc)

    # -- pass 2: write -------------------------------------------------------------

    def _write_all(
        self, plan: _Plan, on_error: OnError, progress: ImportProgress, report: ImportReport
    ) -> None:
        progress.phase("writing", plan.good_count())
        try:
            self._write_types(plan, on_error, progress, report)
        except Exception as exc:
            # Batches already committed stay (each whole, with its audit entry); say where
            # the import stopped, in a transaction of its own.
            failed = not isinstance(exc, CareVaultError)
            outcome, status = (Outcome.FAILED, 500) if failed else (Outcome.INVALID, 422)
            detail = f"import stopped ({type(exc).__name__}) after {report.total_written} written"
            try:
                self._audit_outcome(outcome, status, detail)
            except Exception:
                log.exception("could not audit a stopped import")
            raise

    def _write_types(
        self, plan: _Plan, on_error: OnError, progress: ImportProgress, report: ImportReport
    ) -> None:
        references = References(set(plan.declared), plan.keep_unresolved)
        for rtype in plan.types_in_order():
            batch: list[tuple[_SourceState, Checked, dict[str, Any]]] = []
            ids: set[str | None] = set()
            for state, checked, body in plan.bodies(rtype):
                if checked.rid in ids or len(batch) >= self._batch_size:
                    self._flush(plan, rtype, batch, references, on_error, report, progress)
                    batch, ids = [], set()
                batch.append((state, checked, body))
                ids.add(checked.rid)
            self._flush(plan, rtype, batch, references, on_error, report, progress)

    def _flush(
        self,
        plan: _Plan,
        rtype: str,
        batch: list[tuple[_SourceState, Checked, dict[str, Any]]],
        references: References,
        on_error: OnError,
        report: ImportReport,
        progress: ImportProgress,
    ) -> None:
        while batch:
            bodies = [body for _, _, body in batch]
            refs = [plan.references_of(checked) for _, checked, _ in batch]
            try:
                versions = self._write_batch(rtype, bodies, refs, references)
            except RowRefused as exc:
                state, checked, _ = batch.pop(exc.index)
                report.refused.append(_refusal(state, checked.position, exc.message))
                references.known.discard((rtype, checked.rid or ""))
                if on_error is OnError.ABORT:
                    # Only a change to the tenant during the import gets here: the checks passed.
                    raise Unprocessable(
                        f"the import stopped at a {rtype} the tenant no longer admits; "
                        f"{report.total_written} resources were written before it"
                    ) from None
                continue
            report.written[rtype] += len(versions)
            progress.advance(len(versions))
            return

    def _write_batch(
        self,
        rtype: str,
        bodies: list[dict[str, Any]],
        refs: list[list[Key]],
        references: References,
    ) -> list[Version]:
        tenant_id = self._actor.tenant_id

        def job(conn: Connection) -> tuple[list[Version], AuditRecord]:
            now = isoformat(self._s.clock.now())
            versions = self._writer.write_batch(
                conn, tenant_id, rtype, bodies, now, references, refs
            )
            record = self._make_record(
                Action.IMPORT, rtype, Outcome.SUCCESS, 200, versions, (), "import batch"
            )
            return versions, record  # committed in the same transaction as the batch

        return self._s.audit.commit_with(self._s.committer, tenant_id, job)

    def _audit_refused(self, count: int) -> None:
        """An import refused as a whole: one entry, naming no resource (none was written)."""
        detail = f"import refused: {count} item(s) failed the checks; nothing written"
        self._audit_outcome(Outcome.INVALID, 422, detail)

    def _audit_outcome(self, outcome: Outcome, status: int, detail: str) -> None:
        record = self._make_record(Action.IMPORT, "", outcome, status, [], (), detail)
        record = replace(record, resource_type=None)  # about the import, not one type
        self._s.audit.commit(self._s.committer, self._actor.tenant_id, record)


class _Plan:
    """What the first pass learned, and the decisions taken on it before anything is written."""

    def __init__(self, states: list[_SourceState], keep_unresolved: bool) -> None:
        self.states = states
        self.keep_unresolved = keep_unresolved
        self.refused: dict[tuple[int, int], str] = {}
        self.unresolved_kept: Counter[str] = Counter()
        self.resolved: dict[str, str] = {}
        """Conditional reference → `Type/id`."""
        self.declared: dict[Key, int] = {}
        for s, state in enumerate(states):
            if state.unreadable is not None:
                state.checked = {0: Checked(0, b"", error=state.unreadable)}
            for position, checked in state.checked.items():
                if checked.error is not None:
                    self.refused[(s, position)] = checked.error
        self._rebuild_declared()

    def _good(self) -> Iterator[tuple[int, Checked]]:
        for s, state in enumerate(self.states):
            for position, checked in state.checked.items():
                if (s, position) not in self.refused:
                    yield s, checked

    def _rebuild_declared(self) -> None:
        self.declared = Counter((c.rtype or "", c.rid or "") for _, c in self._good())

    def good_count(self) -> int:
        return sum(1 for _ in self._good())

    def refuse_forbidden(self, decide: Decide) -> None:
        for rtype in sorted({c.rtype or "" for _, c in self._good()}):
            try:
                decide(rtype, "write")
            except CareVaultError as exc:
                for s, checked in list(self._good()):
                    if checked.rtype == rtype:
                        self.refused[(s, checked.position)] = exc.message
        self._rebuild_declared()

    def settle(self, conn: Connection, services: GateServices, scope: Scope) -> None:
        """Resolve conditional references and check every reference, until no refusal makes
        another (a refused Patient refuses its Encounters, and so on)."""
        db_matches: dict[str, tuple[str, list[str]] | str] = {}
        db_live: set[Key] = set()
        asked: set[Key] = set()
        while True:
            good = list(self._good())
            for reference in sorted({r for _, c in good for r in c.conditionals} - set(db_matches)):
                db_matches[reference] = _db_match(conn, services, scope, reference)
            outside = {ref for _, c in good for ref in c.refs if ref not in self.declared}
            db_live |= live_keys(conn, scope.tenant_id, outside - asked)
            asked |= outside
            by_identifier = self._identifier_index(good)
            self.resolved, failures = {}, {}
            for reference, found in db_matches.items():
                try:
                    self.resolved[reference] = _one(reference, found, by_identifier)
                except CareVaultError as exc:
                    failures[reference] = exc.message
            self.unresolved_kept = Counter()
            newly = 0
            for s, checked in good:
                reason = self._reference_problem(checked, failures, db_live)
                if reason is not None:
                    self.refused[(s, checked.position)] = reason
                    newly += 1
            self._rebuild_declared()
            if newly == 0:
                return

    def _reference_problem(
        self, checked: Checked, failures: dict[str, str], db_live: set[Key]
    ) -> str | None:
        for reference in checked.conditionals:
            if reference in failures:
                return failures[reference]
        for ref in checked.refs:
            if ref in self.declared or ref in db_live:
                continue
            if self.keep_unresolved and ref != ("Patient", checked.patient_id):
                self.unresolved_kept[ref[0]] += 1
                continue
            where = "in this import or the tenant"
            return f"a reference to {ref[0]} names no resource {where}"
        return None

    def _identifier_index(self, good: list[tuple[int, Checked]]) -> dict[tuple[str, str], set[str]]:
        """(type, "system|value") and (type, "*|value") → ids, over the import's good items."""
        index: dict[tuple[str, str], set[str]] = {}
        for _, checked in good:
            for system, value in checked.identifiers:
                for token in (f"{system}|{value}", f"*|{value}"):
                    index.setdefault((checked.rtype or "", token), set()).add(checked.rid or "")
        return index

    def references_of(self, checked: Checked) -> list[Key]:
        """What the written body references: its local references, and its conditional
        ones as resolved."""
        resolved = [self.resolved[c].split("/", 1) for c in checked.conditionals]
        return [*checked.refs, *((t, i) for t, i in resolved)]

    def refusals(self) -> list[Refusal]:
        return [
            _refusal(self.states[s], position, reason)
            for (s, position), reason in sorted(self.refused.items())
        ]

    def types_in_order(self) -> list[str]:
        present = {c.rtype or "" for _, c in self._good()}
        first = [t for t in TYPE_ORDER if t in present]
        return first + sorted(present - set(first))

    def bodies(self, rtype: str) -> Iterator[tuple[_SourceState, Checked, dict[str, Any]]]:
        """The good items of one type, read again (streamed) with conditional references
        resolved; a file that changed since the check is refused whole."""
        for s, state in enumerate(self.states):
            wanted = {
                c.position: c
                for c in state.checked.values()
                if c.rtype == rtype and (s, c.position) not in self.refused
            }
            if not wanted:
                continue
            for item in state.source.items():
                checked = wanted.get(item.position)
                if checked is None:
                    continue
                if digest(item.raw) != checked.digest:
                    raise Invalid(f"{state.source.name} changed during the import")
                body = orjson.loads(item.raw)
                if checked.conditionals:
                    body = _resolve_in(body, self.resolved)
                yield state, checked, body


def _db_match(
    conn: Connection, services: GateServices, scope: Scope, reference: str
) -> tuple[str, list[str]] | str:
    """(type, ids the tenant's live resources give), or why the reference is refused."""
    try:
        parsed = conditional.parse(reference)
        assert parsed is not None
        rtype, params = parsed
        return rtype, conditional.matching_ids(conn, services.store, scope, rtype, params)
    except CareVaultError as exc:
        return exc.message


def _one(
    reference: str,
    found: tuple[str, list[str]] | str,
    by_identifier: dict[tuple[str, str], set[str]],
) -> str:
    """`Type/id` of the one resource a conditional reference names, in the tenant or the
    import; Unprocessable for none and PreconditionFailed for several (as the API answers)."""
    if isinstance(found, str):
        raise Unprocessable(found)
    rtype, ids = found
    matches = set(ids) | _import_matches(reference, rtype, by_identifier)
    if not matches:
        raise Unprocessable(f"a conditional reference to {rtype} matches no resource")
    if len(matches) > 1:
        raise PreconditionFailed(f"a conditional reference to {rtype} matches several resources")
    return f"{rtype}/{matches.pop()}"


def _import_matches(
    reference: str, rtype: str, by_identifier: dict[tuple[str, str], set[str]]
) -> set[str]:
    """Ids of the import's resources an identifier search names (other searches see only
    the tenant: the import's own resources are not indexed yet)."""
    parsed = conditional.parse(reference)
    assert parsed is not None
    _, params = parsed
    if any(name != "identifier" for name, _ in params):
        return set()
    matched: set[str] | None = None
    for _, value in params:
        token = value if "|" in value else f"*|{value}"
        ids = by_identifier.get((rtype, token), set())
        matched = ids if matched is None else matched & ids
    return set(matched or ())


def _resolve_in(node: Any, resolved: dict[str, str]) -> Any:
    """Point conditional references at their one match, in place (`display` and the rest of
    each Reference kept)."""
    if isinstance(node, dict):
        reference = node.get("reference")
        if isinstance(reference, str) and reference in resolved:
            node["reference"] = resolved[reference]
        children: Iterable[Any] = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return node
    for child in children:
        if isinstance(child, dict | list):
            _resolve_in(child, resolved)
    return node


def _collect(state: _SourceState, results: list[Checked], progress: ImportProgress) -> None:
    for checked in results:
        state.checked[checked.position] = checked
    progress.advance(len(results))


def _refusal(state: _SourceState, position: int, reason: str) -> Refusal:
    return Refusal(state.source.name, state.source.unit, position, reason)


def _chunks(items: Iterator[Item], size: int) -> Iterator[list[tuple[int, bytes]]]:
    chunk: list[tuple[int, bytes]] = []
    for item in items:
        chunk.append((item.position, item.raw))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
