"""References inside a Bundle: find and rewrite `reference` values, and order the writes so
each resource is written after the new ones it references (the store checks that references
resolve, so a referenced resource must exist first)."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from carevault.errors import Unprocessable

URN_UUID = "urn:uuid:"

Edges = Mapping[int, Collection[int]]
"""entry index → the entry indexes it must be written after."""


def reference_values(node: Any) -> Iterator[str]:
    """Every `reference` string in a resource, at any depth."""
    if isinstance(node, dict):
        ref = node.get("reference")
        if isinstance(ref, str):
            yield ref
        for value in node.values():
            if isinstance(value, dict | list):
                yield from reference_values(value)
    elif isinstance(node, list):
        for item in node:
            yield from reference_values(item)


def rewrite(node: Any, replace: Callable[[str], str]) -> Any:
    """A copy of node in which every `reference` string went through replace."""
    if isinstance(node, dict):
        out = {k: rewrite(v, replace) if isinstance(v, dict | list) else v for k, v in node.items()}
        ref = node.get("reference")
        if isinstance(ref, str):
            out["reference"] = replace(ref)
        return out
    if isinstance(node, list):
        return [rewrite(item, replace) for item in node]
    return node


def is_conditional(reference: str) -> bool:
    """`Type?params`: a search standing in for an id (not an absolute URL with a query)."""
    head, sep, _ = reference.partition("?")
    return bool(sep) and head.isalnum()


def write_order(
    nodes: Collection[int], key: Callable[[int], tuple[int, ...]], must: Edges, prefer: Edges
) -> list[int]:
    """Nodes ordered so that each comes after the nodes it `must` follow, and after those it
    would `prefer` to follow as far as possible; ties go by key (FHIR's order).

    A cycle among the `must` edges cannot be ordered: Unprocessable, naming it by entry indexes.
    """
    members = set(nodes)
    musts = {n: {d for d in must.get(n, ()) if d in members} for n in members}
    prefs = {n: {d for d in prefer.get(n, ()) if d in members} for n in members}
    dependents: dict[int, set[int]] = {n: set() for n in members}
    for n in members:
        for d in musts[n] | prefs[n]:
            dependents[d].add(n)
    ready = [(key(n), n) for n in members if not musts[n] and not prefs[n]]
    heapq.heapify(ready)
    order: list[int] = []
    while len(order) < len(members):
        if not ready:
            # Stuck on a cycle: release the first node that only waits on preferences.
            left = members - set(order)
            free = [n for n in left if not musts[n]]
            if not free:
                raise _cycle_error(left, musts)
            first = min(free, key=key)
            prefs[first].clear()
            heapq.heappush(ready, (key(first), first))
        _, node = heapq.heappop(ready)
        order.append(node)
        for later in dependents[node]:
            waited = bool(musts[later] or prefs[later])
            musts[later].discard(node)
            prefs[later].discard(node)
            if waited and not musts[later] and not prefs[later]:
                heapq.heappush(ready, (key(later), later))
    return order


def _cycle_error(stuck: set[int], edges: Edges) -> Unprocessable:
    cycle = _cycle(stuck, edges)
    named = " → ".join(f"Bundle.entry[{n}]" for n in cycle)
    return Unprocessable(
        f"the bundle's urn:uuid references form a cycle: {named}",
        issues=[(f"Bundle.entry[{n}]", "part of a reference cycle") for n in sorted(set(cycle))],
    )


def _cycle(stuck: set[int], edges: Edges) -> list[int]:
    """One cycle among the stuck nodes: each of them still waits on another stuck one."""
    path: list[int] = []
    seen: dict[int, int] = {}
    node = min(stuck)
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = min(d for d in edges.get(node, ()) if d in stuck)
    return [*path[seen[node] :], node]
