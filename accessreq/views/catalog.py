"""Pages of the access catalog."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Now
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from accessreq.forms import CatalogFilterForm
from accessreq.models import AccessRequest, Grant
from accessreq.selectors import catalog_search
from accessreq.states import RequestState


@require_GET
def catalog(request: HttpRequest) -> HttpResponse:
    """Browse and search the entitlements that can be requested."""
    form = CatalogFilterForm(request.GET or None)
    text, tier = "", ""
    if form.is_valid():
        text, tier = form.cleaned_data["q"], form.cleaned_data["tier"]
    # What the person already holds or has asked for, read in the page's own query.
    held = Grant.objects.live().filter(
        beneficiary=request.user.pk, entitlement=OuterRef("pk"), expires_at__gt=Now()
    )
    pending = AccessRequest.objects.filter(
        beneficiary=request.user.pk, entitlement=OuterRef("pk"), state=RequestState.PENDING
    )
    entitlements = catalog_search(user=request.user, text=text, tier=tier).annotate(
        held_until=Subquery(held.values("expires_at")[:1]),
        pending_id=Subquery(pending.values("pk")[:1]),
    )
    page = Paginator(entitlements, 25).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "filtered": bool(text or tier),
        "query": query.urlencode(),
    }
    status = 400 if form.errors else 200
    return render(request, "accessreq/catalog.html", context, status=status)
