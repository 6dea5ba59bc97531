"""Conditional create, update and delete: the search and the write run in one writer job
(one transaction on the one writer thread), so two concurrent conditional creates cannot
both create. Same door as the gate's writes: decide → validate → change + audit together.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Connection

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Invalid, PreconditionFailed
from carevault.privacy.bundle_entries import Query, condition
from carevault.privacy.gate_hooks import GateHooks
from carevault.records import conditional, validation
from carevault.records.store import Version

T = TypeVar("T")
Work = Callable[[Connection, str], tuple[T, int]]
"""(connection, now) → (result, HTTP status for the audit entry)."""


def create(hooks: GateHooks, rtype: str, body: Any, if_none_exist: str) -> tuple[Version, bool]:
    """Create unless the If-None-Exist search matches: one match is returned as it is (no
    write), several are a 412. Returns the resource and whether it was created."""
    params = _condition(hooks, Action.CREATE, rtype, if_none_exist, "If-None-Exist")

    def work(conn: Connection, now: str) -> tuple[tuple[Version, bool], int]:
        existing = single_match(conn, hooks, rtype, params, "If-None-Exist")
        if existing is not None:
            return (read_live(conn, hooks, rtype, existing), False), 200
        return (put_new(conn, hooks, rtype, new_id(), body, now), True), 201

    version, created = _write(hooks, Action.CREATE, rtype, "write", params, work, body=body)
    return hooks.minimum(version), created


def update(
    hooks: GateHooks, rtype: str, query: str, body: Any, *, if_match: int | None = None
) -> tuple[Version, bool]:
    """Update the one resource the search matches; none: create it (the body's id, or a new
    one); several: 412. Returns the new version and whether it was created."""
    params = _condition(hooks, Action.UPDATE, rtype, query, "a conditional update")

    def work(conn: Connection, now: str) -> tuple[tuple[Version, bool], int]:
        rid = update_target(conn, hooks, rtype, params, body)
        version, created = hooks.services.store.update(
            conn, hooks.scope, rtype, rid, {**body, "id": rid}, now, if_match=if_match
        )
        return (version, created), 201 if created else 200

    version, created = _write(hooks, Action.UPDATE, rtype, "write", params, work, body=body)
    return hooks.minimum(version), created


def delete(hooks: GateHooks, rtype: str, query: str) -> Version | None:
    """Delete the one resource the search matches; none: nothing to do; several: 412."""
    params = _condition(hooks, Action.DELETE, rtype, query, "a conditional delete")

    def work(conn: Connection, now: str) -> tuple[Version | None, int]:
        rid = single_match(conn, hooks, rtype, params, "a conditional delete")
        if rid is None:
            return None, 204
        return hooks.services.store.delete(conn, hooks.scope, rtype, rid, now), 204

    return _write(hooks, Action.DELETE, rtype, "delete", params, work)


# -- steps shared with bundles (they run inside a writer job) -------------------


def new_id() -> str:
    return str(uuid.uuid4())


def single_match(
    conn: Connection, hooks: GateHooks, rtype: str, params: Query, what: str
) -> str | None:
    """The id of the one live resource the search matches within reach, None for none."""
    found = conditional.matching_ids(conn, hooks.services.store, hooks.scope, rtype, params)
    if len(found) > 1:
        raise PreconditionFailed(f"the criteria of {what} match several {rtype} resources")
    return found[0] if found else None


def update_target(
    conn: Connection, hooks: GateHooks, rtype: str, params: Query, body: dict[str, Any]
) -> str:
    """The id a conditional update writes to: the match, else the body's id, else a new one."""
    found = single_match(conn, hooks, rtype, params, "a conditional update")
    given = body.get("id")
    if found is not None:
        if given is not None and given != found:
            raise Invalid("the resource's id is not that of the resource the criteria match")
        return found
    return given if isinstance(given, str) else new_id()


def put_new(
    conn: Connection, hooks: GateHooks, rtype: str, rid: str, body: dict[str, Any], now: str
) -> Version:
    """Create a resource under an id chosen here (bundles assign ids before writing)."""
    version, _ = hooks.services.store.update(
        conn, hooks.scope, rtype, rid, {**body, "id": rid}, now, if_match=None
    )
    return version


def read_live(conn: Connection, hooks: GateHooks, rtype: str, rid: str) -> Version:
    found = hooks.services.store.read(conn, hooks.scope, rtype, rid)
    if found is None or found.deleted:  # matched in this same transaction: cannot happen
        raise PreconditionFailed(f"the matching {rtype} changed while it was read")
    return found


# -- the flow ------------------------------------------------------------------


def _condition(hooks: GateHooks, action: Action, rtype: str, query: str, what: str) -> Query:
    try:
        return condition(query, what)
    except CareVaultError as exc:
        hooks.audit_refusal(action, rtype, (), exc, "conditional")
        raise


def _write(
    hooks: GateHooks,
    action: Action,
    rtype: str,
    permission: str,
    params: Query,
    work: Work[T],
    *,
    body: Any = None,
) -> T:
    detail = "conditional; params=" + ",".join(sorted({name for name, _ in params}))
    try:
        hooks.decide(rtype, permission)
        if body is not None:
            # Validate in the caller's thread: the writer thread is shared by all.
            validation.validate(rtype, body)
    except CareVaultError as exc:
        hooks.audit_refusal(action, rtype, (), exc, detail)
        raise

    def job(conn: Connection) -> tuple[T, AuditRecord]:
        result, status = work(conn, isoformat(hooks.services.clock.now()))
        versions = _versions(result)
        record = hooks.record(action, rtype, Outcome.SUCCESS, status, versions, (), detail)
        return result, record  # committed in the same transaction as the change

    try:
        return hooks.services.audit.commit_with(hooks.services.committer, hooks.tenant_id, job)
    except CareVaultError as exc:
        hooks.audit_refusal(action, rtype, (), exc, detail)
        raise
    except Exception:
        hooks.audit_refusal(action, rtype, (), None, detail)
        raise


def _versions(result: Any) -> list[Version]:
    if isinstance(result, Version):
        return [result]
    if isinstance(result, tuple):
        return [v for v in result if isinstance(v, Version)]
    return []
