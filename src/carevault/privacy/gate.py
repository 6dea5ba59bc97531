"""THE GATE. Every read, search, write and delete of PHI passes here, in this order:

decide (tenant, role permission, default deny) → scope in SQL → decrypt →
minimum necessary → audit. A change is audited in its own transaction; a refusal
or failure is audited in a transaction of its own after the rollback. Nothing is
returned before its audit entry is durable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from sqlalchemy import Connection

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Forbidden, Gone, Invalid, NotFound
from carevault.identity.models import Actor
from carevault.identity.permissions import COMPARTMENT_ROLES, fhir_permission
from carevault.privacy.paging import PageState, open_page, seal_page
from carevault.privacy.services import GateServices
from carevault.records import validation
from carevault.records.params import SUPPORTED_TYPES
from carevault.records.store import Scope, Version

T = TypeVar("T")
log = logging.getLogger("carevault.gate")

ResourceView = Version
"""What leaves the gate: one version, decrypted and cut to the minimum necessary."""


@dataclass(frozen=True)
class RequestInfo:
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True)
class SearchResult:
    resources: list[ResourceView]
    total: int
    next_page: str | None
    ignored: tuple[str, ...]


class Gate:
    def __init__(self, services: GateServices, actor: Actor, request: RequestInfo) -> None:
        self._s = services
        self.actor = actor
        self._request = request
        compartment = actor.role in COMPARTMENT_ROLES
        self._scope = Scope(actor.tenant_id, actor.patient_ids if compartment else None)
        self._profile = services.minimum_necessary.profile_for(actor)

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
        after = None
        if page is not None:
            try:
                state = open_page(
                    self._s.vault,
                    self.actor.tenant_id,
                    self.actor.user_id,
                    page,
                    self._s.clock.now(),
                )
                if state.resource_type != rtype:
                    raise Invalid("this paging link belongs to a search of another resource type")
            except CareVaultError as exc:
                self.audit_refusal(Action.SEARCH, rtype, (), exc, "params=_page")
                raise
            params, after = state.params, state.after or None
        names = sorted({name for name, _ in params})

        def work(conn: Connection) -> Any:
            return self._s.store.search(
                conn,
                self._scope,
                rtype,
                params,
                after=after,
                default_count=self._s.default_count,
                max_count=self._s.max_count,
                lenient=lenient,
            )

        found = self._read(Action.SEARCH, rtype, "read", work, detail="params=" + ",".join(names))
        next_page = None
        if found.next_after is not None:
            state = PageState(rtype, tuple(params), found.next_after)
            next_page = seal_page(
                self._s.vault, self.actor.tenant_id, self.actor.user_id, state, self._s.clock.now()
            )
        views = [self._minimum(v) for v in found.versions]
        return SearchResult(views, found.total, next_page, found.ignored)

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

    # -- the flow ----------------------------------------------------------------

    def _decide(self, rtype: str, action: str) -> None:
        """Default deny: the type must be served and the actor's permissions must include it."""
        if rtype not in SUPPORTED_TYPES:
            raise NotFound(f"{rtype} is not a resource type served here")
        permission = fhir_permission(rtype, action)
        if permission is None or permission not in self.actor.permissions:
            raise Forbidden(f"your role and token do not allow {action} on {rtype}")

    def _read(
        self,
        action: Action,
        rtype: str,
        permission: str,
        work: Callable[[Connection], T],
        *,
        ids: tuple[str, ...] = (),
        detail: str | None = None,
    ) -> T:
        try:
            self._decide(rtype, permission)
            with self._s.reader.connect() as conn:
                result = work(conn)
                conn.rollback()
        except CareVaultError as exc:
            self.audit_refusal(action, rtype, ids, exc, detail)
            raise
        except Exception:
            self.audit_refusal(action, rtype, ids, None, detail)
            raise
        record = self._record(action, rtype, Outcome.SUCCESS, 200, _versions(result), ids, detail)
        self._s.audit.commit(self._s.committer, self.actor.tenant_id, record)
        return result

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
            outcome, status, why = _outcome(exc), exc.status, type(exc).__name__
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
        return AuditRecord(
            recorded_at=isoformat(self._s.clock.now()),
            actor_id=self.actor.user_id,
            actor_role=self.actor.kind,
            action=action,
            outcome=outcome,
            status=status,
            purpose=self.actor.purpose.value,
            resource_type=rtype,
            resource_ids=tuple(dict.fromkeys([*ids, *(v.resource_id for v in versions)])),
            patient_ids=tuple({v.patient_id for v in versions if v.patient_id}),
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
    versions = getattr(result, "versions", None)
    return list(versions) if isinstance(versions, list) else []


def _outcome(exc: CareVaultError) -> Outcome:
    if exc.status in (401, 403):
        return Outcome.DENIED
    if exc.status in (404, 410):
        return Outcome.NOT_FOUND
    return Outcome.INVALID
