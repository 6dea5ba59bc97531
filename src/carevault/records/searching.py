"""Running a search: one page of matches (keyset-paged, or from a sorted snapshot), its
includes, and the total. Every statement carries the tenant and the actor's scope."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Row, func, select

from carevault.crypto.vault import Vault
from carevault.errors import Invalid
from carevault.records import includes, search, snapshots, sorting, statements
from carevault.records.models import resource_versions, resources
from carevault.records.params import IN_COMPARTMENT, SUPPORTED_TYPES
from carevault.records.shaping import SearchOptions

if TYPE_CHECKING:
    from carevault.records.store import Scope, Version


@dataclass(frozen=True)
class Page:
    versions: list[Version]
    total: int | None
    """None when the caller asked for `_total=none`."""
    next_after: str | None
    ignored: tuple[str, ...]
    included: list[Version] = field(default_factory=list)
    withheld: tuple[str, ...] = ()
    """Types whose includes were left out: the actor may not read them."""
    includes_truncated: bool = False
    """More resources to include than includes.MAX_INCLUDED: only the first ones are."""
    ordered_ids: tuple[str, ...] = ()
    """A sorted search's whole ordered result, when it has more pages: the gate keeps it."""
    next_offset: int | None = None
    """The next page of a sorted search starts here in its snapshot."""
    options: SearchOptions = field(default_factory=SearchOptions)


@dataclass(frozen=True)
class Cursor:
    """Where a later page of a sorted search reads: a snapshot of this user's, from offset."""

    snapshot_id: str
    offset: int
    user_id: str
    now: str


@dataclass(frozen=True)
class Request:
    params: Sequence[tuple[str, str]]
    after: str | None
    cursor: Cursor | None
    default_count: int
    max_count: int
    lenient: bool
    readable: Collection[str] | None


Opener = Callable[[Row[Any]], "Version"]


def scope_filter(scope: Scope, rtype: str) -> list[Any]:
    if scope.patient_ids is None or rtype not in IN_COMPARTMENT:
        return []
    return [resources.c.patient_id.in_(sorted(scope.patient_ids))]


def load(
    conn: Connection, scope: Scope, rtype: str, ids: Sequence[str], opener: Opener
) -> list[Version]:
    """Current, live versions of these ids within the scope, in the order given."""
    if not ids:
        return []
    rows = conn.execute(
        select(resource_versions)
        .join(resources, statements.CURRENT_VERSION_JOIN)
        .where(
            resources.c.tenant_id == scope.tenant_id,
            resources.c.resource_type == rtype,
            resources.c.resource_id.in_(list(ids)),
            resources.c.deleted.is_(False),
            *scope_filter(scope, rtype),
        )
    ).all()
    by_id = {row.resource_id: row for row in rows}
    return [opener(by_id[rid]) for rid in ids if rid in by_id]


def run(
    conn: Connection, vault: Vault, scope: Scope, rtype: str, req: Request, opener: Opener
) -> Page:
    criteria = search.build(
        scope.tenant_id,
        rtype,
        req.params,
        vault.hasher(scope.tenant_id),
        default_count=req.default_count,
        max_count=req.max_count,
        lenient=req.lenient,
        readable=req.readable,
    )
    options = criteria.options
    where = [
        resources.c.tenant_id == scope.tenant_id,
        resources.c.resource_type == rtype,
        resources.c.deleted.is_(False),
        *scope_filter(scope, rtype),
        *criteria.conditions,
    ]
    if req.cursor is not None:
        page = _from_snapshot(conn, vault, scope, rtype, criteria.count, req.cursor, opener)
    elif options.summary_count or criteria.count == 0:
        total = conn.execute(select(func.count()).select_from(resources).where(*where)).scalar()
        page = Page([], int(total or 0), None, ())
    elif options.sort:
        page = _sorted(conn, scope, rtype, where, criteria, opener)
    else:
        page = _keyset(conn, scope, rtype, where, criteria, req.after, opener)
    included, withheld, truncated = _included(
        conn, scope, rtype, page.versions, options, req, opener
    )
    total = None if options.total == "none" and not options.summary_count else page.total
    return Page(
        page.versions,
        total,
        page.next_after,
        criteria.ignored,
        included,
        withheld,
        truncated,
        page.ordered_ids,
        page.next_offset,
        options,
    )


def _keyset(
    conn: Connection,
    scope: Scope,
    rtype: str,
    where: list[Any],
    criteria: search.Criteria,
    after: str | None,
    opener: Opener,
) -> Page:
    """Unsorted: by resource id, each page after the last id of the one before (stable)."""
    total: int | None = None
    if criteria.options.total != "none":
        counted = conn.execute(select(func.count()).select_from(resources).where(*where)).scalar()
        total = int(counted or 0)
    page_where = [*where, resources.c.resource_id > after] if after else where
    rows = conn.execute(
        select(resource_versions)
        .join(resources, statements.CURRENT_VERSION_JOIN)
        .where(*page_where)
        .order_by(resources.c.resource_id)
        .limit(criteria.count + 1)
    ).all()
    more = len(rows) > criteria.count
    versions = [opener(row) for row in rows[: criteria.count]]
    next_after = versions[-1].resource_id if more else None
    return Page(versions, total, next_after, ())


def _sorted(
    conn: Connection,
    scope: Scope,
    rtype: str,
    where: list[Any],
    criteria: search.Criteria,
    opener: Opener,
) -> Page:
    """Sorted, first page: the whole ordered id list once (capped); later pages read it."""
    order = sorting.order_by(scope.tenant_id, rtype, criteria.options.sort)
    ids = list(
        conn.execute(
            select(resources.c.resource_id)
            .where(*where)
            .order_by(*order)
            .limit(snapshots.MAX_SNAPSHOT + 1)
        ).scalars()
    )
    if len(ids) > snapshots.MAX_SNAPSHOT:
        raise Invalid(
            f"a sorted search may match at most {snapshots.MAX_SNAPSHOT} resources; "
            "narrow it with more parameters"
        )
    versions = load(conn, scope, rtype, ids[: criteria.count], opener)
    if len(ids) <= criteria.count:
        return Page(versions, len(ids), None, ())
    return Page(versions, len(ids), None, (), ordered_ids=tuple(ids), next_offset=criteria.count)


def _from_snapshot(
    conn: Connection,
    vault: Vault,
    scope: Scope,
    rtype: str,
    count: int,
    cursor: Cursor,
    opener: Opener,
) -> Page:
    """A later page: the snapshot's ids from the offset, as they are now (deleted ones skipped)."""
    ids = snapshots.read(
        conn, vault, scope.tenant_id, cursor.user_id, cursor.snapshot_id, rtype, cursor.now
    )
    if ids is None:
        raise Invalid("this paging link has expired; run the search again")
    end = cursor.offset + max(count, 1)
    versions = load(conn, scope, rtype, ids[cursor.offset : end], opener)
    return Page(versions, len(ids), None, (), next_offset=end if end < len(ids) else None)


def _included(
    conn: Connection,
    scope: Scope,
    rtype: str,
    matches: list[Version],
    options: SearchOptions,
    req: Request,
    opener: Opener,
) -> tuple[list[Version], tuple[str, ...], bool]:
    if not options.includes or not matches:
        return [], (), False
    readable = req.readable if req.readable is not None else SUPPORTED_TYPES
    wanted = includes.wanted(
        conn,
        scope.tenant_id,
        rtype,
        [v.resource_id for v in matches],
        options.includes,
        readable,
    )
    by_type: dict[str, list[str]] = {}
    for target_type, target_id in wanted.keys:
        by_type.setdefault(target_type, []).append(target_id)
    found: list[Version] = []
    for target_type, ids in by_type.items():
        found += load(conn, scope, target_type, ids, opener)
    return found, wanted.withheld, wanted.truncated
