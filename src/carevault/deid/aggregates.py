"""Aggregates that identify no one: patient counts and rates by category, small cells
suppressed, partners suppressed so that no suppressed cell follows from a total.

Released only when the tenant's policy allows de-identified data for the purpose; every
release is recorded (privacy/deid_release.py) and the reads are audited per patient by
the gate. Counting streams partition by partition: memory holds the table, not the patients.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Final

import orjson

from carevault.audit.models import Action, RequestInfo
from carevault.clock import isoformat
from carevault.deid.fhir.strategies.birth_date import age_on
from carevault.errors import Forbidden, Invalid
from carevault.identity.models import Actor, system_actor
from carevault.identity.permissions import Purpose
from carevault.policy import PrivacyPolicy
from carevault.privacy.deid_cohort import patient_partitions
from carevault.privacy.deid_release import record_release
from carevault.runtime import Runtime

AGGREGATE_REASON = "de-identified aggregate"
DIMENSIONS: Final = ("condition", "age_band", "sex", "state", "year")
_CONDITION_DIMS = frozenset({"condition", "year"})
Cell = tuple[str, ...]


def age_band(birth: str | None, on: date) -> str:
    age = age_on(birth, on) if birth else None
    if age is None or age < 0:
        return "unknown"
    if age >= 90:
        return "90+"  # over 89 is one band: Safe Harbor folds those ages together
    if age < 18:
        return "0-17"
    low = 18 if age < 30 else age // 10 * 10
    return f"{low}-{29 if low == 18 else low + 9}"


@dataclass
class Table:
    by: tuple[str, ...]
    counts: Counter[Cell] = field(default_factory=Counter)
    population: int = 0


def suppress(counts: Mapping[Cell, int], dims: int, small: int) -> tuple[set[Cell], set[Cell]]:
    """(primary, complementary) suppressed cells. Primary: 0 < count < small. Then, greedily,
    while some line (the cells that agree on all but one dimension, whose total is released)
    holds exactly one suppressed cell, the smallest other cell of that line is suppressed."""
    primary = {c for c, n in counts.items() if 0 < n < small}
    hidden = set(primary)
    changed = True
    while changed:
        changed = False
        for d in range(dims):
            lines: dict[Cell, list[Cell]] = {}
            for cell in counts:
                lines.setdefault(cell[:d] + cell[d + 1 :], []).append(cell)
            for line in lines.values():
                if sum(1 for c in line if c in hidden) != 1:
                    continue
                others = [c for c in line if c not in hidden]
                if others:
                    hidden.add(min(others, key=lambda c: (counts[c], c)))
                    changed = True
    return primary, hidden - primary


def margins(
    counts: Mapping[Cell, int], hidden: set[Cell], by: Sequence[str], small: int
) -> dict[str, Any]:
    """One-way totals per dimension. A total is suppressed when it is small, or when exactly
    one of the cells it sums is suppressed (it would give that cell away); then, as for cells,
    a dimension never shows all its totals but one (the grand total would give it away)."""
    out: dict[str, Any] = {}
    for d, name in enumerate(by):
        totals: Counter[Cell] = Counter()
        inside: Counter[Cell] = Counter()
        for cell, n in counts.items():
            totals[(cell[d],)] += n
            inside[(cell[d],)] += cell in hidden
        gone = {k for k, n in totals.items() if n < small or inside[k] == 1}
        if len(gone) == 1 and len(totals) > 1:
            gone.add(min(set(totals) - gone, key=lambda k: (totals[k], k)))
        out[name] = [{"value": k[0], "count": None if k in gone else n}
                     for k, n in sorted(totals.items())]  # fmt: skip
    return out


def render(table: Table, small: int, purpose: str, released_at: str) -> dict[str, Any]:
    primary, extra = suppress(table.counts, len(table.by), small)
    hidden = primary | extra
    population = table.population if table.population >= small else None
    cells = []
    for cell, n in sorted(table.counts.items()):
        row: dict[str, Any] = dict(zip(table.by, cell, strict=True))
        shown = cell not in hidden
        row["count"] = n if shown else None
        row["rate_per_1000"] = (round(1000 * n / table.population, 2)
                                if shown and table.population else None)  # fmt: skip
        row["suppressed"] = not shown
        cells.append(row)
    return {
        "kind": "deid-aggregate", "by": list(table.by), "purpose": purpose,
        "released_at": released_at, "small_cell": small, "population": population,
        "unit": "patients (with condition or year: a patient's distinct values)",
        "cells": cells, "margins": margins(table.counts, hidden, table.by, small),
        "suppression": {"primary": len(primary), "complementary": len(extra)},
    }  # fmt: skip


def _coding_label(concept: Any) -> str:
    codings = concept.get("coding", []) if isinstance(concept, dict) else []
    for coding in codings:
        if isinstance(coding, dict) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return "unknown"


def _condition_year(body: dict[str, Any]) -> str:
    for key in ("onsetDateTime", "recordedDate"):
        if isinstance(body.get(key), str):
            return str(body[key])[:4]
    period = body.get("onsetPeriod")
    return str(period.get("start", "unknown"))[:4] if isinstance(period, dict) else "unknown"


def count_partition(table: Table, bodies: Iterable[dict[str, Any]], on: date) -> None:
    """Add one partition's patients (and their conditions, when asked) to the table."""
    people: dict[str, dict[str, str]] = {}
    conditions: dict[str, set[tuple[str, str]]] = {}
    for body in bodies:
        if body.get("resourceType") == "Patient":
            address = (body.get("address") or [{}])[0]
            people[str(body.get("id"))] = {
                "age_band": age_band(body.get("birthDate"), on),
                "sex": str(body.get("gender", "unknown")),
                "state": str(address.get("state", "unknown")),
            }
        elif body.get("resourceType") == "Condition":
            ref = str((body.get("subject") or {}).get("reference", ""))
            pid = ref.removeprefix("Patient/")
            label = _coding_label(body.get("code"))
            conditions.setdefault(pid, set()).add((label, _condition_year(body)))
    with_conditions = bool(_CONDITION_DIMS & set(table.by))
    for pid, attrs in people.items():
        table.population += 1
        rows = ([{**attrs, "condition": c, "year": y} for c, y in conditions.get(pid, ())]
                if with_conditions else [attrs])  # fmt: skip
        for row in {tuple(r[d] for d in table.by) for r in rows}:
            table.counts[row] += 1


def aggregate(
    rt: Runtime,
    policy: PrivacyPolicy,
    tenant_id: str,
    by: Sequence[str],
    purpose: str,
    *,
    requested_by: Actor | None = None,
    partition_patients: int = 200,
) -> dict[str, Any]:
    """The released aggregate (a JSON-ready document), or Forbidden if the policy says no."""
    actor = system_actor(tenant_id, AGGREGATE_REASON, Purpose.HRESCH)
    gate = rt.gate(actor, RequestInfo(f"deid-agg-{secrets.token_hex(8)}"))
    dims = tuple(dict.fromkeys(by))
    try:
        if not dims or set(dims) - set(DIMENSIONS):
            raise Invalid(f"--by takes some of {', '.join(DIMENSIONS)}")
        if not policy.allows_deidentified(purpose):
            raise Forbidden("the tenant's privacy policy does not allow de-identified "
                            "aggregates for that purpose")  # fmt: skip
    except (Invalid, Forbidden) as exc:
        gate.audit_refusal(Action.EXPORT, "", (), exc, f"de-identified aggregate; {purpose}")
        raise
    types = ["Patient", "Condition"] if _CONDITION_DIMS & set(dims) else ["Patient"]
    table, on = Table(dims), rt.clock.now().date()
    for ids in patient_partitions(rt.gate_services, actor, partition_patients):
        stream = gate.export(types, patients=ids)  # audited per patient by the gate
        count_partition(table, (orjson.loads(b) for batch in stream for b in batch.bodies), on)
    document = render(table, policy.small_cell, purpose, isoformat(rt.clock.now()))
    who = requested_by.user_id if requested_by is not None else actor.user_id
    document["release_id"] = record_release(
        rt.gate_services, actor, kind="aggregate", profile="aggregate-small-cell",
        purpose=purpose, project=None,
        detail={"by": list(dims), "requested_by": who, "small_cell": policy.small_cell,
                "cells": len(document["cells"]), "suppression": document["suppression"]},
    )  # fmt: skip
    return document
