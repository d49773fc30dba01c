"""Auditor reports: the index, one report with its filters and a page of rows, exports (signed
bundles, built now or by a worker), an export's progress and its download.

Auditors and security admins only (404 for everyone else); nothing here changes access. Every
export needs a fresh second factor and is recorded in the ledger; opening a report is recorded
too.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import ReportExport
from accessreq.reports.base import Report, all_reports, report_class
from accessreq.reports.writers import FORMATS, PDF_MAX_ROWS
from accessreq.services import reports as service
from accessreq.services.common import now
from audit.export import ExportError
from portal.auth import signed_in_user
from portal.models import User
from portal.roles import can_read_audit
from portal.services.mfa import mfa_is_fresh

PER_PAGE = 50
EXPORTS_SHOWN = 10
FORMAT_LABELS = {"csv": "CSV", "xlsx": "Excel (XLSX)", "pdf": "PDF"}


def _reader(request: HttpRequest) -> User:
    user = signed_in_user(request)
    if not can_read_audit(user):
        raise Http404
    return user


def _step_up(request: HttpRequest) -> HttpResponseRedirect:
    messages.info(request, "Confirm it's you before exporting a report.")
    return HttpResponseRedirect(
        f"{reverse('mfa_verify')}?{urlencode({'next': request.get_full_path()})}"
    )


def _query(request: HttpRequest, report: type[Report]) -> dict[str, Any]:
    """The filter fields present in the request (other parameters are not the form's)."""
    fields = report.form_class.base_fields
    return {name: request.GET[name] for name in fields if request.GET.get(name)}


def _cells(cls: type[Report], cells: list[Any]) -> list[tuple[str, Any, str, str]]:
    """(column label, value, link, CSS class) of each cell of a row on the page."""
    out = []
    for column, cell in zip(cls.columns, cells, strict=True):
        url = reverse(column.link, args=[cell]) if column.link and cell else ""
        css = "report-table__num" if url or isinstance(cell, int) else ""
        if column.key == "breaches" and cell and cell != "None":
            css = "breach"
        out.append((column.label, cell, url, css))
    return out


@never_cache
@require_GET
def reports(request: HttpRequest) -> HttpResponse:
    user = _reader(request)
    exports = service.exports_of(user)[:EXPORTS_SHOWN]
    return render(
        request, "accessreq/reports/index.html", {"reports": all_reports(), "exports": exports}
    )


@never_cache
@require_GET
def report(request: HttpRequest, slug: str) -> HttpResponse:
    user = _reader(request)
    cls = report_class(slug)
    if cls is None:
        raise Http404
    at = now()
    query = _query(request, cls)
    form = cls.form_class(request.GET or None, at=at)  # type: ignore[call-arg]
    context: dict[str, Any] = {
        "report": cls,
        "form": form,
        "formats": [(fmt, FORMAT_LABELS[fmt]) for fmt in FORMATS],
        "query": urlencode(query),
        "fresh": mfa_is_fresh(request),
        "pdf_max_rows": PDF_MAX_ROWS,
    }
    if request.GET and not form.is_valid():
        return render(request, "accessreq/reports/report.html", context, status=400)
    if not request.GET:
        form = cls.form_class({}, at=at)  # type: ignore[call-arg]
        form.is_valid()
    built = cls(form.cleaned_data, at=at)
    paginator = Paginator(built.records(), PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    rows = [_cells(cls, cells) for cells in built.cells_of(list(page.object_list))]
    service.report_view(built, actor=user, http=request)
    context.update(
        form=form,
        built=built,
        page=page,
        rows=rows,
        facts=built.facts(),
        sync_rows=settings.REPORT_EXPORT_SYNC_ROWS,
    )
    return render(request, "accessreq/reports/report.html", context)


@never_cache
@require_GET
def report_export(request: HttpRequest, slug: str) -> Any:
    """Download the report as a signed bundle now, or queue it and show its progress."""
    user = _reader(request)
    cls = report_class(slug)
    if cls is None:
        raise Http404
    if not mfa_is_fresh(request):
        return _step_up(request)
    query = _query(request, cls)
    back = reverse("report", args=[slug]) + (f"?{urlencode(query)}" if query else "")
    try:
        result = service.report_export(
            slug=slug,
            fmt=request.GET.get("format", ""),
            query=query,
            actor=user,
            http=request,
        )
    except (WorkflowError, ExportError) as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(back)
    if isinstance(result, ReportExport):
        messages.info(
            request,
            f"{result.rows_total:,} rows: the export is being built in the background. "
            "This page shows its progress; you can leave it and come back.",
        )
        return redirect("report_export_status", result.pk)
    return FileResponse(
        result.handle, as_attachment=True, filename=result.filename, content_type="application/zip"
    )


@never_cache
@require_GET
def report_export_status(request: HttpRequest, export_id: int) -> HttpResponse:
    user = _reader(request)
    export = service.exports_of(user).filter(pk=export_id).first()
    if export is None:
        raise Http404
    return render(request, "accessreq/reports/export.html", {"export": export})


@never_cache
@require_GET
def report_export_download(request: HttpRequest, export_id: int) -> Any:
    user = _reader(request)
    if not service.exports_of(user).filter(pk=export_id).exists():
        raise Http404
    if not mfa_is_fresh(request):
        return _step_up(request)
    try:
        result = service.report_export_download(export_id=export_id, actor=user, http=request)
    except NotAllowed:
        raise Http404 from None
    except WorkflowError as exc:
        messages.error(request, str(exc))
        return redirect("report_export_status", export_id)
    return FileResponse(
        result.handle, as_attachment=True, filename=result.filename, content_type="application/zip"
    )
