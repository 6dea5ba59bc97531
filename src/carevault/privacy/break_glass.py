"""Emergency access ("break the glass"): a stated reason opens a 60-minute grant for one
patient, reads under it are audited as ETREAT, the privacy officer is alerted in the same
transaction, and every grant stays in the review report until someone reviews it.

Only users named in advance (`users.may_break_glass`) with a role that treats may open one.
The reason and the review note may mention clinical facts: they are sealed under the
patient's own data key (so shredding the patient shreds them too), never logged or audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from sqlalchemy import Connection, and_, func, insert, select, update

from carevault.audit.models import Action, AuditRecord, Outcome, RequestInfo, audit_entries
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Conflict, Forbidden, Invalid, NotFound
from carevault.identity.models import Actor, users
from carevault.identity.permissions import Permission, Purpose
from carevault.messaging.models import RecipientKind
from carevault.messaging.outbox import enqueue
from carevault.privacy.access_models import break_glass_grants
from carevault.privacy.decisions import BREAK_GLASS_ROLES, has_permission
from carevault.privacy.gate_hooks import refusal_outcome
from carevault.privacy.services import GateServices
from carevault.records.models import resources
from carevault.records.sealing import key_name
from carevault.records.store import valid_id

T = TypeVar("T")
GRANT_LIFETIME = timedelta(minutes=60)
REASON_MIN, REASON_MAX = 10, 1000
NOTE_MIN, NOTE_MAX = 3, 2000
REVIEW_LINK = "/privacy/break-glass/{grant_id}"


@dataclass(frozen=True)
class Grant:
    grant_id: str
    patient_id: str
    opened_at: str
    expires_at: str
    purpose: str = Purpose.ETREAT.value


@dataclass(frozen=True)
class ReviewItem:
    grant_id: str
    user_id: str
    patient_id: str
    opened_at: str
    expires_at: str
    reason: str | None  # None when the patient's key was shredded
    reads: int  # audit entries under ETREAT by this user while the grant was live
    reviewed_at: str | None
    reviewed_by: str | None


class AuditedService:
    """Shared by the access services: a change and its entry commit together; a refusal is
    audited in a transaction of its own after the rollback."""

    def __init__(self, services: GateServices) -> None:
        self._s = services

    def _now(self) -> str:
        return isoformat(self._s.clock.now())

    def _entry(self, actor: Actor, who: RequestInfo, **fields: object) -> AuditRecord:
        values: dict[str, object] = {
            "recorded_at": self._now(), "actor_id": actor.user_id, "actor_role": actor.kind,
            "action": Action.ADMIN, "outcome": Outcome.SUCCESS, "status": 200,
            "purpose": actor.purpose.value, "request_id": who.request_id,
            "source_ip": who.source_ip, "user_agent": who.user_agent, **fields,
        }  # fmt: skip
        return AuditRecord(**values)  # type: ignore[arg-type]

    def _run(
        self,
        actor: Actor,
        who: RequestInfo,
        refusal: dict[str, object],
        check: Callable[[], None],
        job: Callable[[Connection], tuple[T, AuditRecord]],
    ) -> T:
        """`check` runs first (input, permission); `job` in one writer transaction."""
        try:
            check()
            return self._s.audit.commit_with(self._s.committer, actor.tenant_id, job)
        except CareVaultError as exc:
            self._refused(actor, who, exc, refusal)
            raise

    def _refused(
        self, actor: Actor, who: RequestInfo, exc: CareVaultError, fields: dict[str, object]
    ) -> None:
        detail = f"{fields.pop('detail', '')}; {type(exc).__name__}".lstrip("; ")
        record = self._entry(
            actor, who, outcome=refusal_outcome(exc.status), status=exc.status,
            detail=detail, **fields,
        )  # fmt: skip
        self._s.audit.commit(self._s.committer, actor.tenant_id, record)

    def audit_refusal(
        self, actor: Actor, who: RequestInfo, exc: CareVaultError, resource_type: str, detail: str
    ) -> None:
        """For faces that refuse input (a malformed body) once the actor is known."""
        self._refused(actor, who, exc, {"resource_type": resource_type, "detail": detail})

    def _require(self, actor: Actor, permission: Permission) -> None:
        if not has_permission(actor.permissions, permission):
            raise Forbidden("your role does not allow this")


def patient_exists(conn: Connection, tenant_id: str, patient_id: str) -> bool:
    found = conn.execute(
        select(resources.c.deleted).where(
            resources.c.tenant_id == tenant_id,
            resources.c.resource_type == "Patient",
            resources.c.resource_id == patient_id,
        )
    ).first()
    return found is not None and not found.deleted


def check_patient_id(patient_id: object) -> str:
    if not isinstance(patient_id, str) or not valid_id(patient_id):
        raise Invalid("patient must be a Patient id")
    return patient_id


def _text(value: object, name: str, low: int, high: int) -> str:
    if not isinstance(value, str) or not low <= len(value.strip()) <= high:
        raise Invalid(f"{name} is required: {low} to {high} characters")
    return value.strip()


class BreakGlass(AuditedService):
    def _seal(self, tenant_id: str, patient_id: str, grant_id: str, what: str, text: str) -> bytes:
        aad = f"{tenant_id}|break-glass|{grant_id}|{what}".encode()
        return self._s.vault.seal_record(tenant_id, key_name(patient_id), text.encode(), aad)

    def _open(self, tenant_id: str, patient_id: str, grant_id: str, blob: bytes) -> str | None:
        aad = f"{tenant_id}|break-glass|{grant_id}|reason".encode()
        try:
            return self._s.vault.open_record(tenant_id, key_name(patient_id), blob, aad).decode()
        except Exception:  # a shredded key: the reason is gone, the grant stays
            return None

    def open(self, actor: Actor, patient_id: object, reason: object, who: RequestInfo) -> Grant:
        """Open a 60-minute ETREAT grant for one patient, and alert the privacy officer."""
        grant_id = str(uuid.uuid4())
        pid = patient_id if isinstance(patient_id, str) and valid_id(patient_id) else None
        refusal: dict[str, object] = {
            "resource_type": "BreakGlassGrant", "purpose": Purpose.ETREAT.value,
            "patient_ids": (pid,) if pid else (), "detail": "break-glass refused",
        }  # fmt: skip
        stated: list[str] = []

        def check() -> None:
            self._require(actor, Permission.ACCESS_BREAK_GLASS_OPEN)
            if actor.role not in BREAK_GLASS_ROLES:
                raise Forbidden("your role does not allow breaking the glass")
            check_patient_id(patient_id)
            stated.append(_text(reason, "a stated emergency reason", REASON_MIN, REASON_MAX))

        def job(conn: Connection) -> tuple[Grant, AuditRecord]:
            assert pid is not None
            named = conn.execute(
                select(users.c.may_break_glass, users.c.active).where(
                    users.c.tenant_id == actor.tenant_id, users.c.user_id == actor.user_id
                )
            ).first()
            if named is None or not named.active or not named.may_break_glass:
                raise Forbidden("you are not named as a user who may break the glass")
            if not patient_exists(conn, actor.tenant_id, pid):
                raise NotFound("no such patient")
            now_dt = self._s.clock.now()
            grant = Grant(grant_id, pid, isoformat(now_dt), isoformat(now_dt + GRANT_LIFETIME))
            sealed = self._seal(actor.tenant_id, pid, grant_id, "reason", stated[0])
            conn.execute(
                insert(break_glass_grants).values(
                    tenant_id=actor.tenant_id, grant_id=grant_id, user_id=actor.user_id,
                    patient_id=pid, reason_sealed=sealed, opened_at=grant.opened_at,
                    expires_at=grant.expires_at,
                )
            )  # fmt: skip
            enqueue(
                conn, actor.tenant_id, kind=RecipientKind.ROLE, recipient="privacy-officer",
                template="break-glass-alert",
                params={"link": REVIEW_LINK.format(grant_id=grant_id)}, now=grant.opened_at,
            )  # fmt: skip
            record = self._entry(
                actor, who, status=201, purpose=Purpose.ETREAT.value,
                resource_type="BreakGlassGrant", resource_ids=(grant_id,), patient_ids=(pid,),
                detail=f"break-glass opened until {grant.expires_at}",
            )  # fmt: skip
            return grant, record

        return self._run(actor, who, refusal, check, job)

    def report(
        self, actor: Actor, who: RequestInfo, *, include_reviewed: bool = False
    ) -> list[ReviewItem]:
        """Every grant nobody has reviewed yet (or all), oldest first; the read is audited."""
        try:
            self._require(actor, Permission.PRIVACY_BREAK_GLASS_REVIEW)
        except CareVaultError as exc:
            self._refused(actor, who, exc, {"resource_type": "BreakGlassGrant",
                                            "action": Action.SEARCH})  # fmt: skip
            raise
        g, a = break_glass_grants, audit_entries
        reads = (
            select(func.count())
            .where(
                a.c.tenant_id == g.c.tenant_id, a.c.actor_id == g.c.user_id,
                a.c.purpose == Purpose.ETREAT.value, a.c.action != Action.ADMIN.value,
                a.c.recorded_at >= g.c.opened_at, a.c.recorded_at <= g.c.expires_at,
            )
            .scalar_subquery()
        )  # fmt: skip
        query = select(g, reads.label("reads")).where(g.c.tenant_id == actor.tenant_id)
        if not include_reviewed:
            query = query.where(g.c.reviewed_at.is_(None))
        with self._s.reader.connect() as conn:
            rows = conn.execute(query.order_by(g.c.opened_at, g.c.grant_id)).all()
            conn.rollback()
        items = [
            ReviewItem(
                r.grant_id, r.user_id, r.patient_id, r.opened_at, r.expires_at,
                self._open(actor.tenant_id, r.patient_id, r.grant_id, r.reason_sealed),
                int(r.reads), r.reviewed_at, r.reviewed_by,
            )
            for r in rows
        ]  # fmt: skip
        record = self._entry(
            actor, who, action=Action.SEARCH, resource_type="BreakGlassGrant",
            resource_ids=tuple(i.grant_id for i in items),
            patient_ids=tuple(dict.fromkeys(i.patient_id for i in items)),
            detail="break-glass review report",
        )  # fmt: skip
        self._s.audit.commit(self._s.committer, actor.tenant_id, record)
        return items

    def review(self, actor: Actor, grant_id: str, note: object, who: RequestInfo) -> None:
        """Mark a grant reviewed, with a note (sealed): it leaves the review report."""
        refusal: dict[str, object] = {
            "resource_type": "BreakGlassGrant", "resource_ids": (grant_id,),
            "detail": "break-glass review refused",
        }  # fmt: skip
        stated: list[str] = []

        def check() -> None:
            self._require(actor, Permission.PRIVACY_BREAK_GLASS_REVIEW)
            stated.append(_text(note, "a review note", NOTE_MIN, NOTE_MAX))

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            g = break_glass_grants
            key = and_(g.c.tenant_id == actor.tenant_id, g.c.grant_id == grant_id)
            row = conn.execute(select(g.c.patient_id, g.c.reviewed_at).where(key)).first()
            if row is None:
                raise NotFound("no such break-glass grant")
            if row.reviewed_at is not None:
                raise Conflict("this grant was reviewed already")
            now = self._now()
            sealed = self._seal(actor.tenant_id, row.patient_id, grant_id, "note", stated[0])
            conn.execute(
                update(g)
                .where(key)
                .values(reviewed_at=now, reviewed_by=actor.user_id, review_note_sealed=sealed)
            )
            record = self._entry(
                actor, who, resource_type="BreakGlassGrant", resource_ids=(grant_id,),
                patient_ids=(row.patient_id,), detail="break-glass reviewed",
            )  # fmt: skip
            return None, record

        self._run(actor, who, refusal, check, job)

    def name_user(self, actor: Actor, user_id: str, allowed: object, who: RequestInfo) -> None:
        """Name (or un-name) a workforce user as one who may break the glass."""
        refusal: dict[str, object] = {
            "resource_type": "User", "resource_ids": (user_id,),
            "detail": "break-glass naming refused",
        }  # fmt: skip

        def check() -> None:
            self._require(actor, Permission.IDENTITY_USER_MANAGE)
            if not isinstance(allowed, bool):
                raise Invalid("allowed must be true or false")

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            key = and_(users.c.tenant_id == actor.tenant_id, users.c.user_id == user_id)
            row = conn.execute(select(users.c.role).where(key)).first()
            if row is None:
                raise NotFound("no such user in this tenant")
            if allowed and row.role not in {r.value for r in BREAK_GLASS_ROLES}:
                raise Invalid("only practitioners may be named to break the glass")
            conn.execute(update(users).where(key).values(may_break_glass=allowed))
            detail = "break-glass allowed" if allowed else "break-glass no longer allowed"
            return None, self._entry(
                actor, who, resource_type="User", resource_ids=(user_id,), detail=detail
            )

        self._run(actor, who, refusal, check, job)
