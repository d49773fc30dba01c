"""A report as CSV, XLSX or PDF, written row by row to a binary file.

CSV and XLSX stream: rows come from the report in chunks and leave for the file at once
(XlsxWriter's constant-memory mode flushes each row), so memory stays flat for a million rows.
A PDF is built whole by fpdf2 before it is written, so it is capped at ``PDF_MAX_ROWS``; larger
reports are for the spreadsheet formats. Every format starts with the same head: the report,
its parameters, when and by whom it was made.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

import xlsxwriter

from accessreq.evidence.pdf import EvidencePDF, PdfTable, pdf_facts, pdf_heading, pdf_text
from accessreq.reports.base import Cell, Report
from accessreq.reports.common import utc
from audit import verify_bundle as bundle_format

FORMATS = ("csv", "xlsx", "pdf")
CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pdf": "application/pdf",
}
PDF_MAX_ROWS = 20_000
# Progress is reported every so many rows (the background export stores it).
PROGRESS_EVERY = 1000
# Excel's limits: longer cells are cut (and say so), more rows go to the next sheet.
_XLSX_MAX_CELL = 32_767
_XLSX_MAX_ROWS = 1_048_576

Progress = Callable[[int], None]


def head(report: Report, *, made_by: str, made_at: datetime) -> list[tuple[str, str]]:
    return [
        ("Report", report.title),
        *report.facts(),
        ("Made", f"{utc(made_at)} by {made_by}"),
    ]


def _text(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, datetime):
        return utc(cell)
    return str(cell)


def _rows(report: Report, progress: Progress | None) -> Any:
    count = 0
    for row in report.rows():
        yield row
        count += 1
        if progress is not None and count % PROGRESS_EVERY == 0:
            progress(count)
    if progress is not None:
        progress(count)


def write_csv(
    report: Report,
    handle: IO[bytes],
    *,
    made_by: str,
    made_at: datetime,
    progress: Progress | None = None,
) -> int:
    """A header row, then one row per record: plain tabular data a script can read, with every
    cell a spreadsheet would run as a formula neutralised. The parameters are in the signed
    manifest beside it. Returns the number of rows."""
    text = io.StringIO()
    writer = csv.writer(text)
    handle.write("\ufeff".encode())  # a BOM, so spreadsheet programs read UTF-8
    writer.writerow([column.label for column in report.columns])
    count = 0
    for row in _rows(report, progress):
        writer.writerow([bundle_format.neutralise(_text(cell)) for cell in row])
        count += 1
        if count % 500 == 0:
            handle.write(text.getvalue().encode("utf-8"))
            text.seek(0)
            text.truncate()
    handle.write(text.getvalue().encode("utf-8"))
    return count


def write_xlsx(
    report: Report,
    handle: IO[bytes],
    *,
    made_by: str,
    made_at: datetime,
    progress: Progress | None = None,
) -> int:
    """A sheet of rows under a bold, frozen header with a filter, and an "About" sheet with the
    parameters. Strings are written as strings, never as formulas."""
    book = xlsxwriter.Workbook(
        handle,
        {
            "constant_memory": True,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "strings_to_numbers": False,
            "in_memory": False,
        },
    )
    book.set_properties({"title": report.title, "author": made_by, "company": "Gatehouse"})
    bold = book.add_format({"bold": True, "bg_color": "#E6EBF0", "border": 1})
    wrap = book.add_format({"text_wrap": True, "valign": "top"})
    about = book.add_worksheet("About")
    about.set_column(0, 0, 22)
    about.set_column(1, 1, 90)
    for index, (label, value) in enumerate(head(report, made_by=made_by, made_at=made_at)):
        about.write_string(index, 0, label, bold)
        about.write_string(index, 1, value)

    widths = [max(10, min(60, int(column.width * 18))) for column in report.columns]

    def sheet(number: int) -> Any:
        name = "Rows" if number == 1 else f"Rows {number}"
        page = book.add_worksheet(name)
        for index, column in enumerate(report.columns):
            page.set_column(index, index, widths[index], wrap)
            page.write_string(0, index, column.label, bold)
        page.freeze_panes(1, 0)
        page.autofilter(0, 0, 0, len(report.columns) - 1)
        return page

    number, page, line, count = 1, sheet(1), 1, 0
    for row in _rows(report, progress):
        if line == _XLSX_MAX_ROWS:
            number += 1
            page, line = sheet(number), 1
        for index, cell in enumerate(row):
            if isinstance(cell, bool) or cell is None:
                page.write_string(line, index, _text(cell))
            elif isinstance(cell, int | float):
                page.write_number(line, index, cell)
            else:
                value = _text(cell)
                if len(value) > _XLSX_MAX_CELL:
                    value = value[: _XLSX_MAX_CELL - 20] + " [cut: see the CSV]"
                page.write_string(line, index, value)
        line += 1
        count += 1
    book.close()
    return count


def write_pdf(
    report: Report,
    handle: IO[bytes],
    *,
    made_by: str,
    made_at: datetime,
    progress: Progress | None = None,
) -> int:
    """Landscape A4: the title and parameters, then the rows in a table whose head repeats on
    every page. Refuses (``ValueError``) more than ``PDF_MAX_ROWS`` rows."""
    pdf = EvidencePDF(report.title, kind="audit report")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 8, pdf_text(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(0, 4.5, pdf_text(report.summary), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf_facts(pdf, head(report, made_by=made_by, made_at=made_at)[1:])
    pdf_heading(pdf, "Rows")
    usable = pdf.w - pdf.l_margin - pdf.r_margin
    total = sum(column.width for column in report.columns)
    pdf.set_font("Helvetica", "B", 6.5)
    # Each column its share of the page, but never narrower than its longest heading word.
    least = [
        max(pdf.get_string_width(word) for word in pdf_text(column.label).split()) + 2.5
        for column in report.columns
    ]
    shares = [
        max(usable * column.width / total, floor)
        for column, floor in zip(report.columns, least, strict=True)
    ]
    scale = usable / sum(shares)
    table = PdfTable(
        pdf,
        [
            (column.label, share * scale)
            for column, share in zip(report.columns, shares, strict=True)
        ],
        size=6.5,
    )
    table.head()
    count = 0
    for row in _rows(report, progress):
        count += 1
        if count > PDF_MAX_ROWS:
            raise ValueError(
                f"A PDF holds at most {PDF_MAX_ROWS:,} rows; export this report as CSV or XLSX."
            )
        table.row([_text(cell) for cell in row])
    if count == 0:
        pdf.set_font("Helvetica", "", 8)
        pdf.cell(0, 5, "No rows match these parameters.", new_x="LMARGIN")
    handle.write(bytes(pdf.output()))
    return count


WRITERS = {"csv": write_csv, "xlsx": write_xlsx, "pdf": write_pdf}
