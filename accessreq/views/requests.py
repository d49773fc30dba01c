"""Requester pages: ask for an entitlement, follow my requests, open one, withdraw it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.forms import AccessRequestForm
from accessreq.forms.requests import beneficiary_choices
from accessreq.models import (
    AccessRequest,
    Approval,
    Decision,
    Entitlement,
    RequestKind,
)
from accessreq.policy import approval_preview
from accessreq.progress import stage_progress
from accessreq.selectors import my_requests as my_requests_selector
from accessreq.services.common import now
from accessreq.services.requests import (
    deciding_principal,
    live_grant,
    request_submit,
    sod_conflicts,
)
from accessreq.services.requests import request_withdraw as withdraw_service
from accessreq.states import FINAL_STATES, WAITING_STATES, RequestState
from portal.models import User

PAGE_SIZE = 25
# The filters of "My requests": the tab's label and the states it shows (None: every state).
# Open means still waiting (for a decision, or approved and waiting for its start); a request
# that gave access is under Granted until the access ends.
STATE_FILTERS: dict[str, tuple[str, frozenset[str] | None]] = {
    "all": ("All", None),
    "open": ("Open", WAITING_STATES),
    "granted": ("Granted", frozenset({RequestState.ACTIVE})),
    "closed": ("Closed", frozenset(FINAL_STATES)),
}
# Fields of the request form carried over when the page is re-rendered for another beneficiary.
_CARRIED = ("justification", "ticket", "duration", "requested_start")

# --- Request form ----------------------------------------------------------------------------


def _beneficiary_context(
    *, user: User, entitlement: Entitlement, beneficiary: User
) -> dict[str, Any]:
    """What depends on who will hold the access: approvers, conflicts, extension, pending twin."""
    clock = now()
    preview = approval_preview(entitlement, requester=user, beneficiary=beneficiary)
    conflicts = sod_conflicts(beneficiary, entitlement, at=clock)
    held = live_grant(beneficiary, entitlement, at=clock)
    pending = (
        AccessRequest.objects.visible_to(user)
        .filter(beneficiary=beneficiary, entitlement=entitlement, state=RequestState.PENDING)
        .only("pk", "created_at")
        .first()
    )
    stranded = [stage for stage in preview if not stage["people"]]
    return {
        "beneficiary": beneficiary,
        "for_self": beneficiary.pk == user.pk,
        "preview": preview,
        "conflicts": conflicts,
        "held": held,
        "pending": pending,
        "stranded": stranded,
        "blocked": bool(conflicts or stranded or pending),
    }


@require_http_methods(["GET", "POST"])
def request_new(request: HttpRequest, entitlement_id: int) -> HttpResponse:
    """Ask for an entitlement, seeing who will have to approve before submitting."""
    user = request.user
    assert isinstance(user, User)
    entitlement = get_object_or_404(
        Entitlement.objects.visible_to(user)
        .select_related("system", "environment")
        .prefetch_related("scopes"),
        pk=entitlement_id,
    )
    people = beneficiary_choices(user)
    by_id = {str(p.pk): p for p in people}
    submitting = request.method == "POST" and "preview" not in request.POST

    if submitting:
        chosen = by_id.get(request.POST.get("beneficiary", ""), user) if len(people) > 1 else user
    else:
        # A preview: GET ?for=<id>, or the "Update" button (POST preview=1) keeping what was typed.
        source = request.POST if request.method == "POST" else request.GET
        chosen = by_id.get(source.get("beneficiary") or source.get("for") or "", user)
    context = _beneficiary_context(user=user, entitlement=entitlement, beneficiary=chosen)
    form_kwargs: dict[str, Any] = {
        "entitlement": entitlement,
        "user": user,
        "people": people,
        "extension": context["held"] is not None,
    }

    if submitting:
        form = AccessRequestForm(request.POST, **form_kwargs)
        if form.is_valid():
            data = form.cleaned_data
            try:
                access_request = request_submit(
                    actor=user,
                    entitlement=entitlement,
                    beneficiary=data.get("beneficiary", user),
                    justification=data["justification"],
                    duration=data["duration"],
                    ticket=data.get("ticket", ""),
                    requested_start=data.get("requested_start"),
                    http=request,
                )
            except WorkflowError as error:
                form.add_error(None, str(error))
            else:
                kind = (
                    "extension request"
                    if access_request.kind == RequestKind.EXTENSION
                    else "request"
                )
                messages.success(
                    request,
                    f"Your {kind} for {entitlement} was sent. The approvers have been told; "
                    "you'll get an email when it is decided.",
                )
                return redirect("request_detail", request_id=access_request.pk)
    else:
        initial: dict[str, Any] = {"beneficiary": str(chosen.pk)}
        if request.method == "POST":
            initial |= {name: request.POST[name] for name in _CARRIED if name in request.POST}
        form = AccessRequestForm(initial=initial, **form_kwargs)

    context |= {
        "entitlement": entitlement,
        "form": form,
        "help_url": reverse("docs:runbook", args=["requesting-access"]),
    }
    return render(request, "accessreq/requests/new.html", context)


# --- My requests -----------------------------------------------------------------------------


def _safe_next(request: HttpRequest, default: str) -> str:
    """Back to the My requests page (with its filter) the form was on; anywhere else: default."""
    target = request.POST.get("next", "")
    listing = reverse("my_requests")
    if (target == listing or target.startswith(listing + "?")) and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@require_GET
def my_requests(request: HttpRequest) -> HttpResponse:
    """Requests I made or that are for me, newest first, with their approval progress."""
    user = request.user
    chosen = request.GET.get("state", "all")
    if chosen not in STATE_FILTERS:
        chosen = "all"
    mine = my_requests_selector(user=user)
    counts = mine.order_by().aggregate(
        all=Count("pk"),
        **{
            key: Count("pk", filter=Q(state__in=states))
            for key, (_label, states) in STATE_FILTERS.items()
            if states is not None
        },
    )
    states = STATE_FILTERS[chosen][1]
    if states is not None:
        mine = mine.filter(state__in=states)
    mine = mine.select_related("reviewed_by").prefetch_related(
        Prefetch(
            "approvals",
            queryset=Approval.objects.only("pk", "request_id", "stage", "decision").order_by(
                "stage", "decided_at"
            ),
        )
    )
    page = Paginator(mine, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [(req, stage_progress(req, list(req.approvals.all()))) for req in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "page": page,
        "rows": rows,
        "chosen": chosen,
        "tabs": [
            {"key": key, "label": label, "count": counts[key]}
            for key, (label, _states) in STATE_FILTERS.items()
        ],
        "query": query.urlencode(),
        "here": request.get_full_path(),
        "help_url": reverse("docs:runbook", args=["requesting-access"]),
    }
    return render(request, "accessreq/requests/list.html", context)


# --- One request -----------------------------------------------------------------------------


@require_GET
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    """Everything about one request: who asked, why, who decided what, and the access it gave."""
    user = request.user
    assert isinstance(user, User)
    access_request = get_object_or_404(
        AccessRequest.objects.visible_to(user)
        .for_listing()
        .select_related("grant__revoked_by", "reviewed_by")
        .prefetch_related("entitlement__scopes"),
        pk=request_id,
    )
    approvals = list(
        access_request.approvals.select_related("approver", "on_behalf_of").order_by(
            "decided_at", "pk"
        )
    )
    assignments = list(access_request.assignments.select_related("principal"))
    progress = stage_progress(access_request, approvals)
    for stage in progress.stages:
        stage.asked = [a for a in assignments if a.stage == stage.position]
    pending = access_request.state == RequestState.PENDING
    is_party = user.pk in (access_request.requester_id, access_request.beneficiary_id)
    may_decide = pending and deciding_principal(access_request, user, at=now()) is not None
    context = {
        "req": access_request,
        "approvals": approvals,
        "decisions": [
            (
                a,
                None if a.mfa_age_seconds is None else timedelta(seconds=a.mfa_age_seconds),
            )
            for a in approvals
        ],
        "progress": progress,
        "reviewers": [a for a in assignments if a.stage == 0],
        "grant": access_request.grant,
        "denial": next((a for a in approvals if a.decision == Decision.DENY), None),
        "may_withdraw": pending and is_party,
        "may_ask_again": access_request.state
        in {RequestState.DENIED, RequestState.WITHDRAWN, RequestState.TIMED_OUT}
        and is_party
        and access_request.entitlement.is_active,
        "may_decide": may_decide,
        "decide_url": f"{reverse('approvals')}#request-{access_request.pk}",
        "help_url": reverse("docs:runbook", args=["requesting-access"]),
        "clock": now(),
    }
    return render(request, "accessreq/requests/detail.html", context)


@require_POST
def request_withdraw(request: HttpRequest, request_id: int) -> HttpResponse:
    """Take back a pending request; anyone but its requester or beneficiary gets a 404."""
    user = request.user
    assert isinstance(user, User)
    detail = reverse("request_detail", args=[request_id])
    try:
        access_request = withdraw_service(actor=user, request_id=request_id, http=request)
    except NotAllowed:
        raise Http404("No such request.") from None
    except WorkflowError as error:
        messages.error(request, str(error))
        return redirect(detail)
    messages.success(request, f"You withdrew your request for {access_request.entitlement}.")
    return redirect(_safe_next(request, detail))
