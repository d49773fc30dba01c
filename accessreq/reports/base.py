"""What a report is: a filter form, columns, and rows read in chunks from one queryset.

A report never holds its rows in memory: the page shows one page of them and the writers
(``accessreq.reports.writers``) stream them, so a million rows cost the same memory as fifty.
Every report is registered here by its slug; the pages and the exports look it up.

Rows are plain ``values()`` dictionaries, not model instances, when the report names its
``fields``: building nine related instances per row cost over a millisecond each (1,300 rows/s
measured by ``bench/report_export.py``), the rest of the export far less. What a row needs from
a to-many relation (a request's approvals) is loaded by ``attach`` in one query per chunk.
The page and the exports go through the same ``records``, ``attach`` and ``cells``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from django import forms
from django.db.models import QuerySet

ROW_CHUNK = 2000


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    # Relative width in the PDF (the page is shared out in proportion).
    width: float = 1.0
    # On the page, the cell (an id) links to this URL name with it as the one argument.
    link: str = ""


Cell = str | int | float | datetime | None


class Report:
    """Subclasses set the class attributes and implement ``queryset`` and ``cells``."""

    slug: ClassVar[str]
    title: ClassVar[str]
    summary: ClassVar[str]
    columns: ClassVar[list[Column]]
    form_class: ClassVar[type[forms.Form]]
    # Pages are handed the class; templates must read its attributes, not call it.
    do_not_call_in_templates: ClassVar[bool] = True

    def __init__(self, params: dict[str, Any], *, at: datetime) -> None:
        # ``params`` are a valid form's cleaned_data; ``at`` is when the report was asked for.
        self.params = params
        self.at = at

    # ``values()`` lookups of a row; empty: rows are the queryset's model instances.
    fields: ClassVar[tuple[str, ...]] = ()

    def queryset(self) -> QuerySet[Any]:
        raise NotImplementedError

    def records(self) -> QuerySet[Any]:
        """The rows' records in report order: dictionaries of ``fields``, or instances."""
        queryset = self.queryset()
        return queryset.values(*self.fields) if self.fields else queryset

    def attach(self, records: list[Any]) -> None:
        """Load what these records' cells need beyond their own fields (one query each)."""

    def cells(self, record: Any) -> list[Cell]:
        raise NotImplementedError

    def cells_of(self, records: list[Any]) -> list[list[Cell]]:
        self.attach(records)
        return [self.cells(record) for record in records]

    def evidence_events(self) -> QuerySet[Any]:
        """Ledger events the signed export carries as proof (checked against the chain by the
        offline verifier); none unless the report's rows are themselves events."""
        from audit.models import AuditEvent

        return AuditEvent.objects.none()

    def facts(self) -> list[tuple[str, str]]:
        """The parameters in words, for the head of every format."""
        return []

    def parameters(self) -> dict[str, Any]:
        """The parameters as JSON for the signed manifest and the audit event."""
        return {key: _json(value) for key, value in sorted(self.params.items())}

    def count(self) -> int:
        return self.queryset().count()

    def rows(self) -> Iterator[list[Cell]]:
        chunk: list[Any] = []
        for record in self.records().iterator(chunk_size=ROW_CHUNK):
            chunk.append(record)
            if len(chunk) == ROW_CHUNK:
                yield from self.cells_of(chunk)
                chunk = []
        if chunk:
            yield from self.cells_of(chunk)


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if hasattr(value, "pk"):
        return {"id": value.pk, "name": str(value)}
    if isinstance(value, list | tuple):
        return [_json(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


REPORTS: dict[str, type[Report]] = {}


def register(report: type[Report]) -> type[Report]:
    REPORTS[report.slug] = report
    return report


def report_class(slug: str) -> type[Report] | None:
    from accessreq.reports import catalog  # noqa: F401  (registers every report)

    return REPORTS.get(slug)


def all_reports() -> list[type[Report]]:
    from accessreq.reports import catalog  # noqa: F401

    return list(REPORTS.values())
