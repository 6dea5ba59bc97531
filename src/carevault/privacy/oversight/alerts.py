"""Writing alerts: one per (user, patient, kind, day), its audit links, its outbox message."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.messaging.models import RecipientKind
from carevault.messaging.outbox import enqueue
from carevault.privacy.oversight.fingerprints import SENTINEL_REASON
from carevault.privacy.oversight_models import (
    AlertKind,
    AlertState,
    sentinel_watermarks,
    snooping_alert_entries,
    snooping_alerts,
)

SENTINEL_ID = f"system:{SENTINEL_REASON}"
ALERT_TEMPLATE = "snooping-alert"
ALERT_RECIPIENT = "privacy-officer"


@dataclass(frozen=True)
class Finding:
    user_id: str
    patient_id: str  # "" for volume
    kind: AlertKind
    day: str
    seqs: frozenset[int]
    opened: int | None = None
    threshold: int | None = None


def alert_link(alert_id: str) -> str:
    return f"/privacy/alerts/{alert_id}"


def watermark(conn: Connection, tenant_id: str) -> int:
    found = conn.execute(
        select(sentinel_watermarks.c.last_seq).where(sentinel_watermarks.c.tenant_id == tenant_id)
    ).scalar()
    return int(found) if found is not None else 0


def set_watermark(conn: Connection, tenant_id: str, seq: int, now: str) -> None:
    done = conn.execute(
        update(sentinel_watermarks)
        .where(sentinel_watermarks.c.tenant_id == tenant_id)
        .values(last_seq=seq, scanned_at=now)
    )
    if done.rowcount == 0:
        conn.execute(
            insert(sentinel_watermarks).values(tenant_id=tenant_id, last_seq=seq, scanned_at=now)
        )


def persist(
    conn: Connection, tenant_id: str, findings: list[Finding], now: str
) -> tuple[list[str], list[AuditRecord]]:
    """Raise new alerts (with their message and audit entry) or extend today's ones."""
    raised: list[str] = []
    records: list[AuditRecord] = []
    for f in findings:
        alert_id = conn.execute(
            select(snooping_alerts.c.alert_id).where(
                snooping_alerts.c.tenant_id == tenant_id,
                snooping_alerts.c.user_id == f.user_id,
                snooping_alerts.c.patient_id == f.patient_id,
                snooping_alerts.c.kind == f.kind.value,
                snooping_alerts.c.day == f.day,
            )
        ).scalar()
        if alert_id is None:
            alert_id = str(uuid.uuid4())
            conn.execute(
                insert(snooping_alerts).values(
                    tenant_id=tenant_id,
                    alert_id=alert_id,
                    user_id=f.user_id,
                    patient_id=f.patient_id,
                    kind=f.kind.value,
                    day=f.day,
                    state=AlertState.OPEN.value,
                    raised_at=now,
                    opened_count=f.opened,
                    threshold=f.threshold,
                )
            )
            enqueue(
                conn,
                tenant_id,
                kind=RecipientKind.ROLE,
                recipient=ALERT_RECIPIENT,
                template=ALERT_TEMPLATE,
                params={"link": alert_link(alert_id)},
                now=now,
            )
            raised.append(alert_id)
            records.append(_raised_record(now, alert_id, f))
        elif f.opened is not None:
            conn.execute(
                update(snooping_alerts)
                .where(
                    snooping_alerts.c.tenant_id == tenant_id, snooping_alerts.c.alert_id == alert_id
                )
                .values(opened_count=f.opened, threshold=f.threshold)
            )
        _link(conn, tenant_id, alert_id, f.seqs)
    return raised, records


def _link(conn: Connection, tenant_id: str, alert_id: str, seqs: frozenset[int]) -> None:
    linked = set(
        conn.execute(
            select(snooping_alert_entries.c.seq).where(
                snooping_alert_entries.c.tenant_id == tenant_id,
                snooping_alert_entries.c.alert_id == alert_id,
            )
        ).scalars()
    )
    fresh = sorted(seqs - linked)
    if fresh:
        conn.execute(
            insert(snooping_alert_entries),
            [{"tenant_id": tenant_id, "alert_id": alert_id, "seq": s} for s in fresh],
        )


def _raised_record(now: str, alert_id: str, f: Finding) -> AuditRecord:
    # Ids and codes only: the alert's own row says which patient; no names, no addresses.
    return AuditRecord(
        recorded_at=now,
        actor_id=SENTINEL_ID,
        actor_role="system",
        action=Action.ADMIN,
        outcome=Outcome.SUCCESS,
        resource_type="SnoopingAlert",
        resource_ids=(alert_id,),
        detail=f"{SENTINEL_REASON}; alert raised: {f.kind.value}, user {f.user_id}, day {f.day}",
    )
