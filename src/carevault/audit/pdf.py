"""An audit report as a PDF: a header with the filters and the generation time, then a table."""

from __future__ import annotations

from carevault.audit.reports import ReportPage
from carevault.report_pdf import latin1, report_page

_COLUMNS = (
    ("seq", "Seq", 12),
    ("recorded_at", "Recorded (UTC)", 44),
    ("actor_id", "User", 50),
    ("actor_role", "Role", 26),
    ("action", "Action", 18),
    ("outcome", "Outcome", 18),
    ("purpose", "Purpose", 18),
    ("resource_type", "Type", 26),
    ("patient_ids", "Patients", 40),
    ("source_ip", "Source", 25),
)


def _patients(raw: str) -> str:
    return raw.strip("[]").replace('"', "").replace(",", ", ")


def to_pdf(page: ReportPage, tenant_label: str) -> bytes:
    lines = (
        f"Tenant: {tenant_label}",
        f"Filters: {page.filters.describe()}",
        f"Generated at: {page.generated_at}",
        f"Entries: {len(page.entries)}",
    )
    pdf = report_page("CareVault audit report", page.generated_at, lines)
    pdf.ln(3)
    pdf.set_font("Helvetica", "", 7)
    widths = tuple(w for _, _, w in _COLUMNS)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=4) as table:
        header = table.row()
        for _, title, _ in _COLUMNS:
            header.cell(title)
        for entry in page.entries:
            row = table.row()
            for name, _, _ in _COLUMNS:
                value = entry[name]
                text = _patients(value) if name == "patient_ids" else str(value or "")
                row.cell(latin1(text))
    return bytes(pdf.output())
