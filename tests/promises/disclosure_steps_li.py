"""Steps for the lifeIMAGE and ihr.health disclosure promises: orders and agreements filed
through the admin routes, directory entries and record entries of a richer kind, and the
held notices and the accounting read back."""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.privacy.disclosure.facts import VERIFIED_ADDRESS
from carevault.privacy.disclosure.models import authorization_documents, held_notices
from carevault.runtime import Runtime
from tests.conftest import Site
from tests.disclosure_helpers import create, draft, sign

SNOMED = "http://snomed.info/sct"
VERIFIED = {"tag": [{"system": VERIFIED_ADDRESS[0], "code": VERIFIED_ADDRESS[1]}]}
RECIPIENT_CLASS = "https://carevault.dev/fhir/CodeSystem/recipient-class"


def file_order(client: TestClient, site: Site, **fields: Any) -> Any:
    """The privacy officer files a legal order (court order for 2024 labs by default)."""
    body = {
        "kind": "court-order",
        "patient": site.patient_id,
        "resource_types": ["Observation"],
        "date_from": "2024-01-01",
        "date_to": "2024-12-31",
        "document_sha256": "b" * 64,
        "request_copy": "In re Quintero: produce the 2024 laboratory results",
        **fields,
    }
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    return client.post("/admin/legal-orders", json=body, headers=site.headers("privacy-officer"))


def order_id(client: TestClient, site: Site, **fields: Any) -> str:
    filed = file_order(client, site, **fields)
    assert filed.status_code == 201, filed.text
    return str(filed.json()["order_id"])


def file_baa(client: TestClient, site: Site, recipient: str, effective_on: str = "2026-01-01",
             ends_on: str | None = "2027-12-31") -> Any:  # fmt: skip
    body: dict[str, Any] = {"recipient": recipient, "effective_on": effective_on,
                            "document_sha256": "c" * 64}  # fmt: skip
    if ends_on is not None:
        body["ends_on"] = ends_on
    return client.post("/admin/business-associate-agreements", json=body,
                       headers=site.headers("privacy-officer"))  # fmt: skip


def held(runtime: Runtime, site: Site) -> list[Any]:
    h = held_notices
    with runtime.reader.connect() as conn:
        return list(conn.execute(sa.select(h).where(h.c.tenant_id == site.tenant_id)))


def family_member(runtime: Runtime, site: Site) -> str:
    """The patient's mother, recorded as her RelatedPerson (MTH), with a verified address."""
    return create(runtime, site, {
        "resourceType": "RelatedPerson", "active": True,
        "patient": {"reference": f"Patient/{site.patient_id}"},
        "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                      "code": "MTH"}]}],
        "name": [{"family": "Quintero", "given": ["Rosa"]}], "gender": "female",
        "address": [{"line": ["12 Lantern Row"], "city": "Springfield"}], "meta": VERIFIED,
    })  # fmt: skip


def tagged_organization(runtime: Runtime, site: Site, recipient_class: str, name: str,
                        kind: str = "bus") -> str:  # fmt: skip
    """An Organization the practice files as one of the policy's recipient classes."""
    return create(runtime, site, {
        "resourceType": "Organization", "name": name,
        "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/organization-type",
                              "code": kind}]}],
        "address": [{"line": ["9 Web Way"], "city": "Mountain View"}],
        "meta": {"tag": [*VERIFIED["tag"], {"system": RECIPIENT_CLASS, "code": recipient_class}]},
    })  # fmt: skip


def encounter(runtime: Runtime, site: Site, start: str = "2024-06-01") -> str:
    return create(runtime, site, {
        "resourceType": "Encounter", "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "EMER"},
        "subject": {"reference": f"Patient/{site.patient_id}"},
        "period": {"start": start, "end": start},
        "reasonCode": [{"coding": [{"system": SNOMED, "code": "217082002",
                                    "display": "Accidental fall"}]}],
        "hospitalization": {"dischargeDisposition": {"text": "home"}},
    })  # fmt: skip


def condition(runtime: Runtime, site: Site, onset: str = "2024-06-01") -> str:
    return create(runtime, site, {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
            "code": "active"}]},
        "code": {"coding": [{"system": SNOMED, "code": "263204007",
                             "display": "Fracture of wrist"}]},
        "subject": {"reference": f"Patient/{site.patient_id}"}, "onsetDateTime": onset,
        "recordedDate": onset, "note": [{"text": "patient anxious about work"}],
    })  # fmt: skip


def accounting(client: TestClient, site: Site, role: str = "patient") -> dict[str, Any]:
    answer = client.get(
        f"/fhir/Patient/{site.patient_id}/$accounting-of-disclosures?_format=json",
        headers=site.headers(role),
    )
    assert answer.status_code == 200, answer.text
    report: dict[str, Any] = orjson.loads(answer.content)
    return report


def fields_of(resource: dict[str, Any]) -> set[str]:
    """The elements a released resource carries, beside its identity."""
    return set(resource) - {"resourceType", "id", "meta"}


def authorization_rows(runtime: Runtime) -> list[Any]:
    with runtime.reader.connect() as conn:
        return list(conn.execute(sa.select(authorization_documents)))


def signed_with(client: TestClient, runtime: Runtime, site: Site, secret: str,
                body: dict[str, Any]) -> str:  # fmt: skip
    """Another authorization, signed by the member who already enrolled an authenticator."""
    cid = draft(client, site, body)
    answer = sign(client, runtime, site, cid, secret)
    assert answer.status_code == 200, answer.text
    return cid
