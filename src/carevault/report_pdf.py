"""The house style of CareVault's printable reports (fpdf2): a landscape A4 page with a title
and a few header lines, and Latin-1 text for the core fonts."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from fpdf import FPDF


def latin1(text: str) -> str:
    """The core fonts speak Latin-1: anything else becomes '?'."""
    return text.encode("latin-1", "replace").decode("latin-1")


def report_page(title: str, created_at: str, lines: Iterable[str]) -> FPDF:
    """A new report: its title, creation date and header lines written, ready for the body."""
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title(title)
    pdf.set_creation_date(datetime.fromisoformat(created_at))
    pdf.set_auto_page_break(auto=True, margin=12)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for line in lines:
        pdf.cell(0, 5, latin1(line), new_x="LMARGIN", new_y="NEXT")
    return pdf
