"""Helpers for the disclosure tests: directory entries, authorizations, $disclose calls,
and the ledger, outbox and audit read back."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.testclient import TestClient

from carevault.identity.models import system_actor
from carevault.identity.totp import code_at
from carevault.messaging.models import notification_outbox
from carevault.privacy.disclosure.facts import VERIFIED_ADDRESS
from carevault.privacy.disclosure.ledger import disclosures
from carevault.runtime import Runtime
from tests.account_helpers import enrol_totp, sign_in
from tests.audit_rows import audit_of
from tests.conftest import Site

PASSWORD = "a long passphrase"  # the fixture users' password
ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
LOINC = "http://loinc.org"
RESOURCE_TYPES = "http://hl7.org/fhir/resource-types"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def create(runtime: Runtime, site: Site, body: dict[str, Any]) -> str:
    gate = runtime.gate(system_actor(site.tenant_id, "test fixture"))
    return f"{body['resourceType']}/{gate.create(body['resourceType'], body).resource_id}"


def organization(runtime: Runtime, site: Site, kind: str, *, verified: bool = True,
                 name: str = "Harbor Health") -> str:  # fmt: skip
    body: dict[str, Any] = {
        "resourceType": "Organization", "name": name,
        "type": [{"coding": [{"system": ORG_TYPE, "code": kind}]}],
        "address": [{"line": ["1 Quay Street"], "city": "Springfield", "postalCode": "01102"}],
    }  # fmt: skip
    if verified:
        body["meta"] = {"tag": [{"system": VERIFIED_ADDRESS[0], "code": VERIFIED_ADDRESS[1]}]}
    return create(runtime, site, body)


def observation(runtime: Runtime, site: Site, *, code: str = "2345-7", display: str = "Glucose",
                when: str = "2024-05-02", status: str = "final",
                labels: tuple[str, ...] = ()) -> str:  # fmt: skip
    body: dict[str, Any] = {
        "resourceType": "Observation", "status": status,
        "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
        "subject": {"reference": f"Patient/{site.patient_id}"}, "effectiveDateTime": when,
        "valueString": "within range",
    }  # fmt: skip
    if labels:
        body["meta"] = {"security": [{"system": ACT_CODE, "code": c} for c in labels]}
    return create(runtime, site, body)


def consent(site: Site, recipient: str, discloser: str, *, data: tuple[str, ...] = (),
            classes: tuple[str, ...] = (), end: str | None = "2027-06-30",
            purpose: str | None = "PATRQT", labels: tuple[str, ...] = (),
            deny_types: tuple[str, ...] = (), deny_labels: tuple[str, ...] = (),
            dated: tuple[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": [{"role": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP"}]}, "reference": {"reference": recipient}}],
    }  # fmt: skip
    if end:
        provision["period"] = {"start": "2026-01-01", "end": end}
    if purpose:
        provision["purpose"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason",
                                 "code": purpose}]  # fmt: skip
    if data:
        provision["data"] = [{"meaning": "instance", "reference": {"reference": r}} for r in data]
    if classes:
        provision["class"] = [{"system": RESOURCE_TYPES, "code": c} for c in classes]
    if labels:
        provision["securityLabel"] = [{"system": ACT_CODE, "code": c} for c in labels]
    if deny_types or deny_labels:
        provision["provision"] = [
            {
                "type": "deny",
                "class": [{"system": RESOURCE_TYPES, "code": t} for t in deny_types] or None,
                "securityLabel": [{"system": ACT_CODE, "code": c} for c in deny_labels] or None,
            }
        ]
        provision["provision"][0] = {k: v for k, v in provision["provision"][0].items() if v}
    if dated:
        provision["dataPeriod"] = {"start": dated[0], "end": dated[1]}
    return {
        "resourceType": "Consent", "status": "proposed",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                              "code": "patient-privacy"}]},
        "category": [{"coding": [{"system": LOINC, "code": "64292-6"}]}],
        "patient": {"reference": f"Patient/{site.patient_id}"},
        "organization": [{"reference": discloser}], "provision": provision,
    }  # fmt: skip


def draft(client: TestClient, site: Site, body: dict[str, Any]) -> str:
    """The front desk drafts the authorization through the FHIR API."""
    answer = client.post("/fhir/Consent", json=body, headers=site.headers("staff"))
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def patient_totp(client: TestClient, runtime: Runtime, site: Site, role: str = "patient") -> str:
    """The patient (or another user) enrols an authenticator app; its secret."""
    signed = sign_in(client, site.slug, f"{role}@{site.slug}.example.org", PASSWORD)
    assert signed.status_code == 200, signed.text
    secret, _ = enrol_totp(client, runtime, signed.json()["token"])
    return secret


def sign(client: TestClient, runtime: Runtime, site: Site, consent_id: str, secret: str,
         *, code: str | None = None, role: str = "patient") -> Any:  # fmt: skip
    runtime.clock.advance(timedelta(seconds=31))  # type: ignore[attr-defined]  # a fresh step
    params = [
        {"name": "password", "valueString": PASSWORD},
        {"name": "code", "valueString": code or code_at(secret, runtime.clock.now())},
    ]
    return client.post(f"/fhir/Consent/{consent_id}/$sign",
                       json={"resourceType": "Parameters", "parameter": params},
                       headers=site.headers(role))  # fmt: skip


def signed_authorization(client: TestClient, runtime: Runtime, site: Site,
                         body: dict[str, Any]) -> str:  # fmt: skip
    secret = patient_totp(client, runtime, site)
    cid = draft(client, site, body)
    answer = sign(client, runtime, site, cid, secret)
    assert answer.status_code == 200, answer.text
    return cid


def disclose(client: TestClient, site: Site, basis: str, recipient: str, *,
             role: str = "privacy-officer", purpose: str = "a stated purpose",
             info: tuple[str, ...] = (), types: tuple[str, ...] = (),
             start: str | None = None, end: str | None = None,
             authorization: str | None = None, order: str | None = None,
             patient: str | None = None) -> Any:  # fmt: skip
    params: list[dict[str, Any]] = [
        {"name": "basis", "valueCode": basis},
        {"name": "recipient", "valueReference": {"reference": recipient}},
        {"name": "purpose", "valueString": purpose},
        *({"name": "information", "valueReference": {"reference": r}} for r in info),
        *({"name": "type", "valueCode": t} for t in types),
    ]
    for name, value in (("from", start), ("to", end), ("order", order)):
        if value is not None:
            params.append({"name": name, "valueString": value})
    if authorization is not None:
        params.append(
            {"name": "authorization", "valueReference": {"reference": f"Consent/{authorization}"}}
        )
    pid = patient or site.patient_id
    return client.post(f"/fhir/Patient/{pid}/$disclose",
                       json={"resourceType": "Parameters", "parameter": params},
                       headers=site.headers(role))  # fmt: skip


def released(answer: Any) -> dict[str, dict[str, Any]]:
    """Type/id → resource of a $disclose answer."""
    return {f"{e['resource']['resourceType']}/{e['resource']['id']}": e["resource"]
            for e in answer.json()["entry"] if "id" in e["resource"]}  # fmt: skip


def ledger(runtime: Runtime, site: Site) -> list[Any]:
    with runtime.reader.connect() as conn:
        return list(
            conn.execute(
                sa.select(disclosures)
                .where(disclosures.c.tenant_id == site.tenant_id)
                .order_by(disclosures.c.disclosed_at)
            )
        )


def outbox(runtime: Runtime, site: Site, template: str) -> list[Any]:
    o = notification_outbox
    with runtime.reader.connect() as conn:
        return list(conn.execute(sa.select(o).where(o.c.tenant_id == site.tenant_id,
                                                    o.c.template == template)))  # fmt: skip


def refused(runtime: Runtime, site: Site, answer: Any, status: int, before: int) -> str:
    """A refusal: its status, an OperationOutcome, nothing in the ledger, audited."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome"
    assert len(ledger(runtime, site)) == before
    entries = audit_of(runtime, answer)
    assert entries
    assert all(e["outcome"] != "success" for e in entries if e["action"] == "export"), entries
    assert any(e["outcome"] in ("denied", "invalid", "not-found") for e in entries)
    return str(body["issue"][0]["diagnostics"])
