"""HIPAA authorizations (45 CFR 164.508) as FHIR Consent: signed, and revoked at any moment.

The practice drafts the Consent (status "proposed") through the FHIR API. The patient, or a
verified representative, signs it with `$sign`: the Consent is read through the gate as the
signer (so only their own record answers), every 164.508(c) element is checked, the
recipient must be a verified directory entry, and the signer re-authenticates with their
password and a second factor at that moment. The signed document — the terms in words and
the fixed statements on revocation, conditioning and redisclosure — is sealed under the
patient's key with its SHA-256, and the Consent becomes "active" carrying the document as
sourceAttachment, in one transaction with its audit entry. `$revoke` ends it at once, and so
does `$expiry-event-occurred` for one that expires on an event rather than a date.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import Connection, and_, delete, insert, select, update

from carevault.audit.models import Action, AuditRecord, RequestInfo
from carevault.errors import Conflict, Forbidden, Unprocessable
from carevault.identity.models import Actor
from carevault.identity.permissions import Role
from carevault.privacy.access_models import representations
from carevault.privacy.break_glass import AuditedService
from carevault.privacy.disclosure import consent_terms
from carevault.privacy.disclosure.facts import Recipient
from carevault.privacy.disclosure.models import authorization_documents
from carevault.privacy.gate import Gate, ResourceView
from carevault.privacy.services import GateServices
from carevault.records import validation
from carevault.records.sealing import key_name
from carevault.records.store import Scope, Version

SIGNERS = frozenset({Role.PATIENT, Role.REPRESENTATIVE})
REVOKERS = SIGNERS | {Role.STAFF}  # staff record a revocation the patient gave in writing
DOCUMENT_URL = "urn:uuid:{document_id}"


class Authorizations(AuditedService):
    def __init__(self, services: GateServices, gate: Callable[[Actor], Gate]) -> None:
        super().__init__(services)
        self._gate = gate

    def sign(
        self, actor: Actor, who: RequestInfo, consent_id: str, step_up: Callable[[], None]
    ) -> Version:
        """Sign a proposed authorization; `step_up` re-authenticates the signer (password and
        second factor) and raises if that fails."""
        refusal = self._refusal(consent_id, "authorization signing refused")
        facts: dict[str, Any] = {}

        def check() -> None:
            if actor.role not in SIGNERS:
                raise Forbidden("only the patient or their representative signs an authorization")
            view = self._gate(actor).read("Consent", consent_id)  # the gate decides and audits
            body = orjson.loads(view.body or b"{}")
            terms = consent_terms.parse(body)
            gaps = consent_terms.missing(terms)
            if gaps:
                listed = "; ".join(f"{where}: {what}" for where, what in gaps)
                raise Unprocessable(f"the authorization lacks required elements: {listed}",
                                    issues=gaps)  # fmt: skip
            if terms.status not in consent_terms.SIGNABLE:
                raise Conflict(f"only a proposed authorization is signed; this one is "
                               f"{terms.status}")  # fmt: skip
            pid = str(terms.patient_ref).split("/", 1)[1]
            refusal["patient_ids"] = (pid,)
            self._directory(actor.tenant_id, terms)
            facts.update(view=view, body=body, terms=terms, pid=pid)
            facts["authority"], facts["representation"] = self._authority(actor, pid)
            step_up()  # at the moment of signing; audited by the accounts service

        def job(conn: Connection) -> tuple[Version, AuditRecord]:
            view, body, terms, pid = facts["view"], facts["body"], facts["terms"], facts["pid"]
            now = self._now()
            document_id = str(uuid.uuid4())
            text = consent_terms.render(terms, actor.user_id, facts["authority"], now).encode()
            digest = hashlib.sha256(text).hexdigest()
            sha1 = hashlib.sha1(text).digest()  # noqa: S324 (R4 Attachment.hash is SHA-1)
            signed = {
                **body, "status": "active", "dateTime": now,
                "sourceAttachment": {
                    "contentType": "text/plain",
                    "url": DOCUMENT_URL.format(document_id=document_id),
                    "size": len(text), "title": "Signed authorization (45 CFR 164.508)",
                    "hash": base64.b64encode(sha1).decode(),
                    "creation": now,
                },
            }  # fmt: skip
            signed.pop("meta", None)
            validation.validate("Consent", signed)
            version, _ = self._s.store.update(conn, Scope(actor.tenant_id), "Consent", consent_id,
                                              signed, now, if_match=view.version_id)  # fmt: skip
            d = authorization_documents
            conn.execute(delete(d).where(self._key(actor, consent_id)))
            conn.execute(insert(d).values(
                tenant_id=actor.tenant_id, consent_id=consent_id, document_id=document_id,
                patient_id=pid, consent_version=str(version.version_id), signed_at=now,
                signed_by=actor.user_id, authority=facts["authority"],
                representation_id=facts["representation"],
                terms_sha256=consent_terms.terms_digest(signed), document_sha256=digest,
                document_sealed=self._s.vault.seal_record(
                    actor.tenant_id, key_name(pid), text, self._aad(actor, consent_id, document_id)
                ),
                revoked_at=None, revoked_by=None,
            ))  # fmt: skip
            return version, self._entry(
                actor, who, action=Action.UPDATE, resource_type="Consent",
                resource_ids=(consent_id,), patient_ids=(pid,),
                detail=f"authorization signed; authority={facts['authority']}; "
                       f"document sha256={digest}",
            )  # fmt: skip

        return self._run(actor, who, refusal, check, job)

    def revoke(self, actor: Actor, who: RequestInfo, consent_id: str) -> Version:
        """Revoke a signed authorization now: no disclosure rests on it from this instant."""
        return self._end(actor, who, consent_id, consent_terms.REVOKED_AT)

    def expiry_event_occurred(self, actor: Actor, who: RequestInfo, consent_id: str) -> Version:
        """Record that the event the authorization expires on has happened: it ends now."""
        return self._end(actor, who, consent_id, consent_terms.EVENT_OCCURRED_AT)

    def _end(self, actor: Actor, who: RequestInfo, consent_id: str, how: str) -> Version:
        revoking = how == consent_terms.REVOKED_AT
        what = "revocation" if revoking else "expiry event"
        refusal = self._refusal(consent_id, f"authorization {what} refused")
        facts: dict[str, Any] = {}

        def check() -> None:
            if actor.role not in REVOKERS:
                raise Forbidden(f"only the patient, their representative or the front desk "
                                f"records a {what}")  # fmt: skip
            view = self._gate(actor).read("Consent", consent_id)
            facts["view"], facts["body"] = view, orjson.loads(view.body or b"{}")

        def job(conn: Connection) -> tuple[Version, AuditRecord]:
            d = authorization_documents
            row = conn.execute(select(d).where(self._key(actor, consent_id))).first()
            if row is None:
                raise Conflict("this Consent is not a signed authorization")
            if row.revoked_at is not None:
                raise Conflict("this authorization was revoked already")
            terms = consent_terms.parse(facts["body"])
            if terms.event_occurred_at is not None:
                raise Conflict("this authorization ended already: its expiry event occurred")
            if not revoking and terms.expiry_event is None:
                raise Conflict("this authorization expires on a date, not on an event")
            now = self._now()
            if revoking:
                conn.execute(update(d).where(self._key(actor, consent_id))
                             .values(revoked_at=now, revoked_by=actor.user_id))  # fmt: skip
            body = dict(facts["body"])
            body.pop("meta", None)
            body["status"] = "inactive"
            body["extension"] = [
                *[e for e in body.get("extension", []) if e.get("url") != how],
                {"url": how, "valueDateTime": now},
            ]
            validation.validate("Consent", body)
            version, _ = self._s.store.update(conn, Scope(actor.tenant_id), "Consent", consent_id,
                                              body, now, if_match=None)  # fmt: skip
            return version, self._entry(
                actor, who, action=Action.UPDATE, resource_type="Consent",
                resource_ids=(consent_id,), patient_ids=(row.patient_id,),
                detail="authorization revoked" if revoking
                else "authorization ended: its expiry event occurred",
            )  # fmt: skip

        return self._run(actor, who, refusal, check, job)

    def document(self, actor: Actor, consent_id: str) -> str | None:
        """The signed text, for the patient's copy (the caller has read the Consent)."""
        with self._s.reader.connect() as conn:
            row = conn.execute(select(authorization_documents)
                               .where(self._key(actor, consent_id))).first()  # fmt: skip
            conn.rollback()
        if row is None:
            return None
        aad = self._aad(actor, consent_id, row.document_id)
        return self._s.vault.open_record(actor.tenant_id, key_name(row.patient_id),
                                         row.document_sealed, aad).decode()  # fmt: skip

    # -- helpers -------------------------------------------------------------------

    def _directory(self, tenant_id: str, terms: consent_terms.Terms) -> None:
        """The recipient is a directory entry with a verified address; the discloser is an
        Organization on file."""
        scope = Scope(tenant_id)
        with self._s.reader.connect() as conn:
            found = {}
            for ref in (terms.recipient_refs[0], terms.discloser_refs[0]):
                rtype, rid = ref.split("/", 1)
                version = self._s.store.read(conn, scope, rtype, rid)
                found[ref] = None if version is None or version.deleted else version.body
            conn.rollback()
        recipient = found[terms.recipient_refs[0]]
        if recipient is None:
            raise Unprocessable("the recipient is not in this practice's directory")
        if not Recipient(terms.recipient_refs[0], orjson.loads(recipient)).verified:
            raise Unprocessable("the recipient's address is not verified yet; the practice "
                                "verifies it before you sign")  # fmt: skip
        if found[terms.discloser_refs[0]] is None:
            raise Unprocessable("the disclosing organization is not in the directory")

    def _authority(self, actor: Actor, patient_id: str) -> tuple[str, str | None]:
        """'self', or the kind of the verified representation the signer acts under."""
        if actor.role is Role.PATIENT:
            return "self", None
        r = representations
        now = self._now()
        with self._s.reader.connect() as conn:
            rows = conn.execute(select(r).where(
                r.c.tenant_id == actor.tenant_id, r.c.representative_id == actor.user_id,
                r.c.patient_id == patient_id, r.c.verified_at.is_not(None),
                r.c.revoked_at.is_(None),
            )).all()  # fmt: skip
            conn.rollback()
        for row in rows:
            ends = [t for t in (row.expires_at, row.reach_ends_at) if t is not None]
            if all(now < t for t in ends):
                return str(row.kind), str(row.representation_id)
        raise Forbidden("you have no verified authority to sign for this patient")

    def _refusal(self, consent_id: str, detail: str) -> dict[str, object]:
        return {"resource_type": "Consent", "resource_ids": (consent_id,), "detail": detail}

    @staticmethod
    def _key(actor: Actor, consent_id: str) -> Any:
        d = authorization_documents
        return and_(d.c.tenant_id == actor.tenant_id, d.c.consent_id == consent_id)

    @staticmethod
    def _aad(actor: Actor, consent_id: str, document_id: str) -> bytes:
        return f"{actor.tenant_id}|authorization|{consent_id}|{document_id}".encode()


__all__ = ["Authorizations", "ResourceView"]
