"""Break-glass pages: an on-call person takes emergency access; an approver reviews the use."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accessreq import selectors
from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.forms import BreakGlassForm, BreakGlassReviewForm
from accessreq.models import AccessRequest, Entitlement, RequestKind
from accessreq.services import breakglass as services
from accessreq.services.common import MfaContext, now
from accessreq.views.approvals import render_inbox
from portal.auth import signed_in_user
from portal.roles import is_on_call
from portal.services.mfa import mfa_is_fresh, mfa_verify
from portal.templatetags.gatehouse import duration as human_duration

RECENT_USES = 10


@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest) -> HttpResponse:
    """Take emergency-capable access at once, with a reason, an incident and a fresh code."""
    user = signed_in_user(request)
    if not is_on_call(user):
        raise Http404
    entitlements = Entitlement.objects.visible_to(user).filter(emergency_capable=True).for_listing()
    # ?entitlement=<id> (the "Choose" links) preselects one and caps the presets to its limit;
    # a POST is checked against the chosen entitlement's own limit by the form instead.
    chosen = None
    wanted = request.GET.get("entitlement", "")
    if wanted.isdigit():
        chosen = next((e for e in entitlements if e.pk == int(wanted)), None)
    fresh = mfa_is_fresh(request)
    form = BreakGlassForm(
        request.POST or None,
        entitlements=entitlements,
        need_code=not fresh,
        cap=services.break_glass_limit(chosen) if chosen and request.method == "GET" else None,
        initial={"entitlement": chosen, "duration": 60},
    )
    step_up_refused = False
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            data = form.cleaned_data
            verified = True
            if data["code"]:
                result = mfa_verify(request=request, user=user, code=data["code"])
                if not result.ok:
                    verified = False
                    form.add_error("code", result.error)
                    status = 429 if result.retry_after else 400
            if verified:
                try:
                    taken = services.break_glass_take(
                        actor=user,
                        entitlement=data["entitlement"],
                        reason=data["reason"],
                        incident=data["incident"],
                        duration=form.taken_for(),
                        mfa=MfaContext.from_request(request),
                        http=request,
                    )
                except NotAllowed:
                    raise Http404 from None
                except StepUpRequired as exc:
                    form.add_error("code", str(exc))
                    step_up_refused = True
                except WorkflowError as exc:
                    form.add_error(None, str(exc))
                else:
                    until = (
                        f" until {taken.grant.expires_at:%Y-%m-%d %H:%M} UTC" if taken.grant else ""
                    )
                    messages.warning(
                        request,
                        f"Break-glass access taken: you hold {taken.entitlement}{until}. "
                        "Approvers and security admins have been notified; an approver will "
                        f"review this use within {settings.BREAK_GLASS_REVIEW_HOURS} hours.",
                    )
                    return redirect("request_detail", request_id=taken.pk)
    uses = list(
        AccessRequest.objects.filter(requester=user, kind=RequestKind.BREAK_GLASS)
        .for_listing()
        .select_related("grant", "reviewed_by")
        .order_by("-created_at", "-pk")[:RECENT_USES]
    )
    context = {
        "form": form,
        "entitlements": [(e, services.break_glass_limit(e)) for e in entitlements],
        "chosen": chosen,
        "chosen_limit": services.break_glass_limit(chosen) if chosen else None,
        # Asked again only while the session is not fresh (a code verified just now counts).
        "show_code": step_up_refused or not mfa_is_fresh(request),
        "uses": uses,
        "now": now(),
        "review_hours": settings.BREAK_GLASS_REVIEW_HOURS,
        "overall_limit": human_duration(timedelta(minutes=settings.BREAK_GLASS_MAX_MINUTES)),
    }
    return render(request, "accessreq/breakglass/break_glass.html", context, status=status)


@require_POST
def break_glass_review(request: HttpRequest, request_id: int) -> HttpResponse:
    """An approver's after-the-fact review of a break-glass use, optionally revoking it."""
    user = signed_in_user(request)
    form = BreakGlassReviewForm(request.POST, auto_id=f"review-{request_id}-%s")
    if not form.is_valid():
        waiting = (
            selectors.break_glass_to_review(user=user, at=now()).filter(pk=request_id).exists()
        )
        if not waiting:
            raise Http404
        return render_inbox(request, review_failed=form, failed_id=request_id, status=400)
    waiting = selectors.break_glass_to_review(user=user, at=now()).filter(pk=request_id).exists()
    if form.cleaned_data["code"] and waiting:
        # Reviewing an emergency use is an approval after the fact: it needs a fresh factor.
        result = mfa_verify(request=request, user=user, code=form.cleaned_data["code"])
        if not result.ok:
            form.add_error("code", result.error)
            return render_inbox(
                request,
                review_failed=form,
                failed_id=request_id,
                status=429 if result.retry_after else 400,
            )
    try:
        reviewed = services.break_glass_review(
            actor=user,
            request_id=request_id,
            comment=form.cleaned_data["comment"],
            revoke=form.cleaned_data["revoke"],
            mfa=MfaContext.from_request(request),
            http=request,
        )
    except NotAllowed:
        raise Http404 from None
    except StepUpRequired as exc:
        form.add_error("code", str(exc))
        return render_inbox(request, review_failed=form, failed_id=request_id, status=400)
    except WorkflowError as exc:
        messages.error(request, str(exc))
        return redirect("approvals")
    outcome = " and revoked the access" if form.cleaned_data["revoke"] else ""
    messages.success(
        request,
        f"You reviewed {reviewed.beneficiary}'s break-glass use of {reviewed.entitlement}"
        f"{outcome}.",
    )
    return redirect("approvals")
