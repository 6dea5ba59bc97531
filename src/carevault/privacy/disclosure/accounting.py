"""The patient's accounting of disclosures (45 CFR 164.528), and suspensions of it.

`Accounting.report(actor, patient_id, who, form)`:

- who may ask: the patient (their own record), their representative (a verified, live
  representation: reach.py), and the privacy officer (any patient of the tenant). Anyone else
  is refused (403); another patient, or one that does not exist, is a 404. The read is audited
  (Action.READ on "Disclosure", naming the patient and every entry listed) before the report
  leaves; a refusal is audited in its own transaction.
- what: the ledger's entries from the same calendar day six years before the request
  (164.528(a)(1); Feb 29 → Feb 28) up to the request, leaving out the bases the rule excludes
  (treatment, payment, operations, to the individual, under an authorization …) unless the
  tenant's policy promises more (`PrivacyPolicy.in_accounting`).
- suspensions (164.528(a)(2)): while a law-enforcement or health-oversight suspension is live
  (for this patient or tenant-wide), the disclosures it covers (on its kind's bases, to its
  agency when one is named) made before its end are left out; once it ends they reappear.
  An oral statement suspends for 30 days at most.
- a parent's or guardian's view leaves out entries naming a resource the gate hides from them
  (care a minor consented to on their own: segmentation.py), so the accounting does not tell
  what the record does not.

Forms: accounting_forms.py (JSON, FHIR Bundle of AuditEvent) and accounting_pdf.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Connection, Row, Select, and_, or_, select, update

from carevault.audit.models import Action, AuditRecord, RequestInfo
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Conflict, Forbidden, Invalid, NotFound
from carevault.identity.models import Actor
from carevault.identity.permissions import Permission, Role
from carevault.policy.bases import Basis
from carevault.policy.model import PrivacyPolicy
from carevault.privacy import reach as reach_rules
from carevault.privacy.break_glass import AuditedService, patient_exists
from carevault.privacy.decisions import has_permission
from carevault.privacy.disclosure.ledger import (
    DisclosureEntry,
    LedgerRow,
    accounting_suspensions,
    check_reference,
    read_entries,
)
from carevault.privacy.segmentation import Screen, hides_from_representatives
from carevault.privacy.services import GateServices
from carevault.records.store import valid_id

WINDOW_YEARS = 6
ORAL_LIMIT = timedelta(days=30)  # 164.528(a)(2)(ii)(C)
MAX_SUSPENSION = timedelta(days=10 * 366)
STATEMENT_PURPOSE = "accounting-suspensions"
_TEXT_MAX = 4000


class SuspensionKind(StrEnum):
    LAW_ENFORCEMENT = "law-enforcement"  # 164.512(f)
    HEALTH_OVERSIGHT = "health-oversight"  # 164.512(d)


SUSPENDED_BASES: Mapping[SuspensionKind, frozenset[Basis]] = {
    SuspensionKind.LAW_ENFORCEMENT: frozenset(
        {Basis.LAW_ENFORCEMENT, Basis.REQUIRED_BY_LAW, Basis.SUBPOENA}
    ),
    SuspensionKind.HEALTH_OVERSIGHT: frozenset({Basis.HEALTH_OVERSIGHT}),
}


class StatementForm(StrEnum):
    WRITTEN = "written"
    ORAL = "oral"


@dataclass(frozen=True)
class Suspension:
    suspension_id: str
    patient_id: str | None  # None: every patient of the tenant
    kind: SuspensionKind
    agency_ref: str | None
    agency_name: str
    statement: str
    statement_form: StatementForm
    filed_at: str
    filed_by: str
    ends_at: str
    ended_at: str | None
    ended_by: str | None

    @property
    def until(self) -> str:
        """When it stops hiding: its end, or when it was lifted if earlier."""
        return min(self.ends_at, self.ended_at) if self.ended_at else self.ends_at

    def live(self, now: str) -> bool:
        return now < self.until

    def hides(self, entry: LedgerRow) -> bool:
        if entry.basis not in SUSPENDED_BASES[self.kind] or entry.disclosed_at >= self.until:
            return False
        return self.agency_ref is None or self.agency_ref == entry.recipient_ref


@dataclass(frozen=True)
class AccountingReport:
    tenant_id: str
    patient_id: str
    requested_at: str
    period_start: str
    policy_name: str
    entries: tuple[DisclosureEntry, ...]
    unavailable: tuple[LedgerRow, ...]  # entries whose details were shredded with the key


def window_start(now: datetime) -> datetime:
    """The first instant the accounting covers: the same day six years earlier, at 00:00 UTC."""
    day = now.astimezone(UTC).date()
    try:
        start = day.replace(year=day.year - WINDOW_YEARS)
    except ValueError:  # Feb 29 in a year six years after a non-leap one
        start = date(day.year - WINDOW_YEARS, 2, 28)
    return datetime(start.year, start.month, start.day, tzinfo=UTC)


class Accounting(AuditedService):
    def __init__(self, services: GateServices, policy: Callable[[], PrivacyPolicy]) -> None:
        super().__init__(services)
        self._policy = policy  # asked at each request: the tenant's policy as deployed now

    # -- the report --------------------------------------------------------------------

    def report(
        self, actor: Actor, patient_id: str, who: RequestInfo, form: str
    ) -> AccountingReport:
        detail = f"accounting of disclosures; format={form}"
        refusal: dict[str, object] = {
            "action": Action.READ, "resource_type": "Disclosure",
            "resource_ids": (f"Patient/{patient_id}",) if valid_id(patient_id) else (),
            "detail": detail,
        }  # fmt: skip
        now_dt = self._s.clock.now()
        now, start = isoformat(now_dt), isoformat(window_start(now_dt))
        try:
            with self._s.reader.connect() as conn:
                reach = self._reach(conn, actor, patient_id, now)
                # only what hides a record from a parent's view: the rest of the accounting
                # is the patient's to see, whatever the labels of what was disclosed
                screen = Screen.resolve(conn, reach, actor, codes=hides_from_representatives())
                rows = read_entries(conn, self._s.vault, actor.tenant_id, patient_id, start)
                suspensions = self._suspensions(conn, actor.tenant_id, patient_id, now)
                conn.rollback()
        except CareVaultError as exc:
            self._refused(actor, who, exc, refusal)
            raise
        policy = self._policy()
        shown: list[DisclosureEntry] = []
        unavailable: list[LedgerRow] = []
        for row in rows:
            if row.disclosed_at > now or not policy.in_accounting(row.basis):
                continue
            if any(s.live(now) and s.hides(row) for s in suspensions):
                continue
            if row.entry is None:
                unavailable.append(row)
            elif not any(tuple(r.split("/", 1)) in screen.hidden for r in row.entry.resource_refs):
                shown.append(row.entry)
        record = self._entry(
            actor, who, action=Action.READ, resource_type="Disclosure",
            resource_ids=tuple(e.disclosure_id for e in shown), patient_ids=(patient_id,),
            purpose=reach.purpose((patient_id,)).value,
            on_behalf_of=reach.on_behalf_of((patient_id,)), detail=detail,
        )  # fmt: skip
        self._s.audit.commit(self._s.committer, actor.tenant_id, record)
        return AccountingReport(
            actor.tenant_id, patient_id, now, start, policy.name, tuple(shown), tuple(unavailable)
        )

    def _reach(
        self, conn: Connection, actor: Actor, patient_id: str, now: str
    ) -> reach_rules.Reach:
        """The patient, the representative or the privacy officer; another patient is 404."""
        if actor.role not in (Role.PATIENT, Role.REPRESENTATIVE, Role.PRIVACY_OFFICER):
            raise Forbidden(
                "the accounting of disclosures is for the patient and the privacy officer"
            )
        if actor.role is Role.PRIVACY_OFFICER and not has_permission(
            actor.permissions, Permission.AUDIT_LOG_READ
        ):
            raise Forbidden("your role does not allow this")
        if not valid_id(patient_id) or not patient_exists(conn, actor.tenant_id, patient_id):
            raise NotFound("not found")
        reach = reach_rules.resolve(conn, actor, now)
        patients = reach.scope.patient_ids
        if patients is not None and patient_id not in patients:
            raise NotFound("not found")  # exactly like a patient that does not exist
        return reach

    # -- suspensions (164.528(a)(2)) ----------------------------------------------------

    def _suspensions(
        self, conn: Connection, tenant_id: str, patient_id: str | None, now: str
    ) -> list[Suspension]:
        s = accounting_suspensions
        query = select(s).where(s.c.tenant_id == tenant_id)
        if patient_id is not None:  # this patient's, and the tenant-wide ones, still live
            query = query.where(
                or_(s.c.patient_id.is_(None), s.c.patient_id == patient_id),
                s.c.ends_at > now,
                or_(s.c.ended_at.is_(None), s.c.ended_at > now),
            )
        rows = conn.execute(query.order_by(s.c.filed_at, s.c.suspension_id)).all()
        return [self._opened(row) for row in rows]

    def _opened(self, row: Row[Any]) -> Suspension:
        aad = row.suspension_id.encode()
        sealed = self._s.vault.open_for(row.tenant_id, STATEMENT_PURPOSE, row.statement_sealed, aad)
        plain = orjson.loads(sealed)
        return Suspension(
            row.suspension_id, row.patient_id, SuspensionKind(row.kind), row.agency_ref,
            plain["agency_name"], plain["statement"], StatementForm(row.statement_form),
            row.filed_at, row.filed_by, row.ends_at, row.ended_at, row.ended_by,
        )  # fmt: skip

    def _officer(self, actor: Actor) -> None:
        if actor.role is not Role.PRIVACY_OFFICER or not has_permission(
            actor.permissions, Permission.AUDIT_LOG_READ
        ):
            raise Forbidden("only the privacy officer files and ends suspensions")

    def list_suspensions(self, actor: Actor, who: RequestInfo) -> list[Suspension]:
        """Every suspension of the tenant (live and ended); the read is audited."""
        fields: dict[str, object] = {"action": Action.SEARCH,
                                     "resource_type": "AccountingSuspension"}  # fmt: skip
        try:
            self._officer(actor)
        except CareVaultError as exc:
            self._refused(actor, who, exc, fields)
            raise
        with self._s.reader.connect() as conn:
            found = self._suspensions(conn, actor.tenant_id, None, self._now())
            conn.rollback()
        record = self._entry(
            actor, who, action=Action.SEARCH, resource_type="AccountingSuspension",
            resource_ids=tuple(s.suspension_id for s in found),
            patient_ids=tuple(dict.fromkeys(s.patient_id for s in found if s.patient_id)),
            detail="accounting suspensions listed",
        )  # fmt: skip
        self._s.audit.commit(self._s.committer, actor.tenant_id, record)
        return found

    def file_suspension(self, actor: Actor, who: RequestInfo, body: object) -> Suspension:
        """File a suspension with the agency's statement and an end date."""
        sid = str(uuid.uuid4())
        facts: dict[str, object] = {}
        refusal: dict[str, object] = {"resource_type": "AccountingSuspension",
                                      "detail": "accounting suspension refused"}  # fmt: skip

        def check() -> None:
            self._officer(actor)
            if not isinstance(body, Mapping):
                raise Invalid("the body must be a JSON object")
            facts.update(_suspension_facts(body, self._s.clock.now()))

        def job(conn: Connection) -> tuple[Suspension, AuditRecord]:
            pid = facts["patient_id"]
            if pid is not None and not patient_exists(conn, actor.tenant_id, str(pid)):
                raise NotFound("no such patient")
            now = self._now()
            statement = orjson.dumps(
                {"agency_name": facts["agency_name"], "statement": facts["statement"]}
            )
            sealed = self._s.vault.seal_for(actor.tenant_id, STATEMENT_PURPOSE, statement,
                                            sid.encode())  # fmt: skip
            values = {
                "tenant_id": actor.tenant_id, "suspension_id": sid, "patient_id": pid,
                "kind": str(facts["kind"]), "agency_ref": facts["agency_ref"],
                "statement_form": str(facts["form"]), "statement_sealed": sealed,
                "filed_at": now, "filed_by": actor.user_id, "ends_at": facts["ends_at"],
                "ended_at": None, "ended_by": None,
            }  # fmt: skip
            conn.execute(accounting_suspensions.insert().values(**values))
            record = self._entry(
                actor, who, status=201, resource_type="AccountingSuspension",
                resource_ids=(sid,), patient_ids=(str(pid),) if pid else (),
                detail=f"accounting suspended ({facts['kind']}) until {facts['ends_at']}",
            )  # fmt: skip
            return self._opened(conn.execute(_one(actor.tenant_id, sid)).one()), record

        return self._run(actor, who, refusal, check, job)

    def end_suspension(self, actor: Actor, who: RequestInfo, suspension_id: str) -> Suspension:
        """Lift a suspension now (the agency says it may end early)."""
        refusal: dict[str, object] = {
            "resource_type": "AccountingSuspension",
            "resource_ids": (suspension_id,) if valid_id(suspension_id) else (),
            "detail": "accounting suspension end refused",
        }

        def job(conn: Connection) -> tuple[Suspension, AuditRecord]:
            row = conn.execute(_one(actor.tenant_id, suspension_id)).first()
            if row is None:
                raise NotFound("no such suspension")
            now = self._now()
            if row.ended_at is not None or row.ends_at <= now:
                raise Conflict("this suspension has ended already")
            s = accounting_suspensions
            conn.execute(
                update(s)
                .where(s.c.tenant_id == actor.tenant_id, s.c.suspension_id == suspension_id)
                .values(ended_at=now, ended_by=actor.user_id)
            )
            record = self._entry(
                actor, who, resource_type="AccountingSuspension", resource_ids=(suspension_id,),
                patient_ids=(row.patient_id,) if row.patient_id else (),
                detail="accounting suspension ended",
            )  # fmt: skip
            return self._opened(conn.execute(_one(actor.tenant_id, suspension_id)).one()), record

        return self._run(actor, who, refusal, lambda: self._officer(actor), job)


def _one(tenant_id: str, suspension_id: str) -> Select[Any]:
    s = accounting_suspensions
    return select(s).where(and_(s.c.tenant_id == tenant_id, s.c.suspension_id == suspension_id))


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > _TEXT_MAX:
        raise Invalid(f"{name} is required: 1 to {_TEXT_MAX} characters")
    return value.strip()


def _suspension_facts(body: Mapping[str, object], now: datetime) -> dict[str, object]:
    """The checked fields of a new suspension; raises Invalid naming the field."""
    unknown = set(body) - {"patient", "kind", "agency_name", "agency", "statement",
                           "statement_form", "ends_at"}  # fmt: skip
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))[:200]}")
    patient = body.get("patient")
    if patient is not None and (not isinstance(patient, str) or not valid_id(patient)):
        raise Invalid("patient must be a Patient id, or null for every patient of the tenant")
    try:
        kind = SuspensionKind(str(body.get("kind")))
        form = StatementForm(str(body.get("statement_form", "written")))
    except ValueError:
        raise Invalid(
            "kind must be law-enforcement or health-oversight; statement_form written or oral"
        ) from None
    agency = body.get("agency")
    agency_ref = None if agency is None else check_reference(
        agency, "agency", ("Organization", "Practitioner", "PractitionerRole")
    )  # fmt: skip
    raw_end = body.get("ends_at")
    try:
        ends = datetime.fromisoformat(str(raw_end).replace("Z", "+00:00"))
    except ValueError:
        raise Invalid("ends_at must be an ISO 8601 instant with a time zone") from None
    if ends.tzinfo is None or ends <= now or ends - now > MAX_SUSPENSION:
        raise Invalid("ends_at must be in the future (with a time zone), at most ten years ahead")
    if form is StatementForm.ORAL and ends - now > ORAL_LIMIT:
        raise Invalid("an oral statement suspends for 30 days at most: ask for it in writing")
    return {
        "patient_id": patient, "kind": kind.value, "form": form.value,
        "agency_name": _text(body.get("agency_name"), "agency_name"),
        "statement": _text(body.get("statement"), "statement"), "agency_ref": agency_ref,
        "ends_at": isoformat(ends),
    }  # fmt: skip
