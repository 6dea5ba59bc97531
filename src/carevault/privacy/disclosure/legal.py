"""Business associate agreements and legal orders on file: filed, listed, gags lifted.

The privacy officer or the practice's account administrator files them. Each change is
audited in its transaction; each refusal after the rollback. The copy of an order's words
is sealed under the tenant's key (sub-key "legal-orders"), never logged or audited.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
from sqlalchemy import Connection, and_, insert, select, update

from carevault.audit.models import Action, AuditRecord, RequestInfo
from carevault.errors import Conflict, Forbidden, Invalid, NotFound, Unprocessable
from carevault.identity.models import Actor
from carevault.identity.permissions import Role
from carevault.privacy.break_glass import AuditedService
from carevault.privacy.disclosure import notices
from carevault.privacy.disclosure.consent_terms import instant
from carevault.privacy.disclosure.facts import Baa, Order
from carevault.privacy.disclosure.models import (
    WAIVER_KINDS,
    Assurance,
    Gag,
    OrderKind,
    business_associate_agreements,
    legal_orders,
)
from carevault.records.models import resources
from carevault.records.params import SUPPORTED_TYPES
from carevault.records.store import valid_id

FILERS = frozenset({Role.PRIVACY_OFFICER, Role.PRACTICE_ADMIN})
SEAL_PURPOSE = "legal-orders"
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_REF = re.compile(r"^([A-Za-z]+)/([A-Za-z0-9.-]{1,64})$")


def parse_ref(value: object, name: str, types: frozenset[str] | None = None) -> str:
    match = _REF.match(value) if isinstance(value, str) else None
    if match is None or (types is not None and match[1] not in types):
        kinds = f" ({', '.join(sorted(types))})" if types else ""
        raise Invalid(f"{name} must be a reference Type/id{kinds}")
    return str(value)


def day(value: object, name: str, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError(name)
        date.fromisoformat(value)
    except ValueError:
        raise Invalid(f"{name} must be a date YYYY-MM-DD") from None
    return value


def _digest(value: object) -> str:
    if not isinstance(value, str) or not _DIGEST.match(value):
        raise Invalid("document_sha256 must be the lower-case hex SHA-256 of the document")
    return value


def _list(value: object, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise Invalid(f"{name} must be a list of strings")
    return list(dict.fromkeys(value))


def live_resource(conn: Connection, tenant_id: str, ref: str) -> str | None:
    """The patient a live resource belongs to ('' for none), or None if it is not live."""
    rtype, rid = ref.split("/", 1)
    row = conn.execute(
        select(resources.c.deleted, resources.c.patient_id).where(
            resources.c.tenant_id == tenant_id, resources.c.resource_type == rtype,
            resources.c.resource_id == rid,
        )
    ).first()  # fmt: skip
    return None if row is None or row.deleted else (row.patient_id or "")


def order_of(row: Any) -> Order:
    return Order(
        row.order_id, row.kind, row.patient_id, row.recipient_ref,
        frozenset(orjson.loads(row.resource_types)), frozenset(orjson.loads(row.resource_refs)),
        row.date_from, row.date_to, row.expires_on, row.gag, row.gag_until, row.gag_lifted_at,
        frozenset(orjson.loads(row.assurances)),
    )  # fmt: skip


@dataclass(frozen=True)
class FiledOrder:
    order: Order
    recorded_at: str
    document_sha256: str


class LegalRecords(AuditedService):
    def _filer(self, actor: Actor) -> None:
        if actor.role is not None and actor.role not in FILERS:
            raise Forbidden("only the privacy officer or the account administrator files these")

    def _refusal(self, rtype: str, ids: tuple[str, ...], detail: str) -> dict[str, object]:
        return {"resource_type": rtype, "resource_ids": ids, "detail": detail}

    # -- business associate agreements ------------------------------------------

    def file_baa(self, actor: Actor, who: RequestInfo, body: dict[str, Any]) -> Baa:
        baa_id = str(uuid.uuid4())
        facts: dict[str, Any] = {}

        def check() -> None:
            self._filer(actor)
            facts["ref"] = parse_ref(
                body.get("recipient"), "recipient", frozenset({"Organization"})
            )
            facts["from"] = day(body.get("effective_on"), "effective_on", required=True)
            facts["to"] = day(body.get("ends_on"), "ends_on")
            if facts["to"] is not None and facts["to"] < facts["from"]:
                raise Invalid("ends_on must not be before effective_on")
            facts["sha"] = _digest(body.get("document_sha256"))

        def job(conn: Connection) -> tuple[Baa, AuditRecord]:
            if live_resource(conn, actor.tenant_id, facts["ref"]) is None:
                raise Unprocessable("recipient must be an Organization in this tenant's directory")
            conn.execute(insert(business_associate_agreements).values(
                tenant_id=actor.tenant_id, baa_id=baa_id, recipient_ref=facts["ref"],
                effective_on=facts["from"], ends_on=facts["to"], document_sha256=facts["sha"],
                recorded_by=actor.user_id, recorded_at=self._now(),
            ))  # fmt: skip
            return Baa(baa_id, facts["ref"], facts["from"], facts["to"]), self._entry(
                actor, who, status=201, resource_type="BusinessAssociateAgreement",
                resource_ids=(baa_id, facts["ref"]), detail="business associate agreement filed",
            )  # fmt: skip

        refusal = self._refusal("BusinessAssociateAgreement", (), "BAA filing refused")
        return self._run(actor, who, refusal, check, job)

    def list_baas(self, actor: Actor, who: RequestInfo) -> list[Baa]:
        rows = self._listed(actor, who, "BusinessAssociateAgreement", business_associate_agreements)
        return [Baa(r.baa_id, r.recipient_ref, r.effective_on, r.ends_on) for r in rows]

    # -- legal orders ----------------------------------------------------------------

    def file_order(self, actor: Actor, who: RequestInfo, body: dict[str, Any]) -> Order:
        order_id = str(uuid.uuid4())
        f: dict[str, Any] = {}

        def check() -> None:
            self._filer(actor)
            try:
                f["kind"] = OrderKind(str(body.get("kind")))
            except ValueError:
                raise Invalid(
                    f"kind must be one of: {', '.join(k.value for k in OrderKind)}"
                ) from None
            pid = body.get("patient")
            if pid is None and f["kind"] not in WAIVER_KINDS:
                raise Invalid("patient is required: the Patient id the order is about")
            if pid is not None and (not isinstance(pid, str) or not valid_id(pid)):
                raise Invalid("patient must be a Patient id")
            f["patient"] = pid
            f["recipient"] = (parse_ref(body["recipient"], "recipient")
                              if body.get("recipient") is not None else None)  # fmt: skip
            f["types"] = _list(body.get("resource_types"), "resource_types")
            unknown = [t for t in f["types"] if t not in SUPPORTED_TYPES]
            if unknown:
                raise Invalid("resource_types names a type that is not served here")
            f["refs"] = [
                parse_ref(r, "resource_refs")
                for r in _list(body.get("resource_refs"), "resource_refs")
            ]
            if not f["types"] and not f["refs"]:
                raise Invalid("say what the order names: resource_types and/or resource_refs")
            f["from"], f["to"] = (
                day(body.get("date_from"), "date_from"),
                day(body.get("date_to"), "date_to"),
            )
            f["expires"] = day(body.get("expires_on"), "expires_on")
            f["gag"], f["until"] = _gag(body.get("gag"), body.get("gag_until"))
            try:
                f["assurances"] = [
                    Assurance(a).value for a in _list(body.get("assurances"), "assurances")
                ]
            except ValueError:
                names = ", ".join(a.value for a in Assurance)
                raise Invalid(f"assurances must be among: {names}") from None
            f["sha"] = _digest(body.get("document_sha256"))
            copy = body.get("request_copy")
            if copy is not None and (not isinstance(copy, str) or len(copy) > 20_000):
                raise Invalid("request_copy must be text of at most 20000 characters")
            f["copy"] = copy

        def job(conn: Connection) -> tuple[Order, AuditRecord]:
            if (
                f["patient"] is not None
                and live_resource(conn, actor.tenant_id, f"Patient/{f['patient']}") is None
            ):
                raise NotFound("no such patient")
            if (
                f["recipient"] is not None
                and live_resource(conn, actor.tenant_id, f["recipient"]) is None
            ):
                raise Unprocessable("recipient must be in this tenant's directory")
            sealed = (
                None
                if f["copy"] is None
                else self._s.vault.seal_for(
                    actor.tenant_id, SEAL_PURPOSE, f["copy"].encode(), order_id.encode()
                )
            )
            conn.execute(insert(legal_orders).values(
                tenant_id=actor.tenant_id, order_id=order_id, kind=f["kind"].value,
                patient_id=f["patient"], recipient_ref=f["recipient"],
                resource_types=orjson.dumps(f["types"]).decode(),
                resource_refs=orjson.dumps(f["refs"]).decode(), date_from=f["from"],
                date_to=f["to"], expires_on=f["expires"], gag=f["gag"], gag_until=f["until"],
                gag_lifted_at=None, gag_lifted_by=None,
                assurances=orjson.dumps(f["assurances"]).decode(), document_sha256=f["sha"],
                request_copy_sealed=sealed, recorded_by=actor.user_id, recorded_at=self._now(),
            ))  # fmt: skip
            row = conn.execute(select(legal_orders).where(self._key(actor, order_id))).one()
            return order_of(row), self._entry(
                actor, who, status=201, resource_type="LegalOrder", resource_ids=(order_id,),
                patient_ids=(f["patient"],) if f["patient"] else (),
                detail=f"legal order filed: {f['kind'].value}, gag {f['gag']}",
            )  # fmt: skip

        return self._run(actor, who, self._refusal("LegalOrder", (), "order filing refused"),
                         check, job)  # fmt: skip

    def list_orders(self, actor: Actor, who: RequestInfo) -> list[Order]:
        return [order_of(r) for r in self._listed(actor, who, "LegalOrder", legal_orders)]

    def request_copy(self, tenant_id: str, order_id: str, sealed: bytes | None) -> str | None:
        if sealed is None:
            return None
        return self._s.vault.open_for(tenant_id, SEAL_PURPOSE, sealed, order_id.encode()).decode()

    def lift_gag(self, actor: Actor, who: RequestInfo, order_id: str) -> Order:
        """End an order's gag now: its held notices go out in the same transaction."""

        def check() -> None:
            self._filer(actor)

        def job(conn: Connection) -> tuple[Order, AuditRecord]:
            key = self._key(actor, order_id)
            row = conn.execute(select(legal_orders).where(key)).first()
            if row is None:
                raise NotFound("no such order")
            if row.gag == Gag.NONE.value or row.gag_lifted_at is not None:
                raise Conflict("this order has no gag in force")
            now = self._now()
            conn.execute(
                update(legal_orders)
                .where(key)
                .values(gag_lifted_at=now, gag_lifted_by=actor.user_id)
            )
            patients = notices.release_held(conn, actor.tenant_id, now, order_id)
            row = conn.execute(select(legal_orders).where(key)).one()
            return order_of(row), self._entry(
                actor, who, resource_type="LegalOrder", resource_ids=(order_id,),
                patient_ids=tuple(dict.fromkeys(patients)),
                detail=f"gag lifted; held notices released: {len(patients)}",
            )  # fmt: skip

        refusal = self._refusal("LegalOrder", (order_id,), "gag lift refused")
        return self._run(actor, who, refusal, check, job)

    # -- helpers -----------------------------------------------------------------------

    @staticmethod
    def _key(actor: Actor, order_id: str) -> Any:
        return and_(legal_orders.c.tenant_id == actor.tenant_id,
                    legal_orders.c.order_id == order_id)  # fmt: skip

    def _listed(self, actor: Actor, who: RequestInfo, rtype: str, table: Any) -> list[Any]:
        try:
            self._filer(actor)
        except Forbidden as exc:
            self._refused(actor, who, exc, self._refusal(rtype, (), f"{rtype} listing"))
            raise
        with self._s.reader.connect() as conn:
            rows = list(conn.execute(select(table).where(table.c.tenant_id == actor.tenant_id)
                                     .order_by(table.c.recorded_at)).all())  # fmt: skip
            conn.rollback()
        ids = tuple(r.baa_id if rtype != "LegalOrder" else r.order_id for r in rows)
        self._s.audit.commit(self._s.committer, actor.tenant_id, self._entry(
            actor, who, action=Action.SEARCH, resource_type=rtype, resource_ids=ids,
            detail=f"{rtype} list",
        ))  # fmt: skip
        return rows


def _gag(kind: object, until: object) -> tuple[str, str | None]:
    try:
        gag = Gag(str(kind or "none"))
    except ValueError:
        raise Invalid(f"gag must be one of: {', '.join(g.value for g in Gag)}") from None
    if gag is Gag.UNTIL_DATE:
        end = instant(until, end=len(until) == 10) if isinstance(until, str) else ""
        if not end:
            raise Invalid("gag_until must be a date or date-time when the gag ends")
        return gag.value, end
    if until is not None:
        raise Invalid("gag_until goes with gag until-date only")
    return gag.value, None
