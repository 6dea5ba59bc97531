"""Gather a disclosure's facts in one reader snapshot: the patient, the recipient, the
document it rests on (authorization, order, BAAs) and the resources asked for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, select

from carevault.errors import Invalid, NotFound, Unprocessable
from carevault.policy import Basis
from carevault.privacy import segmentation
from carevault.privacy.disclosure import consent_terms
from carevault.privacy.disclosure.facts import (
    RECIPIENT_TYPES,
    Baa,
    Facts,
    Incomplete,
    Item,
    Order,
    Recipient,
    in_range,
)
from carevault.privacy.disclosure.legal import order_of, parse_ref
from carevault.privacy.disclosure.models import (
    authorization_documents,
    business_associate_agreements,
    legal_orders,
)
from carevault.records.compartment import compartment_page
from carevault.records.params import IN_COMPARTMENT
from carevault.records.store import RecordStore, Scope, valid_id

MAX_ITEMS = 1000
PAGE = 500


@dataclass(frozen=True)
class DisclosureRequest:
    patient_id: str
    recipient: str
    basis: str
    purpose: str
    refs: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    date_from: str | None = None
    date_to: str | None = None
    authorization: str | None = None  # Consent id
    order: str | None = None
    request_copy: str | None = None


def check_request(req: DisclosureRequest) -> Basis:
    try:
        basis = Basis(req.basis)
    except ValueError:
        raise Invalid(f"basis must be one of: {', '.join(b.value for b in Basis)}") from None
    if not valid_id(req.patient_id):
        raise Invalid("the patient id is not a FHIR id")
    parse_ref(req.recipient, "recipient", RECIPIENT_TYPES | {"Patient"})
    for ref in req.refs:
        parse_ref(ref, "information")
    if not req.purpose.strip() or len(req.purpose) > 500:
        raise Invalid("purpose is required: at most 500 characters")
    if req.authorization is not None and not valid_id(req.authorization):
        raise Invalid("authorization must be a Consent id")
    if req.refs and (req.types or req.date_from or req.date_to):
        raise Invalid("name the resources, or a class (type, from, to), not both")
    return basis


class Gatherer:
    def __init__(self, store: RecordStore) -> None:
        self._store = store

    def facts(self, conn: Connection, tenant_id: str, actor_kind: str, req: DisclosureRequest,
              basis: Basis, now: str) -> Facts:  # fmt: skip
        scope = Scope(tenant_id)
        patient = self._body(conn, scope, f"Patient/{req.patient_id}")
        if patient is None:
            raise NotFound("no such patient")
        recipient = self._body(conn, scope, req.recipient)
        if recipient is None:
            raise Unprocessable("the recipient must be an Organization, Practitioner or "
                                "RelatedPerson in this tenant's directory")  # fmt: skip
        found = Recipient(req.recipient, recipient)
        if found.ref != f"Patient/{req.patient_id}" and not found.verified:
            raise Unprocessable("the recipient's address is not verified: verify it in the "
                                "directory (meta.tag address-verified) first")  # fmt: skip
        signed = self._authorization(conn, scope, req.authorization)
        order = self._order(conn, tenant_id, req.order)
        items, explicit = self._items(conn, scope, req, signed, order)
        return Facts(
            tenant_id, req.patient_id, patient, basis, req.purpose.strip(), found, items,
            explicit, now, actor_kind, signed, order, self._baas(conn, tenant_id, req.recipient),
        )  # fmt: skip

    # -- documents -------------------------------------------------------------------

    def _authorization(
        self, conn: Connection, scope: Scope, consent_id: str | None
    ) -> consent_terms.SignedAuthorization | None:
        if consent_id is None:
            return None
        body = self._body(conn, scope, f"Consent/{consent_id}")
        if body is None:
            raise Unprocessable("no such authorization (Consent) on file")
        d = authorization_documents
        row = conn.execute(select(d).where(d.c.tenant_id == scope.tenant_id,
                                           d.c.consent_id == consent_id)).first()  # fmt: skip
        terms = consent_terms.parse(body)
        gaps = consent_terms.missing(terms)
        if gaps:  # before the information is gathered from it: say what to complete
            listed = "; ".join(f"{where}: {what}" for where, what in gaps)
            raise Incomplete(f"the authorization lacks required elements: {listed}", issues=gaps)
        if row is None:
            return consent_terms.SignedAuthorization(terms, None, None, False)
        intact = consent_terms.terms_digest(body) == row.terms_sha256
        return consent_terms.SignedAuthorization(
            terms, row.signed_at, row.revoked_at, intact, row.authority
        )

    @staticmethod
    def _order(conn: Connection, tenant_id: str, order_id: str | None) -> Order | None:
        if order_id is None:
            return None
        o = legal_orders
        row = conn.execute(select(o).where(o.c.tenant_id == tenant_id,
                                           o.c.order_id == order_id[:64])).first()  # fmt: skip
        if row is None:
            raise Unprocessable("no such order on file: file it at /admin/legal-orders first")
        return order_of(row)

    @staticmethod
    def _baas(conn: Connection, tenant_id: str, recipient: str) -> tuple[Baa, ...]:
        b = business_associate_agreements
        rows = conn.execute(select(b).where(b.c.tenant_id == tenant_id,
                                            b.c.recipient_ref == recipient)).all()  # fmt: skip
        return tuple(Baa(r.baa_id, r.recipient_ref, r.effective_on, r.ends_on) for r in rows)

    # -- the information -----------------------------------------------------------------

    def _items(self, conn: Connection, scope: Scope, req: DisclosureRequest,
               signed: consent_terms.SignedAuthorization | None,
               order: Order | None) -> tuple[tuple[Item, ...], bool]:  # fmt: skip
        refs, types = list(req.refs), list(req.types)
        start, end = req.date_from, req.date_to
        if not refs and not types:
            # Nothing named: what the document names (the authorization's or the order's).
            if signed is not None:
                refs = sorted(signed.terms.data_refs)
                types = sorted(signed.terms.classes)
                start, end = signed.terms.data_start, signed.terms.data_end
            elif order is not None:
                refs, types = sorted(order.refs), sorted(order.types)
                start, end = order.date_from, order.date_to
        if refs:
            return tuple(self._named(conn, scope, req.patient_id, r) for r in refs), True
        if not types:
            raise Invalid("say what to release: information references, or a class (type, "
                          "from, to)")  # fmt: skip
        unknown = [t for t in types if t not in IN_COMPARTMENT and t != "Patient"]
        if unknown:
            raise Invalid("a class names types of the patient's record only")
        return self._class(conn, scope, req.patient_id, types, start, end), False

    def _named(self, conn: Connection, scope: Scope, patient_id: str, ref: str) -> Item:
        rtype, rid = ref.split("/", 1)
        version = self._store.read(conn, scope, rtype, rid)
        in_record = (
            version is not None
            and not version.deleted
            and (version.patient_id == patient_id or ref == f"Patient/{patient_id}")
        )
        if not in_record or version is None or version.body is None:
            raise Unprocessable(f"{ref} is not in this patient's record")
        return _item(ref, orjson.loads(version.body))

    def _class(self, conn: Connection, scope: Scope, patient_id: str, types: list[str],
               start: str | None, end: str | None) -> tuple[Item, ...]:  # fmt: skip
        found: list[Item] = []
        after = None
        while True:
            page = compartment_page(self._store, conn, scope, patient_id, types, since=None,
                                    count=PAGE, after=after)  # fmt: skip
            for v in page.versions:
                item = _item(f"{v.resource_type}/{v.resource_id}", orjson.loads(v.body or b"{}"))
                if item.rtype == "Patient" or in_range(item.date, start, end):
                    found.append(item)
            if page.next_cursor is None:
                break
            after = page.next_cursor
            if len(found) > MAX_ITEMS:
                raise Unprocessable(f"more than {MAX_ITEMS} resources: narrow the class")
        if not found:
            raise Unprocessable("nothing in the patient's record matches the class asked for")
        return tuple(found)

    def _body(self, conn: Connection, scope: Scope, ref: str) -> dict[str, Any] | None:
        rtype, rid = ref.split("/", 1)
        version = self._store.read(conn, scope, rtype, rid)
        if version is None or version.deleted or version.body is None:
            return None
        body = orjson.loads(version.body)
        return body if isinstance(body, dict) else None


def _item(ref: str, body: dict[str, Any]) -> Item:
    return Item(ref, body, segmentation.labels_of(body), segmentation.release_requirements(body))
