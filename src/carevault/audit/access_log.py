"""The patient's own access log: who looked at my record, when, in what role, and why.

A patient (or representative) sees only entries naming the patients they are linked to,
never another patient's id, resource ids or network addresses; their own accesses are left
out. Each look at the log is itself an audit entry naming those patients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, RowMapping, or_, select

from carevault.audit.models import Action, Outcome, RequestInfo, audit_entries
from carevault.audit.recorder import AuditRecorder
from carevault.audit.reports import AuditReports, ReportFilter, conditions
from carevault.clock import Clock
from carevault.committer import GroupCommitter
from carevault.errors import Forbidden, Invalid, NotFound
from carevault.identity.models import Actor, users
from carevault.identity.permissions import COMPARTMENT_ROLES, Role

MAX_COUNT = 100
NameOf = Callable[[str], str | None]
"""practitioner_id → the practitioner's display name (read through the gate), or None."""

ACCESS_KINDS = {
    Action.READ: "viewed",
    Action.VREAD: "viewed",
    Action.HISTORY: "viewed the history of",
    Action.SEARCH: "searched",
    Action.EVERYTHING: "viewed the whole record",
    Action.EXPORT: "exported",
    Action.CREATE: "added to",
    Action.IMPORT: "added to",
    Action.UPDATE: "changed",
    Action.DELETE: "deleted from",
}
PURPOSES = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "HPAYMT": "payment",
    "HOPERAT": "healthcare operations",
    "PATRQT": "request of the patient",
    "FAMRQT": "request of a family member",
    "PWATRNY": "power of attorney",
    "HCOMPL": "compliance",
    "HLEGAL": "legal",
    "HRESCH": "research",
    "HSYSADMIN": "system administration",
}
_ROLE_LABELS = {
    Role.PRACTITIONER.value: "practitioner",
    Role.STAFF.value: "staff",
    Role.PRACTICE_ADMIN.value: "practice administrator",
    Role.PRIVACY_OFFICER.value: "privacy officer",
    Role.VENDOR_OPERATOR.value: "vendor operator",
    Role.REPRESENTATIVE.value: "representative",
    Role.PATIENT.value: "patient",
    "system": "CareVault system",
}


@dataclass(frozen=True)
class AccessLogPage:
    items: list[dict[str, Any]]
    next_before: int | None


class AccessLog:
    def __init__(
        self, reader: Engine, committer: GroupCommitter, recorder: AuditRecorder, clock: Clock
    ) -> None:
        self._reader = reader
        # Reuse the report service's refusal and read auditing.
        self._reports = AuditReports(reader, committer, recorder, clock)

    def patients_for(
        self, actor: Actor, origin: RequestInfo, patient: str | None
    ) -> frozenset[str]:
        """The patients whose log this actor may read (one, if asked for one)."""
        if actor.role not in COMPARTMENT_ROLES:
            self._reports.refuse(actor, origin, Outcome.DENIED, 403, "access log: not a patient")
            raise Forbidden("the access log is for patients and their representatives")
        if patient is None:
            return actor.patient_ids
        if patient.removeprefix("Patient/") not in actor.patient_ids:
            # Another patient's log looks exactly like one that does not exist.
            self._reports.refuse(actor, origin, Outcome.NOT_FOUND, 404, "access log: not theirs")
            raise NotFound("no such access log")
        return frozenset({patient.removeprefix("Patient/")})

    def rows(
        self,
        actor: Actor,
        origin: RequestInfo,
        patients: frozenset[str],
        flt: ReportFilter,
        count: int,
        before: int | None,
        *,
        what: str,
    ) -> tuple[list[RowMapping], int | None]:
        if not 1 <= count <= MAX_COUNT:
            self._reports.refuse(actor, origin, Outcome.INVALID, 400, f"{what}: bad count")
            raise Invalid(f"count must be between 1 and {MAX_COUNT}")
        found: list[RowMapping] = []
        if patients:
            with self._reader.connect() as conn:
                found = _fetch(conn, actor.tenant_id, patients, flt, count + 1, before)
        more = len(found) > count
        found = found[:count]
        self._reports.record(actor, origin, Outcome.SUCCESS, 200,
                             tuple(str(r["seq"]) for r in found), tuple(sorted(patients)),
                             f"{what}: {flt.describe()}")  # fmt: skip
        return found, (int(found[-1]["seq"]) if more and found else None)

    def page(
        self,
        actor: Actor,
        origin: RequestInfo,
        patient: str | None,
        count: int,
        before: int | None,
        name_of: NameOf,
    ) -> AccessLogPage:
        patients = self.patients_for(actor, origin, patient)
        flt = ReportFilter(outcomes=(Outcome.SUCCESS,), exclude_user=actor.user_id)
        found, next_before = self.rows(
            actor, origin, patients, flt, count, before, what="patient access log"
        )
        people = self._people(actor.tenant_id, {r["actor_id"] for r in found})
        names: dict[str, str | None] = {}
        items = []
        for row in found:
            role, practitioner = people.get(row["actor_id"], (row["actor_role"], None))
            if practitioner and practitioner not in names:
                names[practitioner] = name_of(practitioner)
            items.append(_item(row, role, names.get(practitioner or ""), patients))
        return AccessLogPage(items, next_before)

    def _people(self, tenant_id: str, user_ids: set[str]) -> dict[str, tuple[str, str | None]]:
        if not user_ids:
            return {}
        query = select(users.c.user_id, users.c.role, users.c.practitioner_id).where(
            users.c.tenant_id == tenant_id, users.c.user_id.in_(sorted(user_ids))
        )
        with self._reader.connect() as conn:
            return {r.user_id: (r.role, r.practitioner_id) for r in conn.execute(query)}


def _fetch(
    conn: Connection,
    tenant_id: str,
    patients: frozenset[str],
    flt: ReportFilter,
    limit: int,
    before: int | None,
) -> list[RowMapping]:
    where = conditions(tenant_id, flt)
    where.append(or_(*(audit_entries.c.patient_ids.like(f'%"{p}"%') for p in sorted(patients))))
    if before is not None:
        where.append(audit_entries.c.seq < before)
    query = select(audit_entries).where(*where).order_by(audit_entries.c.seq.desc()).limit(limit)
    return list(conn.execute(query).mappings().all())


def _item(row: RowMapping, role: str, name: str | None, patients: frozenset[str]) -> dict[str, Any]:
    label = _ROLE_LABELS.get(role, "staff")
    if role == "system":
        who = "CareVault system"
    elif role in (Role.REPRESENTATIVE.value, Role.PATIENT.value):
        who = f"a {label}"  # another account holder's name is theirs, not ours, to show
    else:
        who = name or "staff member"
    try:
        kind = ACCESS_KINDS.get(Action(row["action"]), row["action"])
    except ValueError:
        kind = row["action"]
    mine = sorted(p for p in orjson.loads(row["patient_ids"]) if p in patients)
    purpose = row["purpose"]
    return {
        "id": str(row["seq"]),
        "when": row["recorded_at"],
        "who": {"name": who, "role": label},
        "access": kind,
        "what": row["resource_type"],
        "purpose": {"code": purpose, "display": PURPOSES.get(purpose or "", purpose)},
        "patients": mine,
    }
