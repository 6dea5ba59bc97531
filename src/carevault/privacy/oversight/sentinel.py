"""The snooping sentinel: walks a tenant's audit chain after the fact and raises alerts.

It reads entries past its watermark, keeps the successful reads of workforce users that
name patients, and raises an alert when the user's own Practitioner shares the patient's
family name or address, when the patient was flagged restricted at the time of the read,
or when the user opened far more patients that day than usual (rules.VolumeRule). One
alert per (user, patient, kind) per day; later reads only add their audit entries to it.
Everything a batch learns (alerts, their audit links, outbox messages, the watermark) is
written in one transaction, so a crash between scans neither loses nor repeats an alert.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import partial
from typing import Any

import orjson
from sqlalchemy import Connection, func, select

from carevault.audit.models import audit_entries
from carevault.clock import isoformat
from carevault.identity.models import Actor, users
from carevault.privacy.gate import Gate
from carevault.privacy.oversight import alerts, fingerprints
from carevault.privacy.oversight.rules import Opening, VolumeRule, openings, watched
from carevault.privacy.oversight_models import AlertKind, daily_opens, restricted_patients
from carevault.privacy.services import GateServices

BATCH = 2000


@dataclass(frozen=True)
class ScanReport:
    tenant_id: str
    entries: int  # audit entries walked
    last_seq: int
    raised: tuple[str, ...]  # ids of the alerts raised by this scan


@dataclass
class _Batch:
    mark: int
    last_seq: int
    opens: list[Opening]
    practitioner_of: dict[str, str]
    prints: list[fingerprints.Fingerprint] = field(default_factory=list)


class Sentinel:
    def __init__(
        self,
        services: GateServices,
        open_gate: Callable[[Actor], Gate],
        rule: VolumeRule | None = None,
        *,
        batch: int = BATCH,
    ) -> None:
        self._s = services
        self._open_gate = open_gate
        self.rule = rule or VolumeRule()
        self._batch = batch

    def scan(self, tenant_id: str) -> ScanReport:
        walked, raised, last = 0, [], 0
        while True:
            batch = self._read(tenant_id)
            if batch is None:
                break
            walked += batch.last_seq - batch.mark
            last = batch.last_seq
            work = partial(self._write, tenant_id=tenant_id, batch=batch)
            outcome = self._s.committer.submit(work)
            if outcome is None:
                break  # another scan of this tenant moved the watermark first
            raised += outcome
        return ScanReport(tenant_id, walked, last, tuple(raised))

    # -- reading ---------------------------------------------------------------

    def _read(self, tenant_id: str) -> _Batch | None:
        with self._s.reader.connect() as conn:
            mark = alerts.watermark(conn, tenant_id)
            rows = conn.execute(
                select(
                    audit_entries.c.seq,
                    audit_entries.c.actor_id,
                    audit_entries.c.actor_role,
                    audit_entries.c.action,
                    audit_entries.c.outcome,
                    audit_entries.c.recorded_at,
                    audit_entries.c.patient_ids,
                )
                .where(audit_entries.c.tenant_id == tenant_id, audit_entries.c.seq > mark)
                .order_by(audit_entries.c.seq)
                .limit(self._batch)
            ).all()
            if not rows:
                return None
            opens = [o for r in rows if _watched(r) for o in _openings(r)]
            practitioner_of = _practitioners(conn, tenant_id, {o.user_id for o in opens})
            # Only users who are a Practitioner can share a name or address with a patient.
            patients = {o.patient_id for o in opens if o.user_id in practitioner_of}
            stale_patients = fingerprints.stale(conn, tenant_id, "Patient", patients)
            stale_staff = fingerprints.stale(
                conn, tenant_id, "Practitioner", set(practitioner_of.values())
            )
            conn.rollback()
        batch = _Batch(mark, rows[-1].seq, opens, practitioner_of)
        hasher = self._s.vault.hasher(tenant_id)
        for rtype, wanted in (("Patient", stale_patients), ("Practitioner", stale_staff)):
            if wanted:
                batch.prints += fingerprints.take(self._open_gate, hasher, tenant_id, rtype, wanted)
        return batch

    # -- writing ---------------------------------------------------------------

    def _write(self, conn: Connection, *, tenant_id: str, batch: _Batch) -> list[str] | None:
        if alerts.watermark(conn, tenant_id) != batch.mark:
            return None
        now = isoformat(self._s.clock.now())
        fingerprints.store(conn, tenant_id, batch.prints)
        found = self._per_patient(conn, tenant_id, batch)
        found += self._volume(conn, tenant_id, batch.opens)
        raised, records = alerts.persist(conn, tenant_id, found, now)
        alerts.set_watermark(conn, tenant_id, batch.last_seq, now)
        oldest = (
            date.fromisoformat(now[:10]) - timedelta(days=self.rule.window_days + 1)
        ).isoformat()
        conn.execute(
            daily_opens.delete().where(
                daily_opens.c.tenant_id == tenant_id, daily_opens.c.day < oldest
            )
        )
        if records:
            self._s.audit.append(conn, tenant_id, records)
        return raised

    def _per_patient(self, conn: Connection, tenant_id: str, batch: _Batch) -> list[alerts.Finding]:
        opens = batch.opens
        flags = _restrictions(conn, tenant_id, {o.patient_id for o in opens})
        staff_marks = fingerprints.digests_of(
            conn, tenant_id, "Practitioner", set(batch.practitioner_of.values())
        )
        patients = {o.patient_id for o in opens if o.user_id in batch.practitioner_of}
        patient_marks = fingerprints.digests_of(conn, tenant_id, "Patient", patients)
        seqs: dict[tuple[str, str, AlertKind, str], set[int]] = defaultdict(set)
        for o in opens:
            if any(start <= o.recorded_at and (end is None or o.recorded_at < end)
                   for start, end in flags.get(o.patient_id, ())):  # fmt: skip
                seqs[(o.user_id, o.patient_id, AlertKind.RESTRICTED, o.day)].add(o.seq)
            practitioner = batch.practitioner_of.get(o.user_id)
            if practitioner is None:
                continue
            shared = staff_marks.get(practitioner, set()) & patient_marks.get(o.patient_id, set())
            for kind in {k for k, _ in shared}:
                alert_kind = AlertKind.SAME_SURNAME if kind == "family" else AlertKind.SAME_ADDRESS
                seqs[(o.user_id, o.patient_id, alert_kind, o.day)].add(o.seq)
        return [alerts.Finding(u, p, k, d, frozenset(s)) for (u, p, k, d), s in seqs.items()]

    def _volume(
        self, conn: Connection, tenant_id: str, opens: list[Opening]
    ) -> list[alerts.Finding]:
        """Record who opened whom each day, then judge each (user, day) this batch touched."""
        first: dict[tuple[str, str, str], int] = {}
        for o in opens:
            first.setdefault((o.user_id, o.day, o.patient_id), o.seq)
        found: list[alerts.Finding] = []
        for user_id, day in sorted({(u, d) for u, d, _ in first}):
            known = _opened(conn, tenant_id, user_id, day)
            fresh = [
                {"tenant_id": tenant_id, "user_id": u, "day": d, "patient_id": p, "first_seq": s}
                for (u, d, p), s in first.items()
                if u == user_id and d == day and p not in known
            ]
            if fresh:
                conn.execute(daily_opens.insert(), fresh)
            today = _opened(conn, tenant_id, user_id, day)
            history = _history(conn, tenant_id, user_id, day, self.rule.window_days)
            if self.rule.exceeded(len(today), history):
                found.append(
                    alerts.Finding(
                        user_id, "", AlertKind.VOLUME, day, frozenset(today.values()),
                        opened=len(today), threshold=self.rule.threshold(history),
                    )
                )  # fmt: skip
        return found


def _watched(row: Any) -> bool:
    return watched(row.actor_role, row.action, row.outcome)


def _openings(row: Any) -> list[Opening]:
    try:
        ids = orjson.loads(row.patient_ids)
    except orjson.JSONDecodeError:
        return []
    return list(
        openings(row.seq, row.actor_id, row.recorded_at, ids if isinstance(ids, list) else [])
    )


def _practitioners(conn: Connection, tenant_id: str, user_ids: set[str]) -> dict[str, str]:
    if not user_ids:
        return {}
    rows = conn.execute(
        select(users.c.user_id, users.c.practitioner_id).where(
            users.c.tenant_id == tenant_id,
            users.c.user_id.in_(sorted(user_ids)),
            users.c.practitioner_id.is_not(None),
        )
    )
    return {r.user_id: r.practitioner_id for r in rows}


def _restrictions(
    conn: Connection, tenant_id: str, patient_ids: set[str]
) -> dict[str, list[tuple[str, str | None]]]:
    found: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    if patient_ids:
        for r in conn.execute(
            select(
                restricted_patients.c.patient_id,
                restricted_patients.c.flagged_at,
                restricted_patients.c.unflagged_at,
            ).where(
                restricted_patients.c.tenant_id == tenant_id,
                restricted_patients.c.patient_id.in_(sorted(patient_ids)),
            )
        ):
            found[r.patient_id].append((r.flagged_at, r.unflagged_at))
    return found


def _opened(conn: Connection, tenant_id: str, user_id: str, day: str) -> dict[str, int]:
    rows = conn.execute(
        select(daily_opens.c.patient_id, daily_opens.c.first_seq).where(
            daily_opens.c.tenant_id == tenant_id,
            daily_opens.c.user_id == user_id,
            daily_opens.c.day == day,
        )
    )
    return {r.patient_id: r.first_seq for r in rows}


def _history(conn: Connection, tenant_id: str, user_id: str, day: str, window: int) -> list[int]:
    start = (date.fromisoformat(day) - timedelta(days=window)).isoformat()
    rows = conn.execute(
        select(func.count())
        .where(
            daily_opens.c.tenant_id == tenant_id,
            daily_opens.c.user_id == user_id,
            daily_opens.c.day >= start,
            daily_opens.c.day < day,
        )
        .group_by(daily_opens.c.day)
    )
    return [int(r[0]) for r in rows]
