"""Sensitive information, segmented: FHIR security labels and what each one requires.

Resources carry `meta.security` labels (confidentiality R and V from v3-Confidentiality;
sensitivity codes from v3-ActCode: PSYTHPN psychotherapy notes, PSY, MH, ETH/SUD substance use
under 42 CFR Part 2, HIV, SEX, SDV, GDIS; and CareVault's MINOR-SELF-CONSENT for care a minor
consented to on their own). What each label requires is data: `profiles/segmentation.toml`.

- The disclosure path asks `release_requirements(resource)`: the names in REQUIREMENTS it must
  hold (a Part 2 consent naming the records, a psychotherapy-notes authorization …).
- The gate honours the read rules (segmentation_screen.py): which resources in the actor's
  scope this actor may not see is decided in SQL on the search index (the `_security` tokens)
  in the reader snapshot of the read, then dropped right after decryption and before the audit
  entry, so they look missing: 404 on read, vread and history, absent from search pages and
  their totals, includes, type history, $everything and exports. Where the gate calls it:
  `Gate._read` → `screen_read` (read, vread, history, search, type history), `Gate.search` →
  `search_exclusions` (labels that hide all their carriers become `_security:not` in SQL),
  and `GateHooks.screen` → `screen_of` for `$everything` (everything.py) and exports
  (exporter.py, after a batch's paging).
  Why after decryption and not in the store's own statements: the store's Scope carries only
  the tenant and the compartments; the hidden set is decided from the index before anything is
  decrypted, and dropping it here keeps records/ unaware of policy. Named system actors are
  never screened (backups, imports and the sentinel must see everything; they are audited).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine

from carevault.audit.models import Action
from carevault.identity.models import Actor
from carevault.privacy.profiles.segmentation_rules import (
    ACT_CODE,
    CAREVAULT_LABELS,
    CONFIDENTIALITY,
    MINOR_SELF_CONSENT,
    REQUIREMENTS,
    LabelRule,
    Rules,
    SegmentationError,
    Viewer,
    load_rules,
    may_read,
    parse_rules,
    shipped_rules,
)
from carevault.privacy.reach import Reach
from carevault.privacy.segmentation_screen import Screen
from carevault.records.store import RecordStore, Version

__all__ = [
    "ACT_CODE", "CAREVAULT_LABELS", "CONFIDENTIALITY", "MINOR_SELF_CONSENT", "REQUIREMENTS",
    "LabelRule", "Rules", "Screen", "SegmentationError", "Viewer", "hides_from_representatives",
    "labels_of", "load_rules", "may_read", "parse_rules", "release_requirements",
    "shipped_rules",
]  # fmt: skip

T = TypeVar("T")


def hides_from_representatives() -> frozenset[str]:
    """Labels whose resources a representative's view leaves out (care a minor consented to)."""
    return frozenset(c for c, r in shipped_rules().by_code.items() if r.hidden_from)


def labels_of(resource: Mapping[str, Any]) -> frozenset[str]:
    """The known security labels (their codes, e.g. "V", "ETH") a resource carries."""
    return shipped_rules().labels_of(resource)


def release_requirements(resource: Mapping[str, Any]) -> frozenset[str]:
    """What the disclosure path must hold before this resource leaves (REQUIREMENTS' names)."""
    table = shipped_rules().by_code
    return frozenset(r for code in labels_of(resource) for r in table[code].release)


def screen_of(
    reader: Engine,
    conn: Connection | None,
    types: Collection[str],
    reach: Callable[[Connection], Reach],
    actor: Actor,
) -> Screen:
    """The actor's screen over their scope's resources of these types, on `conn` or on a
    reader connection of its own."""
    if actor.role is None:
        return Screen()
    if conn is not None:
        return Screen.resolve(conn, reach(conn), actor, types=types)
    with reader.connect() as own:
        try:
            return Screen.resolve(own, reach(own), actor, types=types)
        finally:
            own.rollback()


def screen_read(
    conn: Connection,
    store: RecordStore,
    reach: Reach,
    actor: Actor,
    action: Action,
    rtype: str,
    result: T,
    params: Sequence[tuple[str, str]] | None,
) -> T:
    """The gate's read flow (`Gate._read`), screened right after decryption and before the
    audit entry: read, vread and instance history by the one resource's labels (its body's,
    and for older versions its current ones in the index: one point query), searches and type
    history by the scope's hidden set (segmentation decided in SQL on the search index)."""
    if actor.role is None:
        return result
    unlabelled = isinstance(result, Version) and b'"security"' not in (result.body or b"")
    if unlabelled and action is Action.READ:
        return result  # the current version carries no label: nothing to decide
    if isinstance(result, Version | list):
        first = result if isinstance(result, Version) else next(iter(result), None)
        if not isinstance(first, Version):
            return result
        only = (first.resource_type, first.resource_id)
        return Screen.resolve(conn, reach, actor, only).apply(conn, store, reach.scope, rtype,
                                                               result)  # fmt: skip
    screen = Screen.resolve(conn, reach, actor, types=(rtype,))
    return screen.apply(conn, store, reach.scope, rtype, result, params)


def search_exclusions(
    conn: Connection, reach: Reach, actor: Actor, rtype: str
) -> list[tuple[str, str]]:
    """For `Gate.search`: parameters that leave out of the matches, the total and the paging,
    in SQL, the resources of `rtype` this actor may not see (`Screen.exclusions`)."""
    if actor.role is None:
        return []
    return Screen.resolve(conn, reach, actor, types=(rtype,)).exclusions()
