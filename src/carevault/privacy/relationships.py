"""Representatives and workforce links: who may act for a patient, and who a user is.

A representative reaches a patient only through a recorded relationship that someone on the
practice's side has verified (by whom and how is kept), that carries its supporting document
when the kind needs one (a DocumentReference in the patient's record, or the SHA-256 digest
of a document sealed elsewhere), and that has not expired or been revoked. A parent's or
guardian's reach ends on the minor's 18th birthday, computed once at verification from
Patient.birthDate (read through the gate as a named system actor), so no birth date is
needed at request time. A partial birth date ends the reach at its earliest reading.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import orjson
from sqlalchemy import Connection, Row, and_, insert, select, update

from carevault.audit.models import AuditRecord, RequestInfo
from carevault.clock import isoformat
from carevault.errors import CareVaultError, Conflict, Invalid, NotFound, Unprocessable
from carevault.identity.models import Actor, system_actor, users
from carevault.identity.permissions import Permission, Role
from carevault.privacy.access_models import (
    DOCUMENTED_KINDS,
    MINOR_KINDS,
    RepresentationKind,
    representations,
)
from carevault.privacy.break_glass import AuditedService, check_patient_id, patient_exists
from carevault.privacy.decisions import WORKFORCE
from carevault.privacy.services import GateServices
from carevault.records.models import resources
from carevault.records.store import valid_id

ADULT_AGE = 18
MAX_EXPIRY = timedelta(days=10 * 366)
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_BIRTH = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")


class VerificationMethod(StrEnum):
    """How the practice checked the relationship."""

    IN_PERSON_ID = "in-person-id"  # identity documents checked at the desk
    BIRTH_CERTIFICATE = "birth-certificate"
    COURT_ORDER = "court-order"
    POWER_OF_ATTORNEY = "power-of-attorney"
    SIGNED_AUTHORIZATION = "signed-authorization"


@dataclass(frozen=True)
class Representation:
    representation_id: str
    representative_id: str
    patient_id: str
    kind: str
    document_ref: str | None
    document_digest: str | None
    expires_at: str | None
    reach_ends_at: str | None
    recorded_by: str
    recorded_at: str
    verified_by: str | None
    verified_at: str | None
    verification_method: str | None
    revoked_by: str | None
    revoked_at: str | None

    @staticmethod
    def of(row: Row[Any]) -> Representation:
        return Representation(**{k: getattr(row, k) for k in Representation.__dataclass_fields__})


def eighteenth_birthday(birth_date: str) -> str:
    """The instant (UTC midnight) a person born on `birth_date` turns 18; Feb 29 → Feb 28."""
    match = _BIRTH.match(birth_date)
    if match is None:
        raise Unprocessable("the patient's birth date is not a FHIR date")
    year, month, day = int(match[1]), int(match[2] or 1), int(match[3] or 1)
    try:
        date(year, month, day)
    except ValueError:
        raise Unprocessable("the patient's birth date is not a valid date") from None
    adult_year = year + ADULT_AGE
    if month == 2 and day == 29:
        try:
            date(adult_year, 2, 29)
        except ValueError:
            day = 28
    return isoformat(datetime(adult_year, month, day, tzinfo=UTC))


def _expiry(value: object, now: datetime) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise Invalid("expires_at must be an ISO date-time with a timezone")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Invalid("expires_at must be an ISO date-time with a timezone") from None
    if when.tzinfo is None:
        raise Invalid("expires_at needs a timezone (e.g. 2027-01-01T00:00:00+00:00)")
    if when <= now or when - now > MAX_EXPIRY:
        raise Invalid("expires_at must be in the future, at most ten years ahead")
    return isoformat(when)


class Representations(AuditedService):
    def __init__(self, services: GateServices, read_patient: Callable[[Actor, str], Any]) -> None:
        super().__init__(services)
        self._read_patient = read_patient  # the gate's read, as a named system actor

    def _refusal(self, ids: tuple[str, ...], patient: str | None, detail: str) -> dict[str, object]:
        return {
            "resource_type": "Representation", "resource_ids": ids,
            "patient_ids": (patient,) if patient else (), "detail": detail,
        }  # fmt: skip

    def record(
        self,
        actor: Actor,
        who: RequestInfo,
        *,
        representative_id: object,
        patient_id: object,
        kind: object,
        document_ref: object = None,
        document_digest: object = None,
        expires_at: object = None,
    ) -> Representation:
        """Record a relationship (not yet verified: it grants nothing until verified)."""
        rid = str(uuid.uuid4())
        pid = patient_id if isinstance(patient_id, str) and valid_id(patient_id) else None
        facts: dict[str, Any] = {}

        def check() -> None:
            self._require(actor, Permission.ACCESS_REPRESENTATION_MANAGE)
            check_patient_id(patient_id)
            if not isinstance(representative_id, str) or not valid_id(representative_id):
                raise Invalid("representative must be a user id")
            try:
                facts["kind"] = RepresentationKind(str(kind))
            except ValueError:
                names = ", ".join(k.value for k in RepresentationKind)
                raise Invalid(f"kind must be one of: {names}") from None
            if document_ref is not None and (
                not isinstance(document_ref, str) or not valid_id(document_ref)
            ):
                raise Invalid("document_reference must be a DocumentReference id")
            if document_digest is not None and (
                not isinstance(document_digest, str) or not _DIGEST.match(document_digest)
            ):
                raise Invalid("document_digest must be a lower-case hex SHA-256 digest")
            facts["expires_at"] = _expiry(expires_at, self._s.clock.now())
            if facts["kind"] in DOCUMENTED_KINDS and (
                (document_ref is None and document_digest is None) or facts["expires_at"] is None
            ):
                raise Invalid(f"a {facts['kind'].value} needs a supporting document and an expiry")

        def job(conn: Connection) -> tuple[Representation, AuditRecord]:
            assert pid is not None
            assert isinstance(representative_id, str)
            user = conn.execute(
                select(users.c.role, users.c.active).where(
                    users.c.tenant_id == actor.tenant_id, users.c.user_id == representative_id
                )
            ).first()
            if user is None or user.role != Role.REPRESENTATIVE.value or not user.active:
                raise Unprocessable("representative must be an active representative user here")
            if not patient_exists(conn, actor.tenant_id, pid):
                raise NotFound("no such patient")
            if document_ref is not None and not self._document_of(conn, actor, str(document_ref),
                                                                  pid):  # fmt: skip
                raise Unprocessable("document_reference must be a DocumentReference of the patient")
            live = conn.execute(
                select(representations.c.representation_id).where(
                    representations.c.tenant_id == actor.tenant_id,
                    representations.c.representative_id == representative_id,
                    representations.c.patient_id == pid,
                    representations.c.revoked_at.is_(None),
                )
            ).first()
            if live is not None:
                raise Conflict("a live relationship between them is recorded; revoke it first")
            now = self._now()
            values = {
                "tenant_id": actor.tenant_id, "representation_id": rid,
                "representative_id": representative_id, "patient_id": pid,
                "kind": facts["kind"].value, "document_ref": document_ref,
                "document_digest": document_digest, "expires_at": facts["expires_at"],
                "reach_ends_at": None, "recorded_by": actor.user_id, "recorded_at": now,
                "verified_by": None, "verified_at": None, "verification_method": None,
                "revoked_by": None, "revoked_at": None,
            }  # fmt: skip
            conn.execute(insert(representations).values(**values))
            record = self._entry(
                actor, who, status=201, resource_type="Representation", resource_ids=(rid,),
                patient_ids=(pid,), detail=f"representation recorded, kind {facts['kind'].value}",
            )  # fmt: skip
            values.pop("tenant_id")
            return Representation(**values), record

        return self._run(actor, who, self._refusal((), pid, "representation refused"), check, job)

    def verify(
        self, actor: Actor, who: RequestInfo, representation_id: str, method: object
    ) -> Representation:
        """Verify a recorded relationship; a parent's or guardian's reach ends at 18."""
        found = self._get(actor, representation_id)
        refusal = self._refusal((representation_id,), found.patient_id if found else None,
                                "representation verification refused")  # fmt: skip
        facts: dict[str, Any] = {}

        def check() -> None:
            self._require(actor, Permission.ACCESS_REPRESENTATION_MANAGE)
            if found is None:
                raise NotFound("no such representation")
            try:
                facts["method"] = VerificationMethod(str(method))
            except ValueError:
                names = ", ".join(m.value for m in VerificationMethod)
                raise Invalid(f"method must be one of: {names}") from None
            facts["ends"] = None
            if RepresentationKind(found.kind) in MINOR_KINDS:
                facts["ends"] = self._reach_end(actor, found.patient_id)

        def job(conn: Connection) -> tuple[Representation, AuditRecord]:
            assert found is not None
            now = self._now()
            key = self._key(actor, representation_id)
            row = conn.execute(select(representations).where(key)).one()
            if row.revoked_at is not None or row.verified_at is not None:
                raise Conflict("this relationship is already verified or revoked")
            if row.expires_at is not None and row.expires_at <= now:
                raise Conflict("this relationship has expired; record a new one")
            changes = {"verified_by": actor.user_id, "verified_at": now,
                       "verification_method": facts["method"].value,
                       "reach_ends_at": facts["ends"]}  # fmt: skip
            conn.execute(update(representations).where(key).values(**changes))
            record = self._entry(
                actor, who, resource_type="Representation", resource_ids=(representation_id,),
                patient_ids=(found.patient_id,),
                detail=f"representation verified by {facts['method'].value}",
            )  # fmt: skip
            return Representation.of(conn.execute(select(representations).where(key)).one()), record

        return self._run(actor, who, refusal, check, job)

    def revoke(self, actor: Actor, who: RequestInfo, representation_id: str) -> Representation:
        """End a relationship at once."""
        found = self._get(actor, representation_id)
        refusal = self._refusal((representation_id,), found.patient_id if found else None,
                                "representation revocation refused")  # fmt: skip

        def check() -> None:
            self._require(actor, Permission.ACCESS_REPRESENTATION_MANAGE)
            if found is None:
                raise NotFound("no such representation")

        def job(conn: Connection) -> tuple[Representation, AuditRecord]:
            assert found is not None
            key = self._key(actor, representation_id)
            done = conn.execute(
                update(representations)
                .where(key, representations.c.revoked_at.is_(None))
                .values(revoked_at=self._now(), revoked_by=actor.user_id)
            )
            if done.rowcount == 0:
                raise Conflict("this relationship was revoked already")
            record = self._entry(
                actor, who, resource_type="Representation", resource_ids=(representation_id,),
                patient_ids=(found.patient_id,), detail="representation revoked",
            )  # fmt: skip
            return Representation.of(conn.execute(select(representations).where(key)).one()), record

        return self._run(actor, who, refusal, check, job)

    def list(self, actor: Actor, who: RequestInfo) -> list[Representation]:
        """The tenant's relationships (ids, kinds, instants; no PHI); the read is audited."""
        try:
            self._require(actor, Permission.ACCESS_REPRESENTATION_MANAGE)
        except CareVaultError as exc:
            self._refused(actor, who, exc, self._refusal((), None, "representations listing"))
            raise
        with self._s.reader.connect() as conn:
            rows = conn.execute(
                select(representations)
                .where(representations.c.tenant_id == actor.tenant_id)
                .order_by(representations.c.recorded_at, representations.c.representation_id)
            ).all()
            conn.rollback()
        found = [Representation.of(r) for r in rows]
        self._s.audit.commit(self._s.committer, actor.tenant_id, self._entry(
            actor, who, resource_type="Representation",
            resource_ids=tuple(r.representation_id for r in found),
            patient_ids=tuple(dict.fromkeys(r.patient_id for r in found)),
            detail="representations listed",
        ))  # fmt: skip
        return found

    def link_practitioner(
        self, actor: Actor, who: RequestInfo, user_id: str, practitioner_id: object
    ) -> None:
        """Say which Practitioner resource a workforce user is (None to unlink)."""
        refusal: dict[str, object] = {"resource_type": "User", "resource_ids": (user_id,),
                   "detail": "practitioner link refused"}  # fmt: skip

        def check() -> None:
            self._require(actor, Permission.IDENTITY_USER_MANAGE)
            if practitioner_id is not None and (
                not isinstance(practitioner_id, str) or not valid_id(practitioner_id)
            ):
                raise Invalid("practitioner must be a Practitioner id or null")

        def job(conn: Connection) -> tuple[None, AuditRecord]:
            key = and_(users.c.tenant_id == actor.tenant_id, users.c.user_id == user_id)
            row = conn.execute(select(users.c.role).where(key)).first()
            if row is None:
                raise NotFound("no such user in this tenant")
            if Role(row.role) not in WORKFORCE:
                raise Unprocessable("only workforce users are linked to a Practitioner")
            if practitioner_id is not None and not _live(conn, actor.tenant_id, "Practitioner",
                                                         str(practitioner_id)):  # fmt: skip
                raise Unprocessable("practitioner must be a Practitioner of this tenant")
            conn.execute(update(users).where(key).values(practitioner_id=practitioner_id))
            detail = "practitioner linked" if practitioner_id else "practitioner unlinked"
            ids = (user_id, f"Practitioner/{practitioner_id}") if practitioner_id else (user_id,)
            return None, self._entry(actor, who, resource_type="User", resource_ids=ids,
                                     detail=detail)  # fmt: skip

        self._run(actor, who, refusal, check, job)

    # -- helpers -----------------------------------------------------------------

    def _reach_end(self, actor: Actor, patient_id: str) -> str:
        reader = system_actor(actor.tenant_id, "representation verification: age of the patient")
        body = orjson.loads(self._read_patient(reader, patient_id).body or b"{}")
        birth = body.get("birthDate") if isinstance(body, dict) else None
        if not isinstance(birth, str):
            raise Unprocessable("a parent or guardian needs the patient's birth date on record")
        ends = eighteenth_birthday(birth)
        if ends <= self._now():
            raise Unprocessable(
                "the patient is an adult: record an authorized agent or personal representative"
            )
        return ends

    def _document_of(self, conn: Connection, actor: Actor, doc_id: str, patient_id: str) -> bool:
        row = conn.execute(
            select(resources.c.patient_id, resources.c.deleted).where(
                resources.c.tenant_id == actor.tenant_id,
                resources.c.resource_type == "DocumentReference",
                resources.c.resource_id == doc_id,
            )
        ).first()
        return row is not None and not row.deleted and row.patient_id == patient_id

    @staticmethod
    def _key(actor: Actor, representation_id: str) -> Any:
        return and_(
            representations.c.tenant_id == actor.tenant_id,
            representations.c.representation_id == representation_id,
        )

    def _get(self, actor: Actor, representation_id: str) -> Representation | None:
        with self._s.reader.connect() as conn:
            row = conn.execute(
                select(representations).where(self._key(actor, representation_id))
            ).first()
            conn.rollback()
        return Representation.of(row) if row is not None else None


def _live(conn: Connection, tenant_id: str, rtype: str, rid: str) -> bool:
    row = conn.execute(
        select(resources.c.deleted).where(
            resources.c.tenant_id == tenant_id,
            resources.c.resource_type == rtype,
            resources.c.resource_id == rid,
        )
    ).first()
    return row is not None and not row.deleted
