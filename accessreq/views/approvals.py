"""Approver pages: the inbox (decide, approve in bulk, review break-glass uses) and delegation."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    HttpResponseRedirect,
)
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accessreq import selectors
from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.forms import BreakGlassReviewForm, BulkApproveForm, DecideForm, DelegationForm
from accessreq.inbox import InboxRow, bulk_eligible, inbox_rows
from accessreq.models import LIVE_GRANT_STATES, AccessRequest, Delegation
from accessreq.services.common import MfaContext, now
from accessreq.services.delegation import delegation_cancel as cancel_delegation
from accessreq.services.delegation import delegation_create
from accessreq.services.requests import request_approve, request_deny
from accessreq.states import RequestState
from portal.auth import signed_in_user
from portal.models import User
from portal.services.mfa import mfa_fresh_until, mfa_is_fresh, mfa_verify

PER_PAGE = 25
# Break-glass uses shown for review at once; more is a backlog the security team must see anyway.
REVIEWS_SHOWN = 50


@dataclass
class RowForms:
    """An inbox row with its two forms, bound (with errors) for the row that just failed."""

    row: InboxRow
    approve: DecideForm
    deny: DecideForm
    show_code: bool

    @property
    def deny_open(self) -> bool:
        return self.deny.is_bound


def _inbox_url(page: int | None = None) -> str:
    url = reverse("approvals")
    return f"{url}?page={page}" if page and page > 1 else url


def _decide_form(pk: int, action: str, page: int) -> DecideForm:
    return DecideForm(auto_id=f"{action}-{pk}-%s", initial={"action": action, "page": page})


def render_inbox(
    request: HttpRequest,
    *,
    page_number: Any = None,
    failed: DecideForm | None = None,
    failed_id: int | None = None,
    force_code: bool = False,
    review_failed: BreakGlassReviewForm | None = None,
    status: int = 200,
) -> HttpResponse:
    """The inbox page; ``failed`` is the bound form of the row whose action was refused."""
    user = signed_in_user(request)
    at = now()
    waiting = selectors.inbox(user=user, at=at).select_related("grant")
    page = Paginator(waiting, PER_PAGE).get_page(page_number or request.GET.get("page"))
    fresh = mfa_is_fresh(request)
    rows = []
    shown_ids = set()
    for row in inbox_rows(page.object_list, user=user, at=at):
        pk = row.request.pk
        shown_ids.add(pk)
        approve = _decide_form(pk, "approve", page.number)
        deny = _decide_form(pk, "deny", page.number)
        is_failed = failed is not None and failed_id == pk
        if is_failed and failed is not None:
            if failed.data.get("action") == "deny":
                deny = failed
            else:
                approve = failed
        show_code = row.needs_step_up and not fresh or (is_failed and force_code)
        rows.append(RowForms(row=row, approve=approve, deny=deny, show_code=show_code))
    if failed is not None and failed_id not in shown_ids:
        # The row moved to another page: still say what went wrong.
        for errors in failed.errors.values():
            for error in errors:
                messages.error(request, str(error))

    reviews = list(selectors.break_glass_to_review(user=user, at=at)[: REVIEWS_SHOWN + 1])
    if review_failed is not None and failed_id not in {use.pk for use in reviews}:
        for errors in review_failed.errors.values():
            for error in errors:
                messages.error(request, str(error))
    review_forms = [
        (
            use,
            review_failed
            if review_failed is not None and failed_id == use.pk
            else BreakGlassReviewForm(auto_id=f"review-{use.pk}-%s"),
            use.review_overdue_at is not None
            or (use.review_due_at is not None and use.review_due_at <= at),
            use.grant is not None
            and use.grant.state in LIVE_GRANT_STATES
            and use.grant.expires_at > at,
        )
        for use in reviews[:REVIEWS_SHOWN]
    ]
    from accessreq.deployment_inbox import deployment_rows

    context = {
        "deployments": deployment_rows(user=user, fresh=fresh),
        "page": page,
        "rows": rows,
        "fresh": fresh,
        "fresh_until": mfa_fresh_until(request),
        "any_bulk": any(r.row.bulk_eligible and r.row.decidable for r in rows),
        "any_code": any(r.show_code for r in rows),
        "reviews": review_forms,
        "more_reviews": len(reviews) > REVIEWS_SHOWN,
        "delegating": Delegation.objects.in_force(at)
        .filter(delegator=user)
        .select_related("delegate")
        .first(),
        "now": at,
    }
    return render(request, "accessreq/approvals/inbox.html", context, status=status)


@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    """Requests waiting for me (or for someone I stand in for), oldest first, with context."""
    return render_inbox(request)


@require_POST
def decide(request: HttpRequest, request_id: int) -> HttpResponse:
    """Approve or deny one request; a step-up code typed inline is verified first."""
    user = signed_in_user(request)
    action = request.POST.get("action")
    if action not in ("approve", "deny"):
        return HttpResponseBadRequest("Choose approve or deny.", content_type="text/plain")
    form = DecideForm(request.POST, auto_id=f"{action}-{request_id}-%s")
    page = request.POST.get("page")
    waiting = selectors.inbox(user=user, at=now()).filter(pk=request_id).exists()
    if not form.is_valid():
        if not waiting:
            # Nothing to correct on a request that is not (or no longer) waiting for this person.
            if not AccessRequest.objects.visible_to(user).filter(pk=request_id).exists():
                raise Http404
            messages.error(request, "This request is no longer waiting for you.")
            return HttpResponseRedirect(_inbox_url(None))
        return render_inbox(
            request, page_number=page, failed=form, failed_id=request_id, status=400
        )
    data = form.cleaned_data
    if data["code"] and waiting:
        # The code only counts for a request that is really waiting for this person.
        result = mfa_verify(request=request, user=user, code=data["code"])
        if not result.ok:
            form.add_error("code", result.error)
            return render_inbox(
                request,
                page_number=page,
                failed=form,
                failed_id=request_id,
                force_code=True,
                status=429 if result.retry_after else 400,
            )
    try:
        if data["action"] == "approve":
            decided = request_approve(
                actor=user,
                request_id=request_id,
                comment=data["comment"],
                mfa=MfaContext.from_request(request),
                http=request,
            )
        else:
            decided = request_deny(
                actor=user,
                request_id=request_id,
                comment=data["comment"],
                mfa=MfaContext.from_request(request),
                http=request,
            )
    except NotAllowed:
        raise Http404 from None
    except StepUpRequired as exc:
        form.add_error("code", str(exc))
        return render_inbox(
            request,
            page_number=page,
            failed=form,
            failed_id=request_id,
            force_code=True,
            status=400,
        )
    except WorkflowError as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(_inbox_url(data["page"]))
    messages.success(request, _decided_message(decided, data["action"]))
    return HttpResponseRedirect(_inbox_url(data["page"]))


def _decided_message(access_request: AccessRequest, action: str) -> str:
    what = f"#{access_request.pk} ({access_request.entitlement} for {access_request.beneficiary})"
    if action == "deny":
        return f"Denied request {what}. The requester has been told why."
    if access_request.state == RequestState.PENDING:
        return (
            f"Your approval of request {what} is recorded; it still needs approval at "
            f"stage {access_request.current_stage} of {len(access_request.stages)}."
        )
    return f"Approved request {what}: access is granted."


@require_POST
def bulk_approve(request: HttpRequest) -> HttpResponse:
    """Approve several low or medium tier requests, each in its own call; riskier ones refused."""
    user = signed_in_user(request)
    form = BulkApproveForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("approvals")
    ids: list[int] = form.cleaned_data["requests"]
    comment: str = form.cleaned_data["comment"]
    waiting = {r.pk: r for r in selectors.inbox(user=user, at=now()).filter(pk__in=ids)}
    approved = 0
    refusals: list[str] = []
    for pk in ids:
        access_request = waiting.get(pk)
        if access_request is None:
            refusals.append(f"Request #{pk} is not waiting for you; nothing was done with it.")
            continue
        if not bulk_eligible(access_request):
            tier = access_request.entitlement.environment.get_risk_tier_display().lower()
            refusals.append(
                f"Request #{pk} ({access_request.entitlement}) is {tier} tier: approve it on its "
                "own, with a fresh authenticator code. It was not approved."
            )
            continue
        try:
            request_approve(
                actor=user,
                request_id=pk,
                comment=comment,
                mfa=MfaContext.from_request(request),
                http=request,
            )
        except WorkflowError as exc:
            refusals.append(f"Request #{pk} ({access_request.entitlement}): {exc}")
        else:
            approved += 1
    if approved:
        messages.success(request, f"Approved {approved} request{'s' if approved != 1 else ''}.")
    for refusal in refusals:
        messages.error(request, refusal)
    return HttpResponseRedirect(_inbox_url(form.cleaned_data["page"]))


# --- Delegation ------------------------------------------------------------------------------


def delegation_state(delegation: Delegation, at: datetime) -> str:
    if delegation.cancelled_at is not None:
        return "cancelled"
    if delegation.ends_at <= at:
        return "ended"
    if delegation.starts_at > at:
        return "upcoming"
    return "in_force"


@require_http_methods(["GET", "POST"])
def delegation(request: HttpRequest) -> HttpResponse:
    """My delegations (given and received) and a form to name a delegate for some days."""
    user = signed_in_user(request)
    at = now()
    form = DelegationForm(
        request.POST or None, user=user, initial={"starts_on": at.date(), "ends_on": at.date()}
    )
    if request.method == "POST" and form.is_valid():
        starts_at, ends_at = form.window()
        try:
            created = delegation_create(
                actor=user,
                delegate=form.cleaned_data["delegate"],
                starts_at=starts_at,
                ends_at=ends_at,
                reason=form.cleaned_data["reason"],
                http=request,
            )
        except NotAllowed:
            raise Http404 from None
        except WorkflowError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"{created.delegate} stands in for you from {created.starts_at:%Y-%m-%d} "
                f"until the end of {form.cleaned_data['ends_on']:%Y-%m-%d} (UTC).",
            )
            return redirect("delegation")
    given = [
        (d, delegation_state(d, at))
        for d in Delegation.objects.filter(delegator=user)
        .select_related("delegate")
        .order_by("-starts_at", "-pk")[:50]
    ]
    received = [
        (d, delegation_state(d, at))
        for d in Delegation.objects.filter(delegate=user)
        .select_related("delegator")
        .order_by("-starts_at", "-pk")[:50]
    ]
    context = {"form": form, "given": given, "received": received, "now": at}
    status = 400 if form.errors else 200
    return render(request, "accessreq/approvals/delegation.html", context, status=status)


@require_POST
def delegation_cancel(request: HttpRequest, delegation_id: int) -> HttpResponse:
    user: User = signed_in_user(request)
    try:
        cancelled = cancel_delegation(actor=user, delegation_id=delegation_id, http=request)
    except NotAllowed:
        raise Http404 from None
    except WorkflowError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Cancelled: {cancelled.delegate} no longer stands in for you.")
    return redirect("delegation")
