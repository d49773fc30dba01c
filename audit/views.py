"""Auditor pages: search the ledger, see one event with its proof; published signing keys."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from audit.actions import ACTIONS
from audit.canonical import format_time
from audit.forms import FILTER_FIELDS, EventSearchForm
from audit.models import SigningKey
from audit.selectors import (
    event_page,
    event_search,
    exact_target,
    inclusion_check,
    target_admin_links,
    visible_events,
)
from portal import roles

_BIGINT_MAX = 2**63 - 1
_UNREGISTERED = "Not in the action registry"


def _audit_readers_only(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Auditors and security admins only; to anyone else the page does not exist (404)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not roles.can_read_audit(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


@_audit_readers_only
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Filter the ledger, newest first, 50 a page, paged by sequence number (never OFFSET)."""
    form = EventSearchForm(request.GET)
    if not form.is_valid():
        context = {"form": form, "rows": [], "page": None, "filtered": True}
        return render(request, "audit/search.html", context, status=400)
    filters = form.filters()
    page = event_page(
        event_search(user=request.user, filters=filters),
        before=form.cleaned_data["before"],
        after=form.cleaned_data["after"],
    )
    query = urlencode(
        [(name, request.GET[name]) for name in FILTER_FIELDS if request.GET.get(name)]
    )
    context = {
        "form": form,
        "page": page,
        "rows": [(event, ACTIONS.get(event.action, _UNREGISTERED)) for event in page.events],
        "filtered": bool(filters),
        "paged": form.cleaned_data["before"] is not None or form.cleaned_data["after"] is not None,
        "query": query,
    }
    return render(request, "audit/search.html", context)


@_audit_readers_only
@require_GET
def event_detail(request: HttpRequest, sequence: int) -> HttpResponse:
    """One event: every field, its hashes, and its inclusion proof against the newest checkpoint."""
    if sequence > _BIGINT_MAX:
        raise Http404("No such event.")
    events = visible_events(request.user)
    event = get_object_or_404(events, sequence=sequence)
    previous = (
        events.filter(sequence=sequence - 1).values_list("leaf_hash", flat=True).first()
        if sequence > 1
        else None
    )
    has_next = events.filter(sequence=sequence + 1).exists()
    target_query = ""
    if event.target_type and event.target_id:
        target_query = urlencode({"target": exact_target(event.target_type, event.target_id)})
    context = {
        "event": event,
        "description": ACTIONS.get(event.action, _UNREGISTERED),
        "data_json": json.dumps(event.data, indent=2, sort_keys=True, ensure_ascii=False),
        "pipeline_json": (
            json.dumps(event.pipeline, indent=2, sort_keys=True, ensure_ascii=False)
            if event.pipeline
            else ""
        ),
        "check": inclusion_check(event, previous),
        "target_links": target_admin_links(event, request),
        "target_query": target_query,
        "actor_query": urlencode({"actor": event.actor_id}) if event.actor_id else "",
        "previous_sequence": sequence - 1 if previous is not None else None,
        "next_sequence": sequence + 1 if has_next else None,
    }
    return render(request, "audit/event.html", context)


@login_not_required
@require_GET
def keys(request: HttpRequest) -> JsonResponse:
    """Every public key that has signed checkpoints, current and retired: public by design."""
    from audit import signing

    current = signing.key_id_of(signing.signing_key().public_key())
    published = [
        {
            "key_id": key.key_id,
            "algorithm": "Ed25519",
            "public_key": key.public_key,
            "created_at": format_time(key.created_at),
            "retired_at": format_time(key.retired_at) if key.retired_at else None,
        }
        for key in SigningKey.objects.order_by("created_at")
    ]
    return JsonResponse({"current_key_id": current, "keys": published})
