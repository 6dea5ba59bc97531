"""Statements of disagreement and rebuttals (45 CFR 164.526(d)), what travels with future
disclosures of disputed information, and the requester's download of their copy.

`RightsService` is the one object the faces use (API, CLI, the disclosure path).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from carevault.audit.models import Action as AuditAction
from carevault.audit.models import AuditRecord, RequestInfo
from carevault.errors import CareVaultError, Conflict
from carevault.identity.models import Actor
from carevault.rights import intake
from carevault.rights.cases import officer_chain
from carevault.rights.models import (
    Attachment,
    DenialBasis,
    NoticeKind,
    RequestView,
    StatementKind,
    Status,
    rights_notices,
    rights_requests,
    rights_statements,
)
from carevault.rights.requesters import AddressRequests

AMENDMENT = "hipaa-amendment"


class RightsService(AddressRequests):
    def file_statement(
        self, actor: Actor, request_id: str, text: object, who: RequestInfo
    ) -> RequestView:
        """The individual's statement of disagreement with a denied amendment."""
        return self._statement(actor, request_id, text, who, StatementKind.DISAGREEMENT)

    def rebut(self, actor: Actor, request_id: str, text: object, who: RequestInfo) -> RequestView:
        """The practice's rebuttal of a statement of disagreement; a copy goes to the patient."""
        return self._statement(actor, request_id, text, who, StatementKind.REBUTTAL)

    def _statement(
        self, actor: Actor, request_id: str, text: object, who: RequestInfo, kind: StatementKind
    ) -> RequestView:
        refusal: dict[str, Any] = {
            "resource_ids": (request_id,),
            "action": AuditAction.CREATE,
            "detail": f"statement refused: {kind.value}",
        }
        stated: list[str] = []

        def check() -> None:
            stated.append(intake.text(text, "statement", 10, intake.MAX_TEXT))

        def job(conn: Connection) -> tuple[RequestView, AuditRecord]:
            if kind is StatementKind.DISAGREEMENT:
                row = self.requester_row(conn, actor, request_id)
            else:
                row = self.row(conn, officer_chain(actor), request_id)
            if row.right_name != AMENDMENT or row.status != Status.DENIED.value:
                raise Conflict("statements are filed against a denied amendment request")
            if kind is StatementKind.REBUTTAL and not self._has(
                conn, row, StatementKind.DISAGREEMENT
            ):
                raise Conflict("a rebuttal answers a statement of disagreement: none is filed")
            details = self.open_details(row.tenant_id, request_id, row.details_sealed)
            statement_id, now = str(uuid.uuid4()), self.now()
            conn.execute(
                insert(rights_statements).values(
                    tenant_id=row.tenant_id,
                    statement_id=statement_id,
                    request_id=request_id,
                    patient_id=row.patient_id,
                    kind=kind.value,
                    resource_refs=orjson.dumps(details.get("resources", [])).decode(),
                    filed_at=now,
                    filed_by=actor.user_id,
                    body_sealed=self.seal_text(
                        row.tenant_id,
                        row.patient_id,
                        f"statement|{statement_id}",
                        stated[0].encode(),
                    ),
                )
            )
            if kind is StatementKind.REBUTTAL:  # 164.526(d)(3): a copy to the individual
                self._notice(
                    conn,
                    row,
                    NoticeKind.DECIDED,
                    f"The practice's rebuttal of your statement: {stated[0]}",
                    now,
                )
            record = self.entry(
                actor,
                who,
                action=AuditAction.CREATE,
                status=201,
                resource_ids=(request_id, statement_id),
                patient_ids=(row.patient_id,),
                detail=f"statement filed: {kind.value}",
            )
            return self._fresh(conn, row), record

        try:
            check()
        except CareVaultError as exc:
            self.refused(actor.tenant_id, actor, who, exc, refusal)
            raise
        return self.run(actor.tenant_id, actor, who, refusal, lambda: None, job)

    def _has(self, conn: Connection, row: Any, kind: StatementKind) -> bool:
        s = rights_statements
        return (
            conn.execute(
                select(s.c.statement_id).where(
                    s.c.tenant_id == row.tenant_id,
                    s.c.request_id == row.request_id,
                    s.c.kind == kind.value,
                )
            ).first()
            is not None
        )

    def attachments_for(
        self, conn: Connection, tenant_id: str, patient_id: str, resource_refs: tuple[str, ...]
    ) -> list[Attachment]:
        """What must go with a disclosure of these resources (164.526(d)(4)-(5)): for each
        denied amendment about them, the request and the denial when the individual asked or
        filed a statement, then the statement and any rebuttal. Called by the disclosure path
        on its own connection; the texts are the patient's, opened with their key."""
        r, s = rights_requests, rights_statements
        wanted = set(resource_refs)
        denied = conn.execute(
            select(r).where(
                r.c.tenant_id == tenant_id,
                r.c.patient_id == patient_id,
                r.c.right_name == AMENDMENT,
                r.c.status == Status.DENIED.value,
            )
        ).all()
        found: list[Attachment] = []
        for row in denied:
            details = self.open_details(tenant_id, row.request_id, row.details_sealed)
            refs = tuple(x for x in details.get("resources", []) if x in wanted)
            if not refs:
                continue
            statements = conn.execute(
                select(s)
                .where(s.c.tenant_id == tenant_id, s.c.request_id == row.request_id)
                .order_by(s.c.filed_at)
            ).all()
            if not (row.attach_to_disclosures or statements):
                continue
            found.append(
                Attachment(
                    row.request_id,
                    "request-and-denial",
                    refs,
                    row.decided_at,
                    self._request_and_denial(conn, row, details),
                )
            )
            for st in statements:
                text = self.open_text(
                    tenant_id, patient_id, f"statement|{st.statement_id}", st.body_sealed
                )
                if text is not None:
                    found.append(
                        Attachment(row.request_id, st.kind, refs, st.filed_at, text.decode())
                    )
        return found

    def _request_and_denial(self, conn: Connection, row: Any, details: dict[str, Any]) -> str:
        n = rights_notices
        denial = conn.execute(
            select(n).where(
                n.c.tenant_id == row.tenant_id,
                n.c.request_id == row.request_id,
                n.c.kind == "denied",
            )
        ).first()
        text = None
        if denial is not None:
            opened = self.open_text(
                row.tenant_id, row.patient_id, f"notice|{denial.notice_id}", denial.body_sealed
            )
            text = opened.decode() if opened is not None else None
        basis = DenialBasis(row.denial_basis).value if row.denial_basis else "unknown"
        return (
            f"Amendment request {row.request_id}: {details.get('statement') or ''}\n"
            f"Denied on {str(row.decided_at)[:10]} ({basis}).\n{text or ''}"
        ).strip()

    def copy(self, actor: Actor, request_id: str, form: str, who: RequestInfo) -> tuple[str, bytes]:
        """The requester's copy, opened for them; the download is audited."""
        fields: dict[str, Any] = {
            "action": AuditAction.READ,
            "resource_ids": (request_id,),
            "detail": f"rights copy downloaded: {form[:16]}",
        }
        try:
            with self._s.reader.connect() as conn:
                row = self.requester_row(conn, actor, request_id)
                media_type, plain = self.stored_copy(conn, row, form)
                conn.rollback()
        except CareVaultError as exc:
            self.refused(actor.tenant_id, actor, who, exc, fields)
            raise
        fields["patient_ids"] = (row.patient_id,) if row.patient_id else ()
        self._s.audit.commit(self._s.committer, row.tenant_id, self.entry(actor, who, **fields))
        return media_type, plain
