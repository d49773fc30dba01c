"""Evidence export of filtered audit events: a confirmation page, then the bundle as a download."""

from __future__ import annotations

import dataclasses
import tempfile
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponseBase,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from audit import ledger
from audit.export import ExportError, evidence_export
from audit.forms import FILTER_FIELDS, EventSearchForm
from audit.selectors import event_search
from portal import roles
from portal.auth import signed_in_user
from portal.services.mfa import mfa_is_fresh


def _step_up(query: dict[str, str]) -> HttpResponseRedirect:
    here = reverse("audit:export") + (f"?{urlencode(query)}" if query else "")
    return HttpResponseRedirect(f"{reverse('mfa_verify')}?{urlencode({'next': here})}")


@never_cache
@require_http_methods(["GET", "POST"])
def export(request: HttpRequest) -> HttpResponseBase:
    """GET: what the bundle will hold and a button. POST: build it, record it, download it."""
    user = signed_in_user(request)
    if not roles.can_read_audit(user):
        raise Http404
    data = request.POST if request.method == "POST" else request.GET
    # The same filters, and the same rules, as the audit search page.
    form = EventSearchForm(data)
    context: dict[str, Any] = {"form": form, "fresh": mfa_is_fresh(request)}
    if not form.is_valid():
        return render(request, "audit/export.html", context, status=400)
    filters = form.filters()
    query = {name: data[name] for name in FILTER_FIELDS if data.get(name)}
    context.update(
        hidden=sorted(query.items()),
        newest=ledger.tree_size(),
        filters=filters,
        search_query=urlencode(query),
    )
    if request.method == "GET":
        return render(request, "audit/export.html", context)

    if not mfa_is_fresh(request):
        messages.info(request, "Confirm it's you before exporting audit evidence.")
        return _step_up(query)
    # A file on disk, deleted when closed (FileResponse closes it once sent): flat memory.
    bundle = tempfile.TemporaryFile(prefix="gatehouse-evidence-")  # noqa: SIM115
    try:
        result = evidence_export(
            events=event_search(user=user, filters=filters),
            fileobj=bundle,
            actor=user,
            filters=dataclasses.asdict(filters),
            request=request,
        )
    except ExportError as exc:
        bundle.close()
        context["error"] = str(exc)
        return render(request, "audit/export.html", context, status=409)
    except BaseException:
        bundle.close()
        raise
    return FileResponse(
        bundle, as_attachment=True, filename=result.filename, content_type="application/zip"
    )
