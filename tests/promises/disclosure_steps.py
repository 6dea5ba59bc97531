"""Steps the disclosure promise tests share: documents filed through the admin routes, records
written through the FHIR API, and what a release left behind (ledger, outbox, audit)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from carevault.policy import Basis
from carevault.privacy.disclosure.facts import VERIFIED_ADDRESS
from carevault.privacy.disclosure.recipient_rules import RECIPIENT_CLASS
from carevault.privacy.segmentation import CONFIDENTIALITY
from carevault.runtime import Runtime
from tests.conftest import Site
from tests.disclosure_helpers import ORG_TYPE, create

IDENTITY = frozenset({"resourceType", "id", "meta"})
"""What every cut resource keeps besides its profile's elements."""


def verified_tag() -> dict[str, Any]:
    return {"tag": [{"system": VERIFIED_ADDRESS[0], "code": VERIFIED_ADDRESS[1]}]}


def practitioner(client: TestClient, site: Site, family: str = "Hale") -> str:
    """Another provider's practitioner, entered in the directory by the account administrator."""
    body = {
        "resourceType": "Practitioner", "name": [{"family": family, "given": ["Iris"]}],
        "address": [{"line": ["9 Elm Road"], "city": "Shelbyville"}], "meta": verified_tag(),
    }  # fmt: skip
    answer = client.post("/fhir/Practitioner", json=body, headers=site.headers("practice-admin"))
    assert answer.status_code == 201, answer.text
    return f"Practitioner/{answer.json()['id']}"


def clinical(
    client: TestClient, site: Site, body: dict[str, Any], role: str = "practitioner"
) -> str:
    """A record of the site's patient, written through the FHIR API."""
    answer = client.post(f"/fhir/{body['resourceType']}", json=body, headers=site.headers(role))
    assert answer.status_code == 201, answer.text
    return f"{body['resourceType']}/{answer.json()['id']}"


def lab_result(site: Site, *, when: str = "2024-06-01", labels: tuple[str, ...] = (),
               text: str = "Glucose") -> dict[str, Any]:  # fmt: skip
    """A final lab result with elements every profile treats differently (value, note)."""
    body: dict[str, Any] = {
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "2345-7", "display": text}]},
        "subject": {"reference": f"Patient/{site.patient_id}"}, "effectiveDateTime": when,
        "valueQuantity": {"value": 5.4, "unit": "mmol/L"},
        "interpretation": [{"text": "normal"}], "note": [{"text": "fasting, patient anxious"}],
    }  # fmt: skip
    if labels:
        body["meta"] = {"security": [{"system": CONFIDENTIALITY, "code": c} for c in labels]}
    return body


def file_baa(client: TestClient, site: Site, recipient: str, *, start: str = "2026-01-01",
             end: str | None = "2027-12-31") -> Any:  # fmt: skip
    body: dict[str, Any] = {"recipient": recipient, "effective_on": start,
                            "document_sha256": "a" * 64}  # fmt: skip
    if end is not None:
        body["ends_on"] = end
    return client.post("/admin/business-associate-agreements", json=body,
                       headers=site.headers("privacy-officer"))  # fmt: skip


def file_order(client: TestClient, site: Site, **fields: Any) -> str:
    """A legal order (or waiver) filed by the privacy officer; its id."""
    body: dict[str, Any] = {
        "kind": "court-order", "patient": site.patient_id,
        "resource_types": ["Patient", "Observation"], "document_sha256": "b" * 64,
        "request_copy": "Produce the patient's laboratory results", **fields,
    }  # fmt: skip
    answer = client.post("/admin/legal-orders", json=body, headers=site.headers("privacy-officer"))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["order_id"])


def kept(resource: dict[str, Any]) -> set[str]:
    """The elements a released resource carries beyond its identity."""
    return set(resource) - IDENTITY


def cut_to(profile_keep: frozenset[str] | set[str], resource: dict[str, Any]) -> bool:
    """Whether the resource carries nothing its profile does not keep, and says it was cut."""
    tags = {(s.get("code")) for s in resource.get("meta", {}).get("security", [])}
    return kept(resource) <= set(profile_keep) and "REDACTED" in tags


def bases(names: list[str]) -> list[Basis]:
    return [Basis(n) for n in names]


def classed(runtime: Runtime, site: Site, recipient_class: str, kind: str, name: str) -> str:
    """An Organization the practice files in its directory under one of the policy's recipient
    classes (and an HL7 organization type)."""
    body: dict[str, Any] = {
        "resourceType": "Organization", "name": name,
        "type": [{"coding": [{"system": ORG_TYPE, "code": kind}]}],
        "address": [{"line": ["1 Quay Street"], "city": "Springfield", "postalCode": "01102"}],
        "meta": {"tag": [*verified_tag()["tag"],
                         {"system": RECIPIENT_CLASS, "code": recipient_class}]},
    }  # fmt: skip
    return create(runtime, site, body)
