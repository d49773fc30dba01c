"""Campaign pages: templates with their schedule and a launch button, campaigns with progress, one
campaign's dashboard (per reviewer, overdue and escalated items, decisions per day, cancel, close
early) and its evidence report in HTML, CSV and PDF, plain or signed.

Security admins act; auditors may look and download evidence; everyone else gets 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from accessreq.campaign_states import CampaignState
from accessreq.errors import NotAllowed, WorkflowError
from accessreq.evidence.dashboard import (
    attention_items,
    campaign_progress,
    campaigns_visible_to,
    decisions_by_day,
    reviewer_progress,
    templates_visible_to,
    with_progress,
)
from accessreq.evidence.export import FORMATS, evidence_export, evidence_view
from accessreq.evidence.report import campaign_scope
from accessreq.forms import CancelForm, CloseEarlyForm, LaunchForm
from accessreq.models import Campaign, CampaignTemplate, Entitlement
from accessreq.services import campaigns as service
from accessreq.services.common import now
from audit.export import ExportError
from portal.auth import signed_in_user
from portal.models import User
from portal.roles import can_read_audit, is_security_admin
from portal.services.mfa import mfa_is_fresh

PER_PAGE = 25
# Shown on the dashboard; the evidence report has every one.
REVIEWERS_SHOWN = 200
ATTENTION_SHOWN = 100


def _reader(request: HttpRequest) -> User:
    """Security admins and auditors; 404 for everyone else."""
    user = signed_in_user(request)
    if not can_read_audit(user):
        raise Http404
    return user


def _admin(request: HttpRequest) -> User:
    """Security admins only: auditors look but don't act (404, like any closed door)."""
    user = signed_in_user(request)
    if not is_security_admin(user):
        raise Http404
    return user


@dataclass(frozen=True)
class TemplateRow:
    template: CampaignTemplate
    next_launch: datetime | None
    period: str
    current_id: int | None


def _next_launch(template: CampaignTemplate, at: datetime) -> datetime | None:
    """When beat launches the template next (its crontab, as edited in the admin); None when
    paused."""
    task = template.periodic_task
    if not template.is_active or task is None or not task.enabled:
        return None
    if task.crontab is not None:
        due = at + task.crontab.schedule.remaining_estimate(at)
    elif task.interval is not None:
        due = (task.last_run_at or at) + task.interval.schedule.run_every
    else:
        return None
    # celery answers a few microseconds early: show the minute it means.
    return (due + timedelta(seconds=30)).replace(second=0, microsecond=0)


@require_GET
def campaign_list(request: HttpRequest) -> HttpResponse:
    """Templates (cadence, next launch, launch now) and campaigns with their progress."""
    user = _reader(request)
    at = now()
    templates = list(
        templates_visible_to(user)
        .select_related("periodic_task__crontab", "periodic_task__interval", "owner")
        .prefetch_related(
            "environments",
            "systems",
            Prefetch(
                "entitlements",
                queryset=Entitlement.objects.select_related("system", "environment"),
            ),
        )
    )
    periods = {t.pk: service.campaign_period(t.cadence, at) for t in templates}
    current = {
        (template_id, period): pk
        for template_id, period, pk in Campaign.objects.filter(
            template__in=templates, period__in=set(periods.values())
        ).values_list("template_id", "period", "pk")
    }
    rows = [
        TemplateRow(
            template=t,
            next_launch=_next_launch(t, at),
            period=periods[t.pk],
            current_id=current.get((t.pk, periods[t.pk])),
        )
        for t in templates
    ]
    campaigns = with_progress(campaigns_visible_to(user).for_listing()).order_by(
        "-created_at", "-pk"
    )
    page = Paginator(campaigns, PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "rows": rows,
        "page": page,
        "can_act": is_security_admin(user),
        "now": at,
    }
    return render(request, "accessreq/campaigns/list.html", context)


@require_POST
def campaign_launch(request: HttpRequest) -> HttpResponse:
    """Launch this period's campaign of a template now; a second click opens the one that exists."""
    user = _admin(request)
    form = LaunchForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("campaigns")
    template: CampaignTemplate = form.cleaned_data["template"]
    started = now()
    try:
        campaign = service.campaign_launch(template_id=template.pk, actor=user)
    except WorkflowError as exc:
        messages.error(request, str(exc))
        return redirect("campaigns")
    if campaign.created_at < started:
        messages.info(
            request,
            f"{campaign} was already launched on {campaign.created_at:%Y-%m-%d %H:%M} UTC, so "
            "nothing new was launched: a template runs one campaign per period. Here it is.",
        )
    else:
        items = campaign.items.count()
        messages.success(
            request,
            f"Launched {campaign}: {items} item{'s' if items != 1 else ''} to review by "
            f"{campaign.deadline:%Y-%m-%d %H:%M} UTC. Reviewers have been told.",
        )
    return redirect("campaign_detail", campaign.pk)


def _campaign(user: User, campaign_id: int) -> Campaign:
    return get_object_or_404(
        campaigns_visible_to(user).select_related("template__owner", "launched_by"), pk=campaign_id
    )


def _render_detail(
    request: HttpRequest,
    user: User,
    campaign: Campaign,
    *,
    cancel_form: CancelForm | None = None,
    close_form: CloseEarlyForm | None = None,
    status: int = 200,
) -> HttpResponse:
    at = now()
    reviewers = reviewer_progress(campaign, at=at)
    attention = attention_items(campaign, at=at)
    context = {
        "campaign": campaign,
        "scope": campaign_scope(campaign),
        "progress": campaign_progress(campaign, at=at),
        "reviewers": reviewers[:REVIEWERS_SHOWN],
        "reviewers_hidden": max(0, len(reviewers) - REVIEWERS_SHOWN),
        "chart": decisions_by_day(campaign, at=at),
        "attention": list(attention[:ATTENTION_SHOWN]),
        "attention_total": attention.count(),
        "can_act": is_security_admin(user),
        "can_close": campaign.state == CampaignState.OPEN,
        "can_cancel": campaign.state in (CampaignState.SCHEDULED, CampaignState.OPEN),
        "cancel_form": cancel_form or CancelForm(),
        "close_form": close_form or CloseEarlyForm(),
        "fresh": mfa_is_fresh(request),
        "overdue": campaign.state == CampaignState.OPEN and campaign.deadline <= at,
        "now": at,
    }
    return render(request, "accessreq/campaigns/detail.html", context, status=status)


@require_GET
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """One campaign: progress overall and per reviewer, what needs attention, decisions per day."""
    user = _reader(request)
    return _render_detail(request, user, _campaign(user, campaign_id))


@require_POST
def campaign_close(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Close an open campaign before its deadline; pending items get the deadline action."""
    user = _admin(request)
    campaign = _campaign(user, campaign_id)
    form = CloseEarlyForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, user, campaign, close_form=form, status=400)
    try:
        closed = service.campaign_close(
            campaign_id=campaign.pk, actor=user, early=True, http=request
        )
    except WorkflowError as exc:
        messages.error(request, str(exc))
        return redirect("campaign_detail", campaign.pk)
    campaign.refresh_from_db()
    if not closed:
        messages.error(
            request,
            f"This campaign is {campaign.get_state_display().lower()}: only an open campaign can "
            "be closed early. Nothing changed.",
        )
    else:
        expired = int(campaign.summary.get("expired", 0))
        messages.success(
            request,
            f"Closed {campaign} early. {expired} pending item{'s' if expired != 1 else ''} got "
            f"the deadline action: {campaign.template.get_deadline_action_display().lower()}.",
        )
    return redirect("campaign_detail", campaign.pk)


@require_POST
def campaign_cancel(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Cancel a campaign with a reason: pending items stay undecided and nothing is revoked."""
    user = _admin(request)
    campaign = _campaign(user, campaign_id)
    form = CancelForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, user, campaign, cancel_form=form, status=400)
    try:
        service.campaign_cancel(
            campaign_id=campaign.pk, actor=user, reason=form.cleaned_data["reason"], http=request
        )
    except WorkflowError as exc:
        messages.error(request, str(exc))
        return redirect("campaign_detail", campaign.pk)
    messages.success(request, f"Cancelled {campaign}. Nothing was revoked.")
    return redirect("campaign_detail", campaign.pk)


def _step_up(request: HttpRequest) -> HttpResponseRedirect:
    messages.info(request, "Confirm it's you before exporting campaign evidence.")
    query = urlencode({"next": request.get_full_path()})
    return HttpResponseRedirect(f"{reverse('mfa_verify')}?{query}")


@never_cache
@require_GET
def campaign_evidence(request: HttpRequest, campaign_id: int, fmt: str) -> Any:
    """The evidence report as a page (html) or a download (csv, pdf); ``?signed=1`` wraps it in
    a signed bundle. Each is an audit event and needs a fresh second factor."""
    user = _reader(request)
    if fmt not in FORMATS:
        raise Http404
    campaign = _campaign(user, campaign_id)
    if not mfa_is_fresh(request):
        return _step_up(request)
    signed = request.GET.get("signed") == "1"
    try:
        if fmt == "html" and not signed:
            report = evidence_view(campaign_id=campaign.pk, actor=user, http=request)
            context = {"report": report, "rows": report.rows(), "closed": report.deadline_rows()}
            return render(request, "accessreq/campaigns/evidence.html", context)
        result = evidence_export(
            campaign_id=campaign.pk, fmt=fmt, signed=signed, actor=user, http=request
        )
    except NotAllowed:
        raise Http404 from None
    except ExportError as exc:
        messages.error(request, f"The evidence could not be signed: {exc}")
        return redirect("campaign_detail", campaign.pk)
    return FileResponse(
        result.handle,
        as_attachment=True,
        filename=result.filename,
        content_type=result.content_type,
    )
