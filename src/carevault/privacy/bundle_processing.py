"""Batch and transaction Bundles, through the gate's steps.

A transaction is one writer job, so one database transaction: every entry is checked
(decide, validate) before it runs, then DELETE, POST, PUT, GET as FHIR orders them, with
creates ordered so each comes after the new resources it references. Any failing entry
rolls back everything, and the refusal names the entry. A batch runs its writes in one
writer job too, each entry in its own savepoint, and answers each entry on its own.
Every change is audited in the transaction that makes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import (
    CareVaultError,
    Gone,
    Invalid,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from carevault.privacy import conditional_writes as cw
from carevault.privacy.bundle_entries import METHODS, BadEntry, Entry, at_entry, entries
from carevault.privacy.gate_hooks import GateHooks, refusal_record
from carevault.records import conditional, validation
from carevault.records.bundle_refs import (
    URN_UUID,
    is_conditional,
    reference_values,
    rewrite,
    write_order,
)
from carevault.records.store import Version

DEFAULT_MAX_ENTRIES = 1000
log = logging.getLogger("carevault.bundles")


@dataclass(frozen=True)
class EntryResult:
    index: int
    status: int
    version: Version | None = None
    """What the entry wrote or read, cut to the minimum necessary."""
    matches: list[Version] | None = None
    """A search entry's first page (through the gate's search: already cut)."""
    total: int | None = None
    included: list[Version] = field(default_factory=list)
    error: CareVaultError | None = None


@dataclass(frozen=True)
class BundleResponse:
    kind: str
    """transaction-response or batch-response."""
    entries: list[EntryResult]


class EntryServerError(CareVaultError):
    status, code = 500, "exception"


class _EntryFailed(Exception):
    """Carries a failing transaction entry out of the writer job, which rolls everything back."""

    def __init__(self, entry: Entry, error: CareVaultError) -> None:
        super().__init__(error.message)
        self.entry, self.error = entry, error


# -- transaction -----------------------------------------------------------------


def transaction(
    hooks: GateHooks, bundle: Any, max_entries: int = DEFAULT_MAX_ENTRIES
) -> BundleResponse:
    """All entries or none; the refusal of the first failing entry, naming it, otherwise."""
    try:
        parsed = entries(bundle, "transaction", max_entries)
    except CareVaultError as exc:
        hooks.audit_refusal(Action.CREATE, "Bundle", (), exc, "transaction")
        raise
    checked: list[Entry] = []
    for item in parsed:
        entry = _checked(hooks, item)
        if isinstance(entry, _Refused):
            detail = f"transaction; Bundle.entry[{entry.index}]"
            hooks.audit_refusal(entry.action, entry.rtype, entry.ids, entry.error, detail)
            raise entry.error
        checked.append(entry)
    try:
        ids, targets, order = _plan(checked)
    except CareVaultError as exc:
        hooks.audit_refusal(Action.CREATE, "Bundle", (), exc, "transaction")
        raise
    if not checked:
        return BundleResponse("transaction-response", [])

    reads = _with_method(checked, "GET")

    def job(conn: Connection) -> list[EntryResult]:
        run = _Run(hooks, conn, "transaction", ids, targets)
        by_index = {e.index: e for e in checked}
        results = [run.step(e, run.delete) for e in _with_method(checked, "DELETE")]
        for entry in checked:
            if entry.if_none_exist is not None or (entry.method == "PUT" and entry.rid is None):
                run.step(entry, run.resolve_target)
        results += [run.step(by_index[i], run.write) for i in order]
        results += [run.step(e, run.read) for e in reads if e.rid is not None]
        hooks.services.audit.append(conn, hooks.tenant_id, run.records)
        return sorted(results, key=lambda r: r.index)

    try:
        results = hooks.services.committer.submit(job)
    except _EntryFailed as failed:
        entry = failed.entry
        hooks.audit_refusal(
            entry.action, entry.rtype, entry.ids, failed.error, f"transaction; {entry.detail}"
        )
        raise failed.error from None
    except CareVaultError as exc:
        hooks.audit_refusal(Action.CREATE, "Bundle", (), exc, "transaction")
        raise
    except Exception:
        hooks.audit_refusal(Action.CREATE, "Bundle", (), None, "transaction")
        raise
    answered = [_cut(hooks, r) for r in results]
    # Searches go through the gate's own search (includes, permissions, paging) once the
    # writes are durable; a failing search is answered in its entry, the writes stand.
    answered += [_gate_read(hooks, e) for e in reads if e.rid is None]
    return BundleResponse("transaction-response", sorted(answered, key=lambda r: r.index))


def _plan(checked: list[Entry]) -> tuple[dict[int, str], dict[str, str], list[int]]:
    """Ids for plain creates, fullUrl → Type/id where already known, and the write order."""
    ids: dict[int, str] = {}
    targets: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    for entry in checked:
        if entry.rid is not None and entry.method in ("PUT", "DELETE"):
            if (entry.rtype, entry.rid) in seen:
                raise at_entry(entry.index, Invalid("another entry changes the same resource"))
            seen.add((entry.rtype, entry.rid))
        if entry.method == "POST" and entry.if_none_exist is None:
            ids[entry.index] = cw.new_id()
        rid = ids.get(entry.index) or (entry.rid if entry.method == "PUT" else None)
        if entry.full_url and rid is not None:
            targets[entry.full_url] = f"{entry.rtype}/{rid}"
    writes = [e for e in checked if e.method in ("POST", "PUT")]
    return ids, targets, _write_order(writes)


def _write_order(writes: list[Entry]) -> list[int]:
    """Each write after the new resources it references: a must for POSTs (they do not exist
    yet), a preference for PUTs (they may exist already, so a cycle among them is fine)."""
    by_ref = {e.full_url: e for e in writes if e.full_url}
    by_ref.update({f"{e.rtype}/{e.rid}": e for e in writes if e.rid is not None})
    must: dict[int, set[int]] = {}
    prefer: dict[int, set[int]] = {}
    for entry in writes:
        for ref in set(reference_values(entry.resource)):
            target = by_ref.get(ref)
            if target is None and ref.startswith(URN_UUID):
                problem = Unprocessable("a urn:uuid reference names no entry of this transaction")
                raise at_entry(entry.index, problem)
            if target is not None:
                edges = must if target.method == "POST" else prefer
                edges.setdefault(entry.index, set()).add(target.index)
    method_of = {e.index: e.method for e in writes}

    def fhir_order(index: int) -> tuple[int, int]:
        return METHODS.index(method_of[index]), index

    return write_order(list(method_of), fhir_order, must, prefer)


# -- batch -----------------------------------------------------------------------


def batch(hooks: GateHooks, bundle: Any, max_entries: int = DEFAULT_MAX_ENTRIES) -> BundleResponse:
    """Each entry on its own: a failing entry is answered with its OperationOutcome and
    changes nothing, the others go ahead."""
    try:
        parsed = entries(bundle, "batch", max_entries)
    except CareVaultError as exc:
        hooks.audit_refusal(Action.CREATE, "Bundle", (), exc, "batch")
        raise
    results: dict[int, EntryResult] = {}
    refusals: list[AuditRecord] = []
    writes: list[Entry] = []
    reads: list[Entry] = []
    for item in parsed:
        entry = _checked(hooks, item)
        if isinstance(entry, _Refused):
            results[entry.index] = _failed(entry.index, entry.error)
            detail = f"batch; Bundle.entry[{entry.index}]"
            refusals.append(
                refusal_record(hooks, entry.action, entry.rtype, entry.ids, entry.error, detail)
            )
        else:
            (reads if entry.method == "GET" else writes).append(entry)
    if writes or refusals:

        def job(conn: Connection) -> list[EntryResult]:
            run = _Run(hooks, conn, "batch", {}, {})
            done = [run.isolated(e) for e in sorted(writes, key=_fhir_order)]
            hooks.services.audit.append(conn, hooks.tenant_id, [*refusals, *run.records])
            return done

        for result in hooks.services.committer.submit(job):
            results[result.index] = _cut(hooks, result)
    for entry in reads:
        results[entry.index] = _gate_read(hooks, entry)
    return BundleResponse("batch-response", [results[i] for i in sorted(results)])


def _gate_read(hooks: GateHooks, entry: Entry) -> EntryResult:
    """A batch's GET is the gate's own read or search (audited there)."""
    try:
        if entry.rid is not None:
            return EntryResult(entry.index, 200, version=hooks.read(entry.rtype, entry.rid))
        found = hooks.search(entry.rtype, list(entry.query or ()))
        return EntryResult(
            entry.index, 200, matches=found.resources, total=found.total, included=found.included
        )
    except CareVaultError as exc:
        return _failed(entry.index, at_entry(entry.index, exc))


# -- shared steps ----------------------------------------------------------------


@dataclass(frozen=True)
class _Refused:
    """An entry refused before it ran: its error is already tagged with the entry."""

    index: int
    error: CareVaultError
    rtype: str
    action: Action
    ids: tuple[str, ...] = ()


def _checked(hooks: GateHooks, item: Entry | BadEntry) -> Entry | _Refused:
    """decide and validate, in the caller's thread (the writer thread is shared by all)."""
    if isinstance(item, BadEntry):
        return _Refused(item.index, item.error, item.rtype, Action.CREATE)
    try:
        hooks.decide(item.rtype, item.permission)
        if item.resource is not None:
            validation.validate(item.rtype, item.resource)
    except CareVaultError as exc:
        error = at_entry(item.index, exc)
        return _Refused(item.index, error, item.rtype, item.action, item.ids)
    return item


class _Run:
    """One writer job's state: where each fullUrl now points, and the audit entries so far."""

    def __init__(
        self,
        hooks: GateHooks,
        conn: Connection,
        kind: str,
        ids: dict[int, str],
        targets: dict[str, str],
    ) -> None:
        self.hooks, self.conn, self.kind = hooks, conn, kind
        self.now = isoformat(hooks.services.clock.now())
        self.ids = dict(ids)
        self.targets = dict(targets)
        self.matched: dict[int, str] = {}
        self.resolved: dict[str, str] = {}
        self.records: list[AuditRecord] = []
        self.store = hooks.services.store

    def step(self, entry: Entry, do: Callable[[Entry], EntryResult | None]) -> EntryResult:
        try:
            result = do(entry)
        except CareVaultError as exc:
            raise _EntryFailed(entry, at_entry(entry.index, exc)) from None
        return result or EntryResult(entry.index, 0)

    def isolated(self, entry: Entry) -> EntryResult:
        """A batch entry in its own savepoint: its failure undoes only itself."""
        savepoint = self.conn.begin_nested()
        mark = len(self.records)
        try:
            if entry.if_none_exist is not None or (entry.method == "PUT" and entry.rid is None):
                self.resolve_target(entry)
            result = self.delete(entry) if entry.method == "DELETE" else self.write(entry)
            savepoint.commit()
            return result
        except Exception as exc:
            savepoint.rollback()
            del self.records[mark:]
            known = exc if isinstance(exc, CareVaultError) else None
            if known is None:  # the type only: a driver's message may quote the values
                log.error("a batch entry failed", extra={"error": type(exc).__name__})
            detail = f"batch; {entry.detail}"
            record = refusal_record(self.hooks, entry.action, entry.rtype, entry.ids, known, detail)
            self.records.append(record)
            return _failed(entry.index, at_entry(entry.index, known or EntryServerError("failed")))

    def resolve_target(self, entry: Entry) -> None:
        """Where a conditional create or update lands, before anything refers to it."""
        if entry.if_none_exist is not None:
            found = cw.single_match(
                self.conn, self.hooks, entry.rtype, entry.if_none_exist, "ifNoneExist"
            )
            if found is not None:
                self.matched[entry.index] = found
            rid = found or self.ids.setdefault(entry.index, cw.new_id())
        else:
            query, body = entry.query or (), entry.resource or {}
            rid = cw.update_target(self.conn, self.hooks, entry.rtype, query, body)
            self.ids[entry.index] = rid
        if entry.full_url:
            self.targets[entry.full_url] = f"{entry.rtype}/{rid}"

    def write(self, entry: Entry) -> EntryResult:
        if entry.index in self.matched:  # ifNoneExist found it: nothing is written
            version = cw.read_live(self.conn, self.hooks, entry.rtype, self.matched[entry.index])
            return self._done(entry, 200, version, "if-none-exist matched")
        body = rewrite(entry.resource, self._reference)
        if entry.method == "POST":
            rid = self.ids.get(entry.index) or cw.new_id()
            return self._done(
                entry, 201, cw.put_new(self.conn, self.hooks, entry.rtype, rid, body, self.now)
            )
        if entry.rid is None:  # conditional: the id is the match's (or the body's, or new)
            body = {**body, "id": self.ids[entry.index]}
        version, created = self.store.update(
            self.conn, self.hooks.scope, entry.rtype, entry.rid or body["id"], body, self.now,
            if_match=entry.if_match,
        )  # fmt: skip
        return self._done(entry, 201 if created else 200, version)

    def delete(self, entry: Entry) -> EntryResult:
        rid = entry.rid
        if rid is None:
            query = entry.query or ()  # never empty: bundle_entries.condition saw to it
            rid = cw.single_match(self.conn, self.hooks, entry.rtype, query, "a conditional delete")
        version = None
        if rid is not None:
            if entry.if_match is not None:
                current = self.store.read(self.conn, self.hooks.scope, entry.rtype, rid)
                if current is None or current.version_id != entry.if_match:
                    raise PreconditionFailed("the resource has changed since that version")
            version = self.store.delete(self.conn, self.hooks.scope, entry.rtype, rid, self.now)
        return self._done(entry, 204, version, ids=(rid,) if rid else ())

    def read(self, entry: Entry) -> EntryResult:
        """A transaction's read (GET Type/id) sees the transaction's own writes."""
        found = self.store.read(self.conn, self.hooks.scope, entry.rtype, entry.rid or "")
        if found is None:
            raise NotFound(f"{entry.rtype}/{entry.rid} is not known")
        if found.deleted:
            raise Gone(f"{entry.rtype}/{entry.rid} was deleted")
        return self._done(entry, 200, found)

    def _reference(self, ref: str) -> str:
        target = self.targets.get(ref)
        if target is not None:
            return target
        if ref.startswith(URN_UUID):
            raise Unprocessable(f"a urn:uuid reference names no entry of this {self.kind}")
        if not is_conditional(ref):
            return ref
        if ref not in self.resolved:
            parsed = conditional.parse(ref)
            if parsed is None:
                return ref
            rtype, params = parsed
            rid = conditional.resolve(self.conn, self.store, self.hooks.scope, rtype, params)
            self.resolved[ref] = f"{rtype}/{rid}"
        return self.resolved[ref]

    def _done(
        self,
        entry: Entry,
        status: int,
        version: Version | None,
        note: str | None = None,
        *,
        ids: tuple[str, ...] | None = None,
    ) -> EntryResult:
        self._audit(
            entry, status, [version] if version else [], entry.ids if ids is None else ids, note
        )
        return EntryResult(entry.index, status, version=version)

    def _audit(
        self,
        entry: Entry,
        status: int,
        versions: list[Version],
        ids: tuple[str, ...],
        note: str | None = None,
    ) -> None:
        detail = f"{self.kind}; {entry.detail}" + (f"; {note}" if note else "")
        self.records.append(
            self.hooks.record(
                entry.action, entry.rtype, Outcome.SUCCESS, status, versions, ids, detail
            )
        )


def _with_method(checked: Iterable[Entry], method: str) -> list[Entry]:
    return [e for e in checked if e.method == method]


def _fhir_order(entry: Entry) -> tuple[int, int]:
    return METHODS.index(entry.method), entry.index


def _failed(index: int, error: CareVaultError) -> EntryResult:
    return EntryResult(index, error.status, error=error)


def _cut(hooks: GateHooks, result: EntryResult) -> EntryResult:
    """Minimum necessary, outside the writer thread."""
    if result.version is not None:
        result = replace(result, version=hooks.minimum(result.version))
    return result
