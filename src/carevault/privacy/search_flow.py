"""The parts of a gated search around the store: paging state, what the actor may include,
sorted-search snapshots (written through the group committer), and `_elements`.

The gate (gate.py) still runs the flow: decide → scope → decrypt → minimum → audit.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import orjson
from sqlalchemy import Connection

from carevault.clock import isoformat
from carevault.errors import Invalid
from carevault.identity.models import Actor
from carevault.identity.permissions import fhir_permission
from carevault.privacy.paging import PAGE_LIFETIME, PageState, open_page, seal_page
from carevault.privacy.services import GateServices
from carevault.records import snapshots
from carevault.records.includes import MAX_INCLUDED
from carevault.records.params import SUPPORTED_TYPES
from carevault.records.searching import Cursor, Page
from carevault.records.shaping import SearchOptions
from carevault.records.store import Scope, Version

_SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}
_ALWAYS = ("resourceType", "id", "meta")


class SearchFlow:
    def __init__(self, services: GateServices, actor: Actor) -> None:
        self._s = services
        self._actor = actor
        self.readable = frozenset(
            t for t in SUPPORTED_TYPES if fhir_permission(t, "read") in actor.permissions
        )

    def open(self, rtype: str, token: str) -> PageState:
        state = open_page(
            self._s.vault, self._actor.tenant_id, self._actor.user_id, token, self._s.clock.now()
        )
        if state.resource_type != rtype:
            raise Invalid("this paging link belongs to a search of another resource type")
        return state

    def page(
        self,
        conn: Connection,
        scope: Scope,
        rtype: str,
        params: Sequence[tuple[str, str]],
        state: PageState | None,
        lenient: bool,
    ) -> Page:
        cursor = None
        if state is not None and state.snapshot:
            now = isoformat(self._s.clock.now())
            cursor = Cursor(state.snapshot, state.offset, self._actor.user_id, now)
        return self._s.store.search(
            conn,
            scope,
            rtype,
            params,
            after=(state.after or None) if state is not None else None,
            default_count=self._s.default_count,
            max_count=self._s.max_count,
            lenient=lenient,
            cursor=cursor,
            readable=self.readable,
        )

    def next_page(
        self, rtype: str, params: Sequence[tuple[str, str]], state: PageState | None, found: Page
    ) -> str | None:
        """The sealed link to the next page; a sorted search's first page keeps its snapshot."""
        pairs = tuple(params)
        if found.ordered_ids:
            snapshot_id = self._snapshot(rtype, found.ordered_ids)
            following = PageState(rtype, pairs, "", snapshot_id, found.next_offset or 0)
        elif found.next_offset is not None and state is not None and state.snapshot:
            following = PageState(rtype, pairs, "", state.snapshot, found.next_offset)
        elif found.next_after is not None:
            following = PageState(rtype, pairs, found.next_after)
        else:
            return None
        return seal_page(
            self._s.vault,
            self._actor.tenant_id,
            self._actor.user_id,
            following,
            self._s.clock.now(),
        )

    def _snapshot(self, rtype: str, ids: tuple[str, ...]) -> str:
        # The reader connection is read-only: the snapshot goes through the group committer.
        snapshot_id = str(uuid.uuid4())
        now = self._s.clock.now()
        tenant_id, user_id = self._actor.tenant_id, self._actor.user_id

        def write(conn: Connection) -> None:
            snapshots.write(
                conn, self._s.vault, tenant_id, user_id, snapshot_id, rtype, ids,
                expires_at=isoformat(now + PAGE_LIFETIME), now=isoformat(now),
            )  # fmt: skip

        self._s.committer.submit(write)
        return snapshot_id

    @staticmethod
    def warnings(found: Page) -> tuple[str, ...]:
        messages = [
            f"included {rtype} resources were left out: your role and token do not allow "
            f"reading {rtype}"
            for rtype in found.withheld
        ]
        if found.includes_truncated:
            messages.append(
                f"more than {MAX_INCLUDED} resources to include on this page: only the first "
                f"{MAX_INCLUDED} are; use a smaller _count"
            )
        return tuple(messages)

    @staticmethod
    def elements(version: Version, options: SearchOptions) -> Version:
        """`_elements`: the named top-level elements only, marked SUBSETTED (after minimum)."""
        if not options.elements or version.body is None:
            return version
        body = orjson.loads(version.body)
        kept = {k: v for k, v in body.items() if k in _ALWAYS or k in options.elements}
        meta = dict(kept.get("meta") or {})
        meta["tag"] = [*(meta.get("tag") or []), _SUBSETTED]
        kept["meta"] = meta
        return Version(
            version.resource_type,
            version.resource_id,
            version.version_id,
            version.last_updated,
            version.deleted,
            version.patient_id,
            orjson.dumps(kept),
        )
