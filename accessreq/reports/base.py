"""What a report is: a filter form, columns, and rows read in chunks from one queryset.

A report never holds its rows in memory: the page shows one page of them and the writers
(``accessreq.reports.writers``) stream them, so a million rows cost the same memory as fifty.
Every report is registered here by its slug; the pages and the exports look it up.
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

    def queryset(self) -> QuerySet[Any]:
        raise NotImplementedError

    def cells(self, obj: Any) -> list[Cell]:
        raise NotImplementedError

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
        for obj in self.queryset().iterator(chunk_size=ROW_CHUNK):
            yield self.cells(obj)


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
