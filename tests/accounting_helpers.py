"""Helpers for the accounting tests: ledger entries written as the disclosure path writes them
(record_disclosure in the same transaction as the audit entry), and readers of the report."""

from __future__ import annotations

import io
import uuid
from dataclasses import replace
from datetime import datetime
from typing import Any

import orjson
import pypdf
from fastapi.testclient import TestClient
from sqlalchemy import Connection

from carevault.audit.models import Action, AuditRecord, Outcome
from carevault.clock import isoformat
from carevault.identity.permissions import Purpose
from carevault.policy.bases import Basis
from carevault.privacy.disclosure.ledger import DisclosureEntry, record_disclosure
from carevault.runtime import Runtime
from tests.access_helpers import create
from tests.conftest import Site

HEALTH_DEPT = {"resourceType": "Organization", "name": "Springfield Department of Health"}


def recipient(runtime: Runtime, site: Site, name: str = "Springfield Department of Health") -> str:
    return "Organization/" + create(runtime, site, {**HEALTH_DEPT, "name": name})


def disclose(
    runtime: Runtime,
    site: Site,
    recipient_ref: str,
    *,
    basis: Basis = Basis.PUBLIC_HEALTH,
    when: datetime | None = None,
    patient_id: str | None = None,
    **fields: Any,
) -> DisclosureEntry:
    """Record one disclosure as the disclosure path does: ledger entry and audit entry in one
    writer transaction."""
    entry = DisclosureEntry(
        tenant_id=site.tenant_id,
        disclosure_id=str(uuid.uuid4()),
        patient_id=patient_id or site.patient_id,
        disclosed_at=isoformat(when or runtime.clock.now()),
        recipient_ref=recipient_ref,
        recipient_name="Springfield Department of Health",
        recipient_address="1 Civic Plaza, Springfield 01101",
        basis=basis,
        purpose="notifiable disease report",
        description="Laboratory result: positive culture",
        resource_refs=(),
        authorization_ref=None,
        order_id=None,
        request_copy=None,
        actor_user_id="system:test disclosure",
    )
    entry = replace(entry, **fields)

    def job(conn: Connection) -> tuple[None, AuditRecord]:
        record_disclosure(conn, entry, runtime.vault)
        record = AuditRecord(
            recorded_at=isoformat(runtime.clock.now()), actor_id=entry.actor_user_id,
            actor_role="system", on_behalf_of=None, action=Action.EXPORT,
            outcome=Outcome.SUCCESS, status=200, purpose=Purpose.HOPERAT.value,
            resource_type="Disclosure", resource_ids=(entry.disclosure_id,),
            patient_ids=(entry.patient_id,), request_id=None, source_ip=None, user_agent=None,
            detail=f"disclosure; basis={entry.basis.value}",
        )  # fmt: skip
        return None, record

    runtime.audit.commit_with(runtime.committer, site.tenant_id, job)
    return entry


def accounting(client: TestClient, patient_id: str, headers: dict[str, str],
               form: str | None = None) -> Any:  # fmt: skip
    query = "" if form is None else f"?_format={form}"
    return client.get(f"/fhir/Patient/{patient_id}/$accounting-of-disclosures{query}",
                      headers=headers)  # fmt: skip


def listed(client: TestClient, patient_id: str, headers: dict[str, str]) -> list[str]:
    """The disclosure ids the JSON report lists."""
    response = accounting(client, patient_id, headers, "json")
    assert response.status_code == 200, response.text
    return [d["id"] for d in orjson.loads(response.content)["disclosures"]]


def pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)
