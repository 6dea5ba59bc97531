"""The gate's own steps (decide, minimum necessary, audit), handed to the modules that run its
longer interactions (conditional writes, bundles, import, export, $everything, type history,
$validate), so those follow the same door without reaching into the Gate's internals."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.errors import CareVaultError
from carevault.identity.models import Actor
from carevault.privacy.segmentation import Screen
from carevault.privacy.services import GateServices
from carevault.records.store import Scope, Version

if TYPE_CHECKING:
    from carevault.privacy.gate import SearchResult

RecordFn = Callable[
    [Action, str, Outcome, int, list[Version], tuple[str, ...], str | None], AuditRecord
]
RefusalFn = Callable[[Action, str, tuple[str, ...], CareVaultError | None, str | None], None]
ReadFlow = Callable[..., Any]
"""The gate's read flow: `(action, rtype, permission, work, *, ids=(), detail=None)` → the
work's result, after deciding, running `work(conn)` on a reader and auditing durably."""


@dataclass(frozen=True)
class GateHooks:
    services: GateServices
    actor: Actor
    scope: Scope
    decide: Callable[[str, str], None]
    """Raises unless the actor may do this action ("read", "write", "delete") on this type."""
    record: RecordFn
    """An audit entry for this actor and request."""
    audit_refusal: RefusalFn
    """Audits a refusal in a transaction of its own."""
    minimum: Callable[[Version], Version]
    """Cuts a decrypted version to the actor's minimum necessary."""
    read_flow: ReadFlow
    read: Callable[[str, str], Version]
    """The gate's whole read interaction (audited)."""
    search: Callable[[str, Sequence[tuple[str, str]]], SearchResult]
    """The gate's whole search interaction (audited)."""
    screen: Callable[[Connection | None, Collection[str]], Screen] = lambda _c, _t: Screen()
    """What the security labels hide from this actor among resources of these types
    (segmentation.py), read on `conn` (None: on a reader connection of its own)."""

    @property
    def tenant_id(self) -> str:
        return self.scope.tenant_id


def refusal_record(
    hooks: GateHooks,
    action: Action,
    rtype: str,
    ids: tuple[str, ...],
    exc: CareVaultError | None,
    detail: str,
) -> AuditRecord:
    """The audit entry of a refusal, for callers that write it with other entries."""
    if exc is None:
        outcome, status, why = Outcome.FAILED, 500, "server error"
    else:
        outcome, status, why = refusal_outcome(exc.status), exc.status, type(exc).__name__
    return hooks.record(action, rtype, outcome, status, [], ids, f"{detail}; {why}")


def refusal_outcome(status: int) -> Outcome:
    if status in (401, 403):
        return Outcome.DENIED
    if status in (404, 410):
        return Outcome.NOT_FOUND
    return Outcome.INVALID
