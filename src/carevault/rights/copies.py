"""The patient's copy (45 CFR 164.524): the whole compartment as a FHIR Bundle, read through
`Gate.everything` as the patient's own request (audited PATRQT, or as their representative),
and a human-readable PDF of the same. Imaging studies come with the compartment; their DICOM
instances join once the imaging store exists.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from fpdf import FPDF

from carevault.identity.models import Actor
from carevault.identity.permissions import ROLE_PERMISSIONS, Purpose, Role
from carevault.privacy.everything import EverythingRequest
from carevault.privacy.gate import Gate
from carevault.report_pdf import latin1

MAX_PAGES = 10_000  # a guard: 100 resources a page
_LABELS = ("code", "vaccineCode", "medicationCodeableConcept", "type", "class", "category")


def requester_actor(tenant_id: str, user_id: str, patient_id: str, representative: bool) -> Actor:
    """The requester as the gate knows them: the copy is read as their own request."""
    role = Role.REPRESENTATIVE if representative else Role.PATIENT
    purpose = Purpose.PWATRNY if representative else Purpose.PATRQT
    return Actor(
        tenant_id,
        user_id,
        role,
        purpose,
        ROLE_PERMISSIONS[role],
        patient_ids=frozenset() if representative else frozenset({patient_id}),
    )


def compartment_bundle(
    gate: Callable[[Actor], Gate], actor: Actor, patient_id: str, now: str
) -> dict[str, Any]:
    reader = gate(actor)
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    page: str | None = None
    for _ in range(MAX_PAGES):
        found = reader.everything(patient_id, EverythingRequest(count="100", page=page))
        for mode, views in (("match", found.resources), ("include", found.included)):
            for v in views:
                ref = f"{v.resource_type}/{v.resource_id}"
                if v.body is None or ref in seen:
                    continue
                seen.add(ref)
                entries.append(
                    {"fullUrl": ref, "resource": orjson.loads(v.body), "search": {"mode": mode}}
                )
        page = found.next_page
        if page is None:
            break
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": now,
        "total": len(entries),
        "entry": entries,
    }


def _label(resource: dict[str, Any]) -> str:
    if resource.get("resourceType") == "Patient":
        names = resource.get("name") or [{}]
        first = names[0] if isinstance(names[0], dict) else {}
        given = " ".join(first.get("given", []))
        return f"{given} {first.get('family', '')}".strip()
    for key in _LABELS:
        value = resource.get(key)
        value = value[0] if isinstance(value, list) and value else value
        if isinstance(value, dict):
            coding = value.get("coding") or [{}]
            text = value.get("text") or (coding[0].get("display") if coding else None)
            if text:
                return str(text)
    return str(resource.get("status", ""))


def _when(resource: dict[str, Any]) -> str:
    for key in (
        "effectiveDateTime",
        "onsetDateTime",
        "performedDateTime",
        "occurrenceDateTime",
        "authoredOn",
        "recordedDate",
        "issued",
        "started",
        "date",
        "birthDate",
    ):
        value = resource.get(key)
        if isinstance(value, str):
            return value[:10]
    period = resource.get("period")
    return str(period.get("start", ""))[:10] if isinstance(period, dict) else ""


def to_pdf(bundle: dict[str, Any], tenant_label: str, request_id: str, fee_note: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title("Your health record")
    pdf.set_creation_date(datetime.fromisoformat(str(bundle["timestamp"]).replace("Z", "+00:00")))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, "Your health record", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for line in (
        f"From: {tenant_label}",
        f"Request: {request_id}",
        f"Produced: {bundle['timestamp']}",
        f"Records: {bundle['total']}",
        fee_note,
    ):
        pdf.multi_cell(0, 5, latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    with pdf.table(col_widths=(40, 25, 125), text_align="LEFT", line_height=5) as table:
        header = table.row()
        for title in ("Kind", "Date", "What"):
            header.cell(title)
        for entry in bundle["entry"]:
            resource = entry["resource"]
            row = table.row()
            row.cell(latin1(str(resource.get("resourceType", ""))))
            row.cell(latin1(_when(resource)))
            row.cell(latin1(_label(resource)[:300]))
    return bytes(pdf.output())
