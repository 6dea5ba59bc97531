"""Audit reports for the privacy officer: filter, page, export. Reading them is audited too.

Filters are ids and codes (patient id, user id, action, outcome, time range), never
names: the audit holds no PHI, and the report's own audit entry repeats the filters.
Pages run newest first with a seq cursor (keyset), so a page is one indexed range read.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Connection, Engine, RowMapping, select

from carevault.audit.models import Action, AuditRecord, Outcome, RequestInfo, audit_entries
from carevault.audit.recorder import AuditRecorder
from carevault.clock import Clock, isoformat
from carevault.committer import GroupCommitter
from carevault.errors import Forbidden, Invalid, TooLarge
from carevault.identity.models import Actor
from carevault.identity.permissions import Permission

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_USER = re.compile(r"^[\x21-\x7e][\x20-\x7e]{0,127}$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
EXPORT_MAX = 10_000
"""Most entries one CSV or PDF export carries; more asks the officer to narrow the filters."""
MAX_COUNT = 200
E = TypeVar("E", Action, Outcome)


def has_permission(actor: Actor, permission: Permission) -> bool:
    return permission in actor.permissions


def instant(text: str, name: str, *, end_of_day: bool = False) -> str:
    """An ISO date or instant as our sortable UTC form; a date alone is its start (or end)."""
    try:
        if _DATE.match(text):
            day = datetime.fromisoformat(text + "T00:00:00+00:00")
            return isoformat(day + timedelta(days=1) if end_of_day else day)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{name} must be an ISO 8601 date or instant") from None
    if moment.tzinfo is None:
        raise Invalid(f"{name} needs a time zone (e.g. Z)")
    return isoformat(moment)


@dataclass(frozen=True)
class ReportFilter:
    patient_id: str | None = None
    user_id: str | None = None
    actions: tuple[Action, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    since: str | None = None
    """Inclusive, our UTC instant form."""
    until: str | None = None
    """Exclusive."""
    exclude_user: str | None = None

    def describe(self) -> str:
        parts = [
            f"patient={self.patient_id}" if self.patient_id else "",
            f"user={self.user_id}" if self.user_id else "",
            f"action={','.join(self.actions)}" if self.actions else "",
            f"outcome={','.join(self.outcomes)}" if self.outcomes else "",
            f"since={self.since}" if self.since else "",
            f"until={self.until}" if self.until else "",
        ]
        return " ".join(p for p in parts if p) or "all entries"

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> ReportFilter:
        """From query parameters patient, user, action, outcome (comma lists), since, until."""
        patient = params.get("patient")
        if patient is not None:
            patient = patient.removeprefix("Patient/")
            if not _ID.match(patient):
                raise Invalid("patient must be a Patient id")
        user = params.get("user")
        if user is not None and not _USER.match(user):
            raise Invalid("user must be a user id")
        return cls(
            patient_id=patient,
            user_id=user,
            actions=_codes(params.get("action"), Action, "action"),
            outcomes=_codes(params.get("outcome"), Outcome, "outcome"),
            since=instant(params["since"], "since") if params.get("since") else None,
            until=(
                instant(params["until"], "until", end_of_day=True) if params.get("until") else None
            ),
        )


def _codes(text: str | None, enum: type[E], name: str) -> tuple[E, ...]:
    if not text:
        return ()
    try:
        return tuple(enum(v.strip()) for v in text.split(","))
    except ValueError:
        allowed = ", ".join(e.value for e in enum)
        raise Invalid(f"{name} must be one or more of: {allowed}") from None


def conditions(tenant_id: str, flt: ReportFilter) -> list[ColumnElement[bool]]:
    c = audit_entries.c
    where: list[ColumnElement[bool]] = [c.tenant_id == tenant_id]
    if flt.patient_id:
        # patient_ids is a sorted JSON list of validated ids: an exact quoted match.
        where.append(c.patient_ids.like(f'%"{flt.patient_id}"%'))
    if flt.user_id:
        where.append(c.actor_id == flt.user_id)
    if flt.exclude_user:
        where.append(c.actor_id != flt.exclude_user)
    if flt.actions:
        where.append(c.action.in_([a.value for a in flt.actions]))
    if flt.outcomes:
        where.append(c.outcome.in_([o.value for o in flt.outcomes]))
    if flt.since:
        where.append(c.recorded_at >= flt.since)
    if flt.until:
        where.append(c.recorded_at < flt.until)
    return where


def fetch(
    conn: Connection, tenant_id: str, flt: ReportFilter, limit: int, before: int | None = None
) -> list[RowMapping]:
    """Up to `limit` entries, newest first, with seq below `before`."""
    where = conditions(tenant_id, flt)
    if before is not None:
        where.append(audit_entries.c.seq < before)
    query = select(audit_entries).where(*where).order_by(audit_entries.c.seq.desc()).limit(limit)
    return list(conn.execute(query).mappings().all())


@dataclass(frozen=True)
class ReportPage:
    entries: list[RowMapping]
    next_before: int | None
    generated_at: str
    filters: ReportFilter = field(default_factory=ReportFilter)


class AuditReports:
    """The privacy officer's window on the chain; every look is itself an audit entry."""

    def __init__(
        self, reader: Engine, committer: GroupCommitter, recorder: AuditRecorder, clock: Clock
    ) -> None:
        self._reader = reader
        self._committer = committer
        self._recorder = recorder
        self._clock = clock

    def page(
        self, actor: Actor, origin: RequestInfo, flt: ReportFilter, count: int, before: int | None
    ) -> ReportPage:
        self.require(actor, origin, Permission.AUDIT_LOG_READ, "audit report")
        if not 1 <= count <= MAX_COUNT:
            self.refuse(actor, origin, Outcome.INVALID, 400, "audit report: bad count")
            raise Invalid(f"count must be between 1 and {MAX_COUNT}")
        with self._reader.connect() as conn:
            rows = fetch(conn, actor.tenant_id, flt, count + 1, before)
        more = len(rows) > count
        rows = rows[:count]
        self._audit_read(actor, origin, flt, rows, "audit report")
        next_before = int(rows[-1]["seq"]) if more and rows else None
        return ReportPage(rows, next_before, isoformat(self._clock.now()), flt)

    def export(self, actor: Actor, origin: RequestInfo, flt: ReportFilter, kind: str) -> ReportPage:
        """Every matching entry (at most EXPORT_MAX), for a CSV or PDF file."""
        self.require(actor, origin, Permission.AUDIT_LOG_READ, f"audit {kind} export")
        with self._reader.connect() as conn:
            rows = fetch(conn, actor.tenant_id, flt, EXPORT_MAX + 1)
        if len(rows) > EXPORT_MAX:
            self.refuse(actor, origin, Outcome.INVALID, 413, f"audit {kind} export: too many")
            raise TooLarge(f"more than {EXPORT_MAX} entries match; narrow the filters")
        self._audit_read(actor, origin, flt, rows, f"audit {kind} export")
        return ReportPage(rows, None, isoformat(self._clock.now()), flt)

    # -- permission and the audit of reading the audit --------------------------

    def require(self, actor: Actor, origin: RequestInfo, permission: Permission, what: str) -> None:
        if not has_permission(actor, permission):
            self.refuse(actor, origin, Outcome.DENIED, 403, f"{what}: {permission} required")
            raise Forbidden(f"{what} needs the {permission} permission")

    def refuse(
        self, actor: Actor, origin: RequestInfo, outcome: Outcome, status: int, why: str
    ) -> None:
        self.record(actor, origin, outcome, status, (), (), why)

    def _audit_read(
        self,
        actor: Actor,
        origin: RequestInfo,
        flt: ReportFilter,
        rows: Sequence[RowMapping],
        what: str,
    ) -> None:
        seqs = tuple(str(r["seq"]) for r in rows)
        patients = (flt.patient_id,) if flt.patient_id else ()
        self.record(actor, origin, Outcome.SUCCESS, 200, seqs, patients,
                    f"{what}: {flt.describe()}")  # fmt: skip

    def record(
        self,
        actor: Actor,
        origin: RequestInfo,
        outcome: Outcome,
        status: int,
        seqs: tuple[str, ...],
        patients: tuple[str, ...],
        detail: str,
    ) -> None:
        self._recorder.commit(
            self._committer,
            actor.tenant_id,
            AuditRecord.by(
                actor,
                isoformat(self._clock.now()),
                Action.SEARCH,
                outcome=outcome,
                status=status,
                resource_type="AuditEvent",
                resource_ids=seqs,
                patient_ids=patients,
                origin=origin,
                detail=detail[:500],
            ),
        )


CSV_COLUMNS = (
    "seq", "recorded_at", "actor_id", "actor_role", "on_behalf_of", "action", "outcome",
    "status", "purpose", "resource_type", "resource_ids", "patient_ids", "source_ip",
    "request_id",
)  # fmt: skip


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A spreadsheet would run a cell starting with these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(page: ReportPage) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in page.entries:
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue().encode()
