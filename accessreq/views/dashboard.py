"""The security dashboard and the lists behind its numbers, for security admins and auditors
(everyone else gets 404). Both pages only read: GET, nothing else."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accessreq.evidence.dashboard import campaigns_visible_to
from accessreq.forms.dashboard import DashboardPeriodForm, DrillDownForm
from accessreq.reports import dashboard as data
from accessreq.reports import dashboard_lists as lists
from accessreq.services.common import now
from audit.actions import ACTIONS
from portal.auth import signed_in_user
from portal.roles import can_read_audit

PAGE_SIZE = 50


def _readers_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Security admins and auditors; to anyone else (whatever the method) the page is a 404."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_read_audit(signed_in_user(request)):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


@_readers_only
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    """The headline numbers, each linked to its list, and the ledger's failures per day."""
    form = DashboardPeriodForm(request.GET)
    if not form.is_valid():
        context: dict[str, Any] = {"form": form, "board": None, "presets": data.PERIOD_DAYS}
        return render(request, "accessreq/reports/dashboard.html", context, status=400)
    user = signed_in_user(request)
    board = data.dashboard(
        campaigns=campaigns_visible_to(user), at=now(), days=form.cleaned_data["days"]
    )
    context = {"form": form, "board": board, "presets": data.PERIOD_DAYS}
    return render(request, "accessreq/reports/dashboard.html", context)


@_readers_only
@require_GET
def dashboard_list(request: HttpRequest, kind: str) -> HttpResponse:
    """The requests, grants or ledger events behind one number, 50 a page."""
    form = DrillDownForm(request.GET)
    if not form.is_valid():
        return render(request, "accessreq/reports/dashboard_list.html", {"form": form}, status=400)
    at = now()
    found = lists.drill_down(kind, at=at, **form.cleaned_data)
    if found is None:
        raise Http404("No such list.")
    page = Paginator(found.rows, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    user = signed_in_user(request)
    context = {
        "form": form,
        "list": found,
        # Ledger events are listed with what their action means.
        "events": [(event, ACTIONS.get(event.action, "")) for event in page.object_list]
        if found.subject == "events"
        else [],
        "page": page,
        "query": query.urlencode(),
        "now": at,
        "admin_url": found.admin_path
        if user.is_staff and user.has_perm(found.admin_permission)
        else "",
    }
    return render(request, "accessreq/reports/dashboard_list.html", context)
