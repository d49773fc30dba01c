"""The evidence report as a PDF (fpdf2, core fonts only): landscape A4, readable tables with the
head repeated on each page, the campaign on every page and page numbers at the foot."""

from __future__ import annotations

import unicodedata
from typing import IO, Any

from fpdf import FPDF

from accessreq.evidence.report import EvidenceReport, EvidenceRow, utc_text

# --- PDF ---------------------------------------------------------------------------------------

_PDF_REPLACEMENTS = {
    "\u2014": "-",
    "\u2013": "-",
    "\u2212": "-",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": ",",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u2026": "...",
    "\u2022": "*",
    "\u2192": "->",
    "\u2190": "<-",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u20ac": "EUR",
    "\u2122": "TM",
    "\u00a0": " ",
    "\u200b": "",
    "\ufeff": "",
    # Letters with no decomposition to a Latin-1 base.
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u0131": "i",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u0126": "H",
    "\u0127": "h",
}


def pdf_text(value: Any) -> str:
    """Text the PDF core fonts can draw (Latin-1): accents outside Latin-1 are dropped
    (``Łódź`` -> ``Lodz``), common punctuation is spelled in ASCII, anything else becomes ``?``
    and control characters become spaces."""
    out = []
    for char in str(value):
        code = ord(char)
        if char == "\n" or (32 <= code < 127) or (160 <= code < 256):
            out.append(char)
        elif code < 32 or 127 <= code < 160:
            out.append(" ")
        elif char in _PDF_REPLACEMENTS:
            out.append(_PDF_REPLACEMENTS[char])
        else:
            plain = "".join(
                c
                for c in unicodedata.normalize("NFKD", char)
                if ord(c) < 256 and not unicodedata.combining(c)
            )
            out.append(plain or "?")
    return "".join(out)


class EvidencePDF(FPDF):
    """Landscape A4 with the report's kind and title on every page's head and "Page n/N" at
    its foot."""

    def __init__(self, title: str, kind: str = "access review evidence") -> None:
        super().__init__(orientation="L", unit="mm", format="A4")
        self.report_title = pdf_text(title)
        self.report_kind = pdf_text(kind)
        self.set_margins(10, 14, 10)
        self.set_auto_page_break(False)
        self.set_title(self.report_title)
        self.set_author("Gatehouse")
        self.set_creator(f"Gatehouse {self.report_kind}")

    def header(self) -> None:
        self.set_font("Helvetica", "", 7)
        self.set_text_color(90, 100, 110)
        self.text(10, 8, f"Gatehouse - {self.report_kind} - {self.report_title}")
        self.set_text_color(0, 0, 0)

    def footer(self) -> None:
        self.set_y(-10)
        self.set_font("Helvetica", "", 7)
        self.set_text_color(90, 100, 110)
        self.cell(0, 5, f"Page {self.page_no()}/{{nb}}", align="C")
        self.set_text_color(0, 0, 0)


class PdfTable:
    """A light table drawer: wraps each cell to its column, repeats the head on new pages.
    (fpdf2's own table is ten times slower, which matters for 100,000 items.)"""

    LINE = 3.2
    PAD = 1.0

    def __init__(self, pdf: EvidencePDF, columns: list[tuple[str, float]], size: float = 7):
        self.pdf = pdf
        self.heads = [pdf_text(name) for name, _ in columns]
        self.widths = [width for _, width in columns]
        self.size = size

    def _wrap(self, text: str, width: float) -> list[str]:
        pdf = self.pdf
        lines: list[str] = []
        for paragraph in text.split("\n"):
            line = ""
            for word in paragraph.split(" "):
                candidate = f"{line} {word}" if line else word
                if pdf.get_string_width(candidate) <= width:
                    line = candidate
                    continue
                if line:
                    lines.append(line)
                while word and pdf.get_string_width(word) > width:
                    cut = len(word)
                    while cut > 1 and pdf.get_string_width(word[:cut]) > width:
                        cut -= 1
                    lines.append(word[:cut])
                    word = word[cut:]
                line = word
            lines.append(line)
        return lines or [""]

    def _draw(self, cells: list[str], *, head: bool = False) -> None:
        pdf = self.pdf
        pdf.set_font("Helvetica", "B" if head else "", self.size)
        wrapped = [
            self._wrap(pdf_text(cell), width - 2 * self.PAD)
            for cell, width in zip(cells, self.widths, strict=True)
        ]
        height = max(len(lines) for lines in wrapped) * self.LINE + 2 * self.PAD
        if pdf.get_y() + height > pdf.h - 14:
            pdf.add_page()
            if not head:
                self._draw(self.heads, head=True)
                pdf.set_font("Helvetica", "", self.size)
        x, y = pdf.l_margin, pdf.get_y()
        if head:
            pdf.set_fill_color(230, 235, 240)
            pdf.rect(x, y, sum(self.widths), height, style="F")
        pdf.set_draw_color(190, 198, 206)
        for lines, width in zip(wrapped, self.widths, strict=True):
            pdf.rect(x, y, width, height)
            for index, line in enumerate(lines):
                pdf.text(x + self.PAD, y + self.PAD + (index + 0.78) * self.LINE, line)
            x += width
        pdf.set_xy(pdf.l_margin, y + height)

    def head(self) -> None:
        self._draw(self.heads, head=True)

    def row(self, cells: list[str]) -> None:
        self._draw(cells)


def pdf_heading(pdf: EvidencePDF, text: str) -> None:
    if pdf.get_y() > pdf.h - 40:
        pdf.add_page()
    pdf.ln(3)
    pdf.set_font("Helvetica", "B", 11)
    pdf.cell(0, 6, pdf_text(text), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def pdf_facts(pdf: EvidencePDF, facts: list[tuple[str, str]]) -> None:
    for label, value in facts:
        if pdf.get_y() > pdf.h - 20:
            pdf.add_page()
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(42, 4.2, pdf_text(label))
        pdf.set_font("Helvetica", "", 8)
        pdf.multi_cell(0, 4.2, pdf_text(value), new_x="LMARGIN", new_y="NEXT")


_PDF_ITEM_COLUMNS = [
    ("#", 10.0),
    ("Holder", 38.0),
    ("Entitlement", 36.0),
    ("Tier", 14.0),
    ("Granted", 28.0),
    ("Reviewer", 28.0),
    ("Decision", 20.0),
    ("Decided", 28.0),
    ("Comment", 29.0),
    ("MFA", 16.0),
    ("Remediation", 30.0),
]


def _pdf_item_cells(row: EvidenceRow) -> list[str]:
    holder = f"{row.holder}\n{row.holder_email}"
    if row.holder_status and row.holder_status != "active":
        holder += f"\n({row.holder_status})"
    granted = utc_text(row.granted_at) + (f"\nby {row.granted_by}" if row.granted_by else "")
    decided = (
        f"{row.decided_by}\n{utc_text(row.decided_at)}"
        if row.decided_by
        else utc_text(row.decided_at)
    )
    decision = row.decision_label
    if row.deadline_action:
        decision += f"\n({row.deadline_action})"
    if row.escalated_at:
        decision += f"\nescalated {utc_text(row.escalated_at)}"
    remediation = row.remediation
    if row.remediated_at:
        remediation += f"\n{utc_text(row.remediated_at)}"
    return [
        str(row.item_id),
        holder,
        f"{row.entitlement}" + (" [break-glass]" if row.break_glass else ""),
        row.tier.capitalize(),
        granted,
        row.reviewer,
        decision,
        decided,
        row.comment,
        row.mfa or "-",
        remediation,
    ]


def write_pdf(report: EvidenceReport, handle: IO[bytes]) -> None:
    pdf = EvidencePDF(report.title)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 8, "Access review evidence", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 12)
    pdf.cell(0, 7, pdf_text(report.title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    progress = report.progress
    pdf_facts(
        pdf,
        [
            *report.dates(),
            (
                "Items",
                f"{progress.total} to review: {progress.certified} certified, "
                f"{progress.revoked} revoked, {progress.expired} closed by the deadline action, "
                f"{progress.pending} pending; {progress.reassigned} handed to another reviewer",
            ),
            ("Generated", f"{utc_text(report.generated_at)} by {report.generated_by}"),
        ],
    )
    if not report.final:
        pdf.set_font("Helvetica", "B", 8)
        pdf.cell(0, 5, "Interim report: the campaign is not closed yet.", new_x="LMARGIN")
        pdf.ln(5)
    scope_title = "Scope" + (
        f" (template as of {utc_text(report.scope.as_of)})" if report.scope.as_of else ""
    )
    pdf_heading(pdf, scope_title)
    pdf_facts(pdf, report.scope.lines())

    pdf_heading(pdf, "Reviewers")
    reviewers = PdfTable(
        pdf,
        [
            ("Reviewer", 70.0),
            ("Items", 20.0),
            ("Decided", 20.0),
            ("Certified", 20.0),
            ("Revoked", 20.0),
            ("Closed by deadline", 28.0),
            ("Handed on", 20.0),
            ("Escalated", 20.0),
        ],
    )
    reviewers.head()
    for reviewer in report.reviewers:
        p = reviewer.progress
        reviewers.row(
            [
                f"{reviewer.name} <{reviewer.email}>",
                *(str(n) for n in (p.total, p.decided, p.certified, p.revoked, p.expired)),
                str(p.reassigned),
                str(p.escalated),
            ]
        )

    pdf_heading(pdf, f"Every item ({report.item_count})")
    items = PdfTable(pdf, _PDF_ITEM_COLUMNS)
    items.head()
    for row in report.rows():
        items.row(_pdf_item_cells(row))

    deadline = report.deadline_rows()
    pdf_heading(pdf, f"Closed by the deadline action ({len(deadline)})")
    if deadline:
        closed = PdfTable(
            pdf,
            [
                ("#", 12.0),
                ("Holder", 50.0),
                ("Entitlement", 60.0),
                ("Reviewer", 45.0),
                ("Action", 40.0),
                ("Remediation", 70.0),
            ],
        )
        closed.head()
        for row in deadline:
            closed.row(
                [
                    str(row.item_id),
                    row.holder,
                    row.entitlement,
                    row.reviewer,
                    row.deadline_action,
                    row.remediation
                    + (f" {utc_text(row.remediated_at)}" if row.remediated_at else ""),
                ]
            )
    else:
        pdf.set_font("Helvetica", "", 8)
        pdf.cell(0, 5, "None: every item was decided by a reviewer.", new_x="LMARGIN")
    handle.write(bytes(pdf.output()))
