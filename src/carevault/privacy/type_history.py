"""`GET /fhir/{type}/_history` behind the gate: decide, scope in SQL, decrypt, cut, audit."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from carevault.audit.models import Action
from carevault.errors import CareVaultError, Invalid
from carevault.privacy.gate_hooks import GateHooks
from carevault.privacy.op_paging import open_state, seal_state
from carevault.records import dates
from carevault.records.history import HistoryCursor, type_history

if TYPE_CHECKING:
    from carevault.privacy.gate import ResourceView

_KIND = "history-type"


@dataclass(frozen=True)
class HistoryResult:
    versions: list[ResourceView]
    total: int
    next_page: str | None


def history_type(
    gate: GateHooks,
    rtype: str,
    *,
    since: str | None = None,
    count: str | None = None,
    page: str | None = None,
) -> HistoryResult:
    s = gate.services
    try:
        if page is not None:
            state = open_state(
                s.vault, gate.actor.tenant_id, gate.actor.user_id, _KIND, page, s.clock.now()
            )
            if state.get("t") != rtype:
                raise Invalid("this paging link belongs to the history of another resource type")
            since_at, size = state.get("s"), int(state["c"])
            cursor: HistoryCursor | None = (str(state["u"]), str(state["i"]), int(state["v"]))
        else:
            since_at, size, cursor = parse_since(since), page_size(gate, count), None
    except CareVaultError as exc:
        gate.audit_refusal(Action.HISTORY, rtype, (), exc, "type history")
        raise

    def work(conn: Connection) -> Any:
        return type_history(
            s.store, conn, gate.scope, rtype, since=since_at, count=size, after=cursor
        )

    found = gate.read_flow(Action.HISTORY, rtype, "read", work, detail="type history")
    next_page = None
    if found.next_cursor is not None:
        updated, rid, vid = found.next_cursor
        state = {"t": rtype, "s": since_at, "c": size, "u": updated, "i": rid, "v": vid}
        next_page = seal_state(
            s.vault, gate.actor.tenant_id, gate.actor.user_id, _KIND, state, s.clock.now()
        )
    return HistoryResult([gate.minimum(v) for v in found.versions], found.total, next_page)


def parse_since(value: str | None) -> str | None:
    """`_since` as the stored timestamp form, so it compares as a string in any database."""
    if value is None:
        return None
    try:
        low, _high, _precision = dates.parse_range(value)
    except (ValueError, OverflowError):
        raise Invalid("_since must be a FHIR instant such as 2026-01-31T09:00:00Z") from None
    return low + "Z"


def page_size(gate: GateHooks, count: str | None) -> int:
    if count is None:
        return gate.services.default_count
    if not count.isascii() or not count.isdigit():
        raise Invalid("_count must be zero or a positive whole number")
    return min(int(count), gate.services.max_count)
