"""An audit report as a PDF: a header with the filters and the generation time, then a table."""

from __future__ import annotations

from datetime import datetime

from fpdf import FPDF

from carevault.audit.reports import ReportPage

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


def _latin1(text: str) -> str:
    # The core fonts speak Latin-1; our cells are ids and codes, anything else becomes '?'.
    return text.encode("latin-1", "replace").decode("latin-1")


def _patients(raw: str) -> str:
    return raw.strip("[]").replace('"', "").replace(",", ", ")


def to_pdf(page: ReportPage, tenant_label: str) -> bytes:
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title("CareVault audit report")
    pdf.set_creation_date(datetime.fromisoformat(page.generated_at))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, "CareVault audit report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    lines = (
        f"Tenant: {tenant_label}",
        f"Filters: {page.filters.describe()}",
        f"Generated at: {page.generated_at}",
        f"Entries: {len(page.entries)}",
    )
    for line in lines:
        pdf.cell(0, 5, _latin1(line), new_x="LMARGIN", new_y="NEXT")
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
                row.cell(_latin1(text))
    return bytes(pdf.output())
