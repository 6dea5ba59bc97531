"""The accounting of disclosures as a printable PDF (the house style of audit/pdf.py): a header
with the patient, the period and the generation time, then one row per disclosure."""

from __future__ import annotations

from carevault.privacy.disclosure.accounting import AccountingReport
from carevault.privacy.disclosure.ledger import DisclosureEntry
from carevault.report_pdf import latin1, report_page

_COLUMNS = (
    ("Date (UTC)", 26),
    ("Recipient and address", 62),
    ("What was disclosed", 70),
    ("Purpose, or the request", 62),
    ("Basis", 28),
    ("Authorization / order", 29),
)
_INTRO = (
    "This is the accounting of disclosures of your health information that the law asks us to "
    "keep (45 CFR 164.528): disclosures made in the six years before your request, other than "
    "those the rule leaves out (for treatment, payment and health-care operations, to you, or "
    "under your own authorization)."
)


def _cells(e: DisclosureEntry) -> tuple[str, ...]:
    recipient = e.recipient_name + (f"\n{e.recipient_address}" if e.recipient_address else "")
    why = e.purpose
    if e.request_copy:
        why = f"{why}\nRequest: {e.request_copy}" if why else f"Request: {e.request_copy}"
    link = "\n".join(x for x in (e.authorization_ref, e.order_id and f"order {e.order_id}") if x)
    return (e.disclosed_at[:10], recipient, e.description, why, e.basis.value, link)


def to_pdf(report: AccountingReport, tenant_label: str) -> bytes:
    lines = (
        f"Covered entity: {tenant_label}",
        f"Patient: Patient/{report.patient_id}",
        f"Period: {report.period_start[:10]} to {report.requested_at[:10]}",
        f"Generated at: {report.requested_at}",
        f"Disclosures: {len(report.entries)}",
    )
    pdf = report_page("Accounting of disclosures", report.requested_at, lines)
    pdf.ln(1)
    pdf.multi_cell(0, 4, latin1(_INTRO), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    if not report.entries:
        pdf.cell(0, 6, "No disclosures to account for in this period.", new_x="LMARGIN")
    else:
        pdf.set_font("Helvetica", "", 7)
        widths = tuple(w for _, w in _COLUMNS)
        with pdf.table(col_widths=widths, text_align="LEFT", line_height=4) as table:
            header = table.row()
            for title, _ in _COLUMNS:
                header.cell(title)
            for entry in report.entries:
                row = table.row()
                for text in _cells(entry):
                    row.cell(latin1(text))
    if report.unavailable:
        pdf.ln(3)
        pdf.set_font("Helvetica", "", 8)
        dates = ", ".join(r.disclosed_at[:10] for r in report.unavailable)
        note = f"Details of disclosures on {dates} were destroyed with the record's key."
        pdf.multi_cell(0, 4, latin1(note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
