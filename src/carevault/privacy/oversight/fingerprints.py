"""Keyed hashes of family names and addresses, taken from Patients and Practitioners.

The search index keeps names only under per-type hash domains and does not index
addresses, so the sentinel reads the people it needs through the gate, as a named system
actor (audited like any reader), and keeps only keyed hashes in a domain of its own.
A person is read again only when their resource has a newer version.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import TypeVar

import orjson
from sqlalchemy import Connection, delete, insert, select, tuple_

from carevault.crypto.hashing import KeyedHasher
from carevault.identity.models import Actor, system_actor
from carevault.identity.permissions import Purpose
from carevault.privacy.gate import Gate
from carevault.privacy.oversight.rules import identity_marks
from carevault.privacy.oversight_models import person_fingerprints
from carevault.records.models import resources

SENTINEL_REASON = "snooping sentinel"
NONE = "none"  # a person with nothing to compare: remembered so they are not read again
CHUNK = 50
T = TypeVar("T")


@dataclass(frozen=True)
class Fingerprint:
    resource_type: str
    resource_id: str
    version_id: int
    digests: frozenset[tuple[str, str]]  # (kind, digest)


def sentinel_actor(tenant_id: str) -> Actor:
    return system_actor(tenant_id, SENTINEL_REASON, Purpose.HCOMPL)


def stale(conn: Connection, tenant_id: str, rtype: str, ids: Collection[str]) -> dict[str, int]:
    """The ids (with their current version) whose fingerprint is missing or out of date."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    current = {
        r.resource_id: r.version_id
        for chunk in _chunks(wanted, 500)
        for r in conn.execute(
            select(resources.c.resource_id, resources.c.version_id).where(
                resources.c.tenant_id == tenant_id,
                resources.c.resource_type == rtype,
                resources.c.resource_id.in_(chunk),
            )
        )
    }
    taken = {
        r.resource_id: r.version_id
        for chunk in _chunks(wanted, 500)
        for r in conn.execute(
            select(person_fingerprints.c.resource_id, person_fingerprints.c.version_id).where(
                person_fingerprints.c.tenant_id == tenant_id,
                person_fingerprints.c.resource_type == rtype,
                person_fingerprints.c.resource_id.in_(chunk),
            )
        )
    }
    return {rid: vid for rid, vid in current.items() if taken.get(rid) != vid}


def take(
    open_gate: Callable[[Actor], Gate],
    hasher: KeyedHasher,
    tenant_id: str,
    rtype: str,
    wanted: dict[str, int],
) -> list[Fingerprint]:
    """Read the wanted people through the gate and hash what identifies them."""
    gate = open_gate(sentinel_actor(tenant_id))
    found: list[Fingerprint] = []
    for chunk in _chunks(sorted(wanted), CHUNK):
        params = [("_id", ",".join(chunk)), ("_count", str(CHUNK))]
        seen: set[str] = set()
        for view in gate.search(rtype, params).resources:
            seen.add(view.resource_id)
            body = orjson.loads(view.body) if view.body else {}
            digests = frozenset(
                (kind, hasher.digest(f"oversight.{kind}", value))
                for kind, value in identity_marks(body)
            )
            found.append(Fingerprint(rtype, view.resource_id, view.version_id, digests))
        # Deleted (or vanished) since: nothing to compare, at the version we saw.
        found += [
            Fingerprint(rtype, rid, wanted[rid], frozenset()) for rid in chunk if rid not in seen
        ]
    return found


def store(conn: Connection, tenant_id: str, prints: list[Fingerprint]) -> None:
    if not prints:
        return
    keys = [(p.resource_type, p.resource_id) for p in prints]
    for chunk in _chunks(keys, 200):
        conn.execute(
            delete(person_fingerprints).where(
                person_fingerprints.c.tenant_id == tenant_id,
                tuple_(person_fingerprints.c.resource_type, person_fingerprints.c.resource_id).in_(
                    chunk
                ),
            )
        )
    rows = [
        {
            "tenant_id": tenant_id,
            "resource_type": p.resource_type,
            "resource_id": p.resource_id,
            "kind": kind,
            "digest": digest,
            "version_id": p.version_id,
        }
        for p in prints
        for kind, digest in (p.digests or {(NONE, "")})
    ]
    conn.execute(insert(person_fingerprints), rows)


def digests_of(
    conn: Connection, tenant_id: str, rtype: str, ids: Collection[str]
) -> dict[str, set[tuple[str, str]]]:
    found: dict[str, set[tuple[str, str]]] = {}
    for chunk in _chunks(sorted(set(ids)), 500):
        for r in conn.execute(
            select(
                person_fingerprints.c.resource_id,
                person_fingerprints.c.kind,
                person_fingerprints.c.digest,
            ).where(
                person_fingerprints.c.tenant_id == tenant_id,
                person_fingerprints.c.resource_type == rtype,
                person_fingerprints.c.resource_id.in_(chunk),
                person_fingerprints.c.kind != NONE,
            )
        ):
            found.setdefault(r.resource_id, set()).add((r.kind, r.digest))
    return found


def _chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
