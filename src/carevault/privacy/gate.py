"""THE GATE. Every read, search, write and delete of PHI passes here, in this order:

decide (tenant, role permission, default deny) → scope in SQL → decrypt →
minimum necessary → audit. A change is audited in its own transaction; a refusal
or failure is audited in a transaction of its own after the rollback. Nothing is
returned before its audit entry is durable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any, TypeVar

from sqlalchemy import Connection

from carevault.audit.models import Action, AuditRecord, Outcome, RequestInfo
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Forbidden, Gone, NotFound
from carevault.identity.models import Actor
from carevault.privacy import (
    bundle_processing,
    conditional_writes,
    decisions,
    exporter,
    importer,
    segmentation,
    soft_delete,
)
from carevault.privacy import everything as everything_op
from carevault.privacy import reach as reach_rules
from carevault.privacy import type_history as type_history_op
from carevault.privacy import validation_service as validation_op
from carevault.privacy.gate_hooks import GateHooks, refusal_outcome
from carevault.privacy.search_flow import SearchFlow
from carevault.privacy.services import GateServices
from carevault.records import validation
from carevault.records.params import SUPPORTED_TYPES
from carevault.records.searching import Page
from carevault.records.store import Scope, Version

T = TypeVar("T")
_SINGLE_READS = frozenset({Action.READ, Action.VREAD, Action.HISTORY})
log = logging.getLogger("carevault.gate")

ResourceView = Version
"""What leaves the gate: one version, decrypted and cut to the minimum necessary."""


@dataclass(frozen=True)
class SearchResult:
    resources: list[ResourceView]
    total: int | None  # None under _total=none
    next_page: str | None
    ignored: tuple[str, ...]
    included: list[ResourceView] = field(default_factory=list)  # _include / _revinclude
    warnings: tuple[str, ...] = ()  # includes left out for lack of permission
    summary_count: bool = False  # _summary=count: the total only


class Gate:
    def __init__(self, services: GateServices, actor: Actor, request: RequestInfo) -> None:
        soft_delete.honour(services)  # hidden (soft-deleted) records answer 404 to keyed access
        self._s = services
        self.actor = actor
        self._request = request
        self._reach: reach_rules.Reach | None = None  # resolved at the first use (reach.py)
        self._profile = services.minimum_necessary.profile_for(actor)
        # A type the profile withholds is not readable: includes, chains, $everything and
        # exports leave it out as they do any type the actor may not read.
        self.actor = replace(
            actor, permissions=self._profile.readable_permissions(actor.permissions)
        )

    @property
    def _scope(self) -> Scope:
        """The actor's reach as a SQL scope: the tenant, and for limited actors the patients."""
        return self._resolve().scope

    def _resolve(
        self, conn: Connection | None = None, only: tuple[str, str] | None = None
    ) -> reach_rules.Reach:
        if self._reach is None:
            now = isoformat(self._s.clock.now())
            if conn is not None:
                self._reach = reach_rules.resolve(conn, self.actor, now, only)
            else:
                with self._s.reader.connect() as own:
                    self._reach = reach_rules.resolve(own, self.actor, now)
                    own.rollback()
        return self._reach

    # -- reads -----------------------------------------------------------------

    def read(self, rtype: str, rid: str) -> ResourceView:
        def work(conn: Connection) -> Version:
            found = self._s.store.read(conn, self._scope, rtype, rid)
            if found is None:
                raise NotFound(f"{rtype}/{rid} is not known")
            if found.deleted:
                raise Gone(f"{rtype}/{rid} was deleted")
            return found

        version = self._read(Action.READ, rtype, "read", work, ids=(rid,))
        return self._minimum(version)

    def vread(self, rtype: str, rid: str, vid: int) -> ResourceView:
        def work(conn: Connection) -> Version:
            found = self._s.store.vread(conn, self._scope, rtype, rid, vid)
            if found is None:
                raise NotFound(f"{rtype}/{rid} has no such version")
            if found.deleted:
                raise Gone(f"{rtype}/{rid} version {vid} is a deletion")
            return found

        return self._minimum(self._read(Action.VREAD, rtype, "read", work, ids=(rid,)))

    def history(self, rtype: str, rid: str) -> list[ResourceView]:
        def work(conn: Connection) -> list[Version]:
            versions = self._s.store.history(conn, self._scope, rtype, rid)
            if not versions:
                raise NotFound(f"{rtype}/{rid} is not known")
            return versions

        versions = self._read(Action.HISTORY, rtype, "read", work, ids=(rid,))
        return [self._minimum(v) for v in versions]

    def search(
        self,
        rtype: str,
        params: Sequence[tuple[str, str]],
        *,
        page: str | None = None,
        lenient: bool = False,
    ) -> SearchResult:
        flow = SearchFlow(self._s, self.actor)  # paging, snapshots, includes: search_flow.py
        state = None
        if page is not None:
            try:
                state = flow.open(rtype, page)
            except CareVaultError as exc:
                self.audit_refusal(Action.SEARCH, rtype, (), exc, "params=_page")
                raise
            params = state.params
        names = sorted({name for name, _ in params})

        def work(conn: Connection) -> Page:
            # what security labels hide is left out in SQL (segmentation.py), with its total
            hide = segmentation.search_exclusions(conn, self._resolve(conn), self.actor, rtype)
            return flow.page(conn, self._scope, rtype, [*params, *hide], state, lenient)

        # the audit entry names every match and every included resource, and their patients
        found = self._read(Action.SEARCH, rtype, "read", work, detail="params=" + ",".join(names),
                           params=params)  # fmt: skip
        next_page = flow.next_page(rtype, params, state, found)
        views = [flow.elements(self._minimum(v), found.options) for v in found.versions]
        included = [self._minimum(v) for v in found.included]
        return SearchResult(
            views, found.total, next_page, found.ignored, included, flow.warnings(found),
            found.options.summary_count,
        )  # fmt: skip

    # -- writes ----------------------------------------------------------------

    def create(self, rtype: str, body: Any) -> ResourceView:
        def work(conn: Connection, now: str) -> Version:
            return self._s.store.create(conn, self._scope, rtype, body, now)

        return self._minimum(self._write(Action.CREATE, rtype, "write", work, body=body))

    def update(
        self, rtype: str, rid: str, body: Any, *, if_match: int | None = None
    ) -> tuple[ResourceView, bool]:
        created = False

        def work(conn: Connection, now: str) -> Version:
            nonlocal created
            version, created = self._s.store.update(
                conn, self._scope, rtype, rid, body, now, if_match=if_match
            )
            return version

        version = self._write(Action.UPDATE, rtype, "write", work, ids=(rid,), body=body)
        return self._minimum(version), created

    def delete(self, rtype: str, rid: str) -> ResourceView | None:
        """Tombstone the resource; None when there was nothing to delete (FHIR: still 2xx)."""

        def work(conn: Connection, now: str) -> Version | None:
            return self._s.store.delete(conn, self._scope, rtype, rid, now)

        return self._write(Action.DELETE, rtype, "delete", work, ids=(rid,))

    # -- conditional interactions and bundles ----------------------------------

    def create_unless_exists(
        self, rtype: str, body: Any, if_none_exist: str
    ) -> tuple[ResourceView, bool]:
        """Conditional create; returns the resource and whether it was created."""
        return conditional_writes.create(self._hooks(), rtype, body, if_none_exist)

    def update_where(
        self, rtype: str, query: str, body: Any, *, if_match: int | None = None
    ) -> tuple[ResourceView, bool]:
        """Conditional update (PUT Type?query); returns the version and whether it created."""
        return conditional_writes.update(self._hooks(), rtype, query, body, if_match=if_match)

    def delete_where(self, rtype: str, query: str) -> ResourceView | None:
        """Conditional delete (DELETE Type?query): one match or none, else 412."""
        return conditional_writes.delete(self._hooks(), rtype, query)

    def transaction(
        self, bundle: Any, *, max_entries: int = bundle_processing.DEFAULT_MAX_ENTRIES
    ) -> bundle_processing.BundleResponse:
        """A transaction Bundle: all entries in one database transaction, or none."""
        return bundle_processing.transaction(self._hooks(), bundle, max_entries)

    def batch(
        self, bundle: Any, *, max_entries: int = bundle_processing.DEFAULT_MAX_ENTRIES
    ) -> bundle_processing.BundleResponse:
        """A batch Bundle: each entry answered on its own."""
        return bundle_processing.batch(self._hooks(), bundle, max_entries)

    def _hooks(self) -> GateHooks:
        return GateHooks(
            self._s, self.actor, self._scope, self._decide, self._record, self.audit_refusal,
            self._minimum, self._read, self.read, self.search,
            partial(segmentation.screen_of, self._s.reader, reach=self._resolve, actor=self.actor),
        )  # fmt: skip

    # -- export ----------------------------------------------------------------

    def export(
        self,
        types: Sequence[str] | None = None,
        *,
        patients: Collection[str] | None = None,
        patient_level: bool = False,
        since: str | datetime | None = None,
        batch_size: int = exporter.EXPORT_BATCH,
    ) -> exporter.ExportStream:
        """Stream what the actor may read, by type, audited per patient (privacy/exporter.py)."""
        request = exporter.ExportRequest(types, patients, patient_level, since)
        return exporter.open_export(self._hooks(), request, batch_size)

    # -- import ----------------------------------------------------------------

    def import_resources(
        self,
        sources: Sequence[importer.Source],
        *,
        on_error: importer.OnError = importer.OnError.ABORT,
        keep_unresolved: bool = False,
        progress: importer.ImportProgress | None = None,
        workers: int | None = None,
    ) -> importer.ImportReport:
        """Write FHIR files under their own ids: decided per type, validated, written in
        batches audited in the same transaction (privacy/importer.py)."""
        run = importer.Importer(self._hooks(), workers=workers)
        return run.run(
            sources, on_error=on_error, keep_unresolved=keep_unresolved, progress=progress
        )

    # -- operations (privacy/type_history.py, everything.py, validation_service.py) ----

    def history_type(
        self, rtype: str, *, since: str | None = None, count: str | None = None,
        page: str | None = None,
    ) -> type_history_op.HistoryResult:  # fmt: skip
        """Every version of the type's resources the actor may see, newest first, paged."""
        return type_history_op.history_type(
            self._hooks(), rtype, since=since, count=count, page=page
        )

    def everything(
        self, patient_id: str, request: everything_op.EverythingRequest
    ) -> everything_op.EverythingResult:
        """Patient/$everything: the compartment the actor may read, and the directory it cites."""
        scope = self._scope
        if scope.patient_ids is not None and patient_id not in scope.patient_ids:
            try:
                with self._s.reader.connect() as conn:
                    self._refuse_out_of_reach(conn, "Patient", (patient_id,))
            except Forbidden as exc:
                self.audit_refusal(Action.EVERYTHING, "Patient", (patient_id,), exc,
                                   "Patient/$everything")  # fmt: skip
                raise
        return everything_op.everything(self._hooks(), patient_id, request)

    def validate(
        self, rtype: str, payload: Any, *, rid: str | None = None, mode: str | None = None
    ) -> list[validation_op.ValidationIssue]:
        """$validate: decide write permission, check structurally and strictly, store nothing."""
        return validation_op.validate_resource(self._hooks(), rtype, payload, rid=rid, mode=mode)

    # -- the flow ----------------------------------------------------------------

    def _decide(self, rtype: str, action: str) -> None:
        """Default deny: the type must be served and the actor's permissions must include it."""
        if rtype not in SUPPORTED_TYPES:
            raise NotFound(f"{rtype} is not a resource type served here")
        if action == "read" and self._profile.withholds(rtype):
            raise Forbidden(
                f"the minimum necessary for your role and purpose of use withholds {rtype}"
            )
        # decisions.py: permission, tenant, purpose; which patients: the scope (reach.py)
        target = decisions.Target(self.actor.tenant_id, rtype, action)
        subject = self._resolve().subject
        decision = decisions.decide(subject, target)
        # the deployment's policy lists the only purposes PHI is used for
        why = decisions.outside_policy(subject, rtype, self._s.purposes_in_effect())
        if decision.allowed and why:
            raise Forbidden(why)
        if not decision.allowed:
            error = NotFound if decision.status is decisions.Status.NOT_FOUND else Forbidden
            raise error(decision.reason)

    def _refuse_out_of_reach(self, conn: Connection, rtype: str, ids: tuple[str, ...]) -> None:
        """A break-glass user asking for a record beyond their reach is told how to reach it
        (403); everyone else gets the plain 404, like a record that does not exist."""
        reach = self._resolve(conn)
        if len(ids) != 1 or decisions.refusal_status(reach.subject) is decisions.Status.NOT_FOUND:
            return
        if reach_rules.out_of_reach(conn, reach, rtype, ids[0]):
            raise Forbidden(decisions.BREAK_GLASS_MESSAGE)

    def _read(
        self,
        action: Action,
        rtype: str,
        permission: str,
        work: Callable[[Connection], T],
        *,
        ids: tuple[str, ...] = (),
        detail: str | None = None,
        params: Sequence[tuple[str, str]] | None = None,
    ) -> T:
        # One resource: its patient's reach is enough (a point query, not the care set).
        single = len(ids) == 1 and action in _SINGLE_READS and self._reach is None
        try:
            try:
                with self._s.reader.connect() as conn:
                    # the reach is read in the same snapshot as the data
                    self._resolve(conn, (rtype, ids[0]) if single else None)
                    self._decide(rtype, permission)
                    try:
                        # security labels (segmentation.py): what they hide looks missing
                        result = segmentation.screen_read(
                            conn, self._s.store, self._resolve(conn), self.actor, action, rtype,
                            work(conn), params,
                        )  # fmt: skip
                    except NotFound:
                        self._refuse_out_of_reach(conn, rtype, ids)
                        raise
                    conn.rollback()
            except CareVaultError as exc:
                self.audit_refusal(action, rtype, ids, exc, detail)
                raise
            except Exception:
                self.audit_refusal(action, rtype, ids, None, detail)
                raise
            versions = _versions(result)
            record = self._record(action, rtype, Outcome.SUCCESS, 200, versions, ids, detail)
            self._s.audit.commit(self._s.committer, self.actor.tenant_id, record)
            return result
        finally:
            if single:
                self._reach = None  # resolved for one resource: never reused more widely

    def _write(
        self,
        action: Action,
        rtype: str,
        permission: str,
        work: Callable[[Connection, str], T],
        *,
        ids: tuple[str, ...] = (),
        body: Any = None,
    ) -> T:
        try:
            self._decide(rtype, permission)
            if body is not None:
                # Validate here, in the caller's thread: the writer thread is shared by all.
                validation.validate(rtype, body)
        except CareVaultError as exc:
            self.audit_refusal(action, rtype, ids, exc, None)
            raise

        def job(conn: Connection) -> tuple[T, AuditRecord]:
            now = isoformat(self._s.clock.now())
            result = work(conn, now)
            status = {Action.CREATE: 201, Action.DELETE: 204}.get(action, 200)
            record = self._record(
                action, rtype, Outcome.SUCCESS, status, _versions(result), ids, None
            )
            return result, record  # committed in the same transaction as the change

        try:
            return self._s.audit.commit_with(self._s.committer, self.actor.tenant_id, job)
        except CareVaultError as exc:
            self.audit_refusal(action, rtype, ids, exc, None)
            raise
        except Exception:
            self.audit_refusal(action, rtype, ids, None, None)
            raise

    def _minimum(self, version: Version) -> Version:
        if self._profile.is_full or version.body is None:
            return version
        return replace(version, body=self._profile.apply(version.resource_type, version.body))

    def audit_refusal(
        self,
        action: Action,
        rtype: str,
        ids: tuple[str, ...],
        exc: CareVaultError | None,
        detail: str | None = None,
    ) -> None:
        """Audit a refusal in its own transaction. Faces call it for input they reject
        before the gate is reached (malformed JSON, a bad If-Match)."""
        if exc is None:
            outcome, status, why = Outcome.FAILED, 500, "server error"
        else:
            outcome, status, why = refusal_outcome(exc.status), exc.status, type(exc).__name__
        record = self._record(
            action, rtype, outcome, status, [], ids, f"{detail}; {why}" if detail else why
        )
        try:
            self._s.audit.commit(self._s.committer, self.actor.tenant_id, record)
        except Exception:
            # The refusal is still returned; the log says the audit write failed (no PHI in it).
            log.exception(
                "could not audit a refusal", extra={"request_id": self._request.request_id}
            )
            raise

    def _record(
        self,
        action: Action,
        rtype: str,
        outcome: Outcome,
        status: int,
        versions: list[Version],
        ids: tuple[str, ...],
        detail: str | None,
    ) -> AuditRecord:
        reach = self._resolve()
        patients = {v.patient_id for v in versions if v.patient_id}
        return AuditRecord(
            recorded_at=isoformat(self._s.clock.now()),
            actor_id=self.actor.user_id,
            actor_role=self.actor.kind,
            on_behalf_of=reach.on_behalf_of(patients),
            action=action,
            outcome=outcome,
            status=status,
            purpose=reach.purpose(patients).value,
            resource_type=rtype,
            resource_ids=tuple(dict.fromkeys([*ids, *(v.resource_id for v in versions)])),
            patient_ids=tuple(patients),
            request_id=self._request.request_id,
            source_ip=self._request.source_ip,
            user_agent=self._request.user_agent,
            detail=detail
            if self.actor.system_reason is None
            else f"{self.actor.system_reason}; {detail or ''}".rstrip("; "),
        )


def _versions(result: Any) -> list[Version]:
    """Every version a result carries, so the audit names every patient whose data left."""
    if isinstance(result, Version):
        return [result]
    if isinstance(result, list):
        return [v for v in result if isinstance(v, Version)]
    found: list[Version] = []
    for name in ("versions", "included"):  # a search Page: its matches and its includes
        versions = getattr(result, name, None)
        found += list(versions) if isinstance(versions, list) else []
    return found
