"""The accounting of disclosures as JSON and as FHIR.

FHIR form: a Bundle of type "collection" holding one AuditEvent per disclosure (rather than a
List: the AuditEvent carries every element 164.528(b)(2) asks for in its own fields, and a
List would only point at resources the patient cannot read). Each AuditEvent:

- `type` DCM 110106 "Export" (data leaving the custodian), `subtype` the legal basis
  (CareVault's disclosure-basis code system: the `Basis` values), `action` "R", `outcome` "0";
- `recorded` the date of the disclosure; `purposeOfEvent[0].text` the statement of purpose;
- `agent[0]` the recipient (`who` its FHIR reference with its name as display; its address in
  the recipient-address extension), `agent[1]` the disclosing tenant (`requestor` false);
- `entity`: the patient (role 1 "Patient"), each resource released (`what`, with the
  description of what was disclosed on the first), the authorization (`Consent/<id>`), and the
  legal order and the copy of the request as `detail` entries ("legal-order", "request-copy").
"""

from __future__ import annotations

from typing import Any

from carevault.privacy.disclosure.accounting import AccountingReport
from carevault.privacy.disclosure.ledger import DisclosureEntry

BASIS_SYSTEM = "https://carevault.dev/fhir/CodeSystem/disclosure-basis"
ADDRESS_EXTENSION = "https://carevault.dev/fhir/StructureDefinition/recipient-address"
_DCM = "http://dicom.nema.org/resources/ontology/DCM"
_ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
_OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"


def to_json(report: AccountingReport) -> dict[str, Any]:
    """The report as plain JSON: the period, then each disclosure oldest first."""
    return {
        "patient": f"Patient/{report.patient_id}",
        "requested_at": report.requested_at,
        "period": {"start": report.period_start, "end": report.requested_at},
        "policy": report.policy_name,
        "disclosures": [_entry(e) for e in report.entries],
        "unavailable": [
            {"date": r.disclosed_at, "basis": r.basis.value, "details": "destroyed with the key"}
            for r in report.unavailable
        ],
    }


def _entry(e: DisclosureEntry) -> dict[str, Any]:
    return {
        "id": e.disclosure_id,
        "date": e.disclosed_at,
        "recipient": {
            "reference": e.recipient_ref,
            "name": e.recipient_name,
            "address": e.recipient_address,
        },
        "description": e.description,
        "purpose": e.purpose,
        "request_copy": e.request_copy,
        "basis": e.basis.value,
        "authorization": e.authorization_ref,
        "order": e.order_id,
        "resources": list(e.resource_refs),
    }


def to_fhir(report: AccountingReport) -> dict[str, Any]:
    """The report as a FHIR R4 Bundle (collection) of AuditEvent."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": report.requested_at,
        "identifier": {
            "system": "https://carevault.dev/fhir/accounting-of-disclosures",
            "value": f"{report.patient_id}/{report.period_start[:10]}/{report.requested_at}",
        },
        "entry": [
            {"fullUrl": f"urn:uuid:{e.disclosure_id}", "resource": _audit_event(report, e)}
            for e in report.entries
        ],
    }


def _audit_event(report: AccountingReport, e: DisclosureEntry) -> dict[str, Any]:
    recipient: dict[str, Any] = {
        "type": {"coding": [{"system": _DCM, "code": "110152", "display": "Destination Role ID"}]},
        "who": {"reference": e.recipient_ref, "display": e.recipient_name},
        "requestor": False,
    }
    if e.recipient_address:
        recipient["extension"] = [
            {"url": ADDRESS_EXTENSION, "valueAddress": {"text": e.recipient_address}}
        ]
    entities: list[dict[str, Any]] = [
        {
            "what": {"reference": f"Patient/{report.patient_id}"},
            "type": {"system": _ENTITY_TYPE, "code": "1", "display": "Person"},
            "role": {"system": _OBJECT_ROLE, "code": "1", "display": "Patient"},
        }
    ]
    details: list[dict[str, Any]] = []
    if e.order_id:
        details.append({"type": "legal-order", "valueString": e.order_id})
    if e.request_copy:
        details.append({"type": "request-copy", "valueString": e.request_copy})
    released: dict[str, Any] = {
        "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
        "description": e.description,
    }
    if details:
        released["detail"] = details
    if e.resource_refs:
        first, *rest = e.resource_refs
        entities.append({**released, "what": {"reference": first}})
        entities += [{"what": {"reference": ref}, "type": released["type"]} for ref in rest]
    else:
        entities.append(released)
    if e.authorization_ref:
        entities.append(
            {
                "what": {"reference": e.authorization_ref},
                "type": {"system": _ENTITY_TYPE, "code": "2", "display": "System Object"},
                "role": {"system": _OBJECT_ROLE, "code": "13", "display": "Security Resource"},
            }
        )
    purpose: dict[str, Any] = {"text": e.purpose or "see the copy of the request"}
    return {
        "resourceType": "AuditEvent",
        "id": e.disclosure_id,
        "type": {"system": _DCM, "code": "110106", "display": "Export"},
        "subtype": [{"system": BASIS_SYSTEM, "code": e.basis.value}],
        "action": "R",
        "recorded": e.disclosed_at,
        "outcome": "0",
        "purposeOfEvent": [purpose],
        "agent": [
            recipient,
            {"who": {"display": f"covered entity {report.tenant_id}"}, "requestor": False},
        ],
        "source": {"observer": {"display": "CareVault"}},
        "entity": entities,
    }
