"""Holding access: my grants, grants on what I own, one grant, revoking and extending it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Case, F, OuterRef, Prefetch, Q, Subquery, When
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accessreq import selectors
from accessreq.errors import NotAllowed, WorkflowError
from accessreq.forms import ExtendForm, ManagedFilterForm, RevokeForm
from accessreq.models import (
    LIVE_GRANT_STATES,
    AccessRequest,
    ConnectorKind,
    Entitlement,
    Grant,
    GrantState,
    Operation,
    ProvisioningTask,
    RequestKind,
    RequestState,
    System,
    TaskStatus,
)
from accessreq.services.common import now
from accessreq.services.grants import grant_revoke as grant_revoke_service
from accessreq.services.requests import request_submit
from portal.auth import signed_in_user
from portal.models import User
from portal.roles import is_security_admin

RECENT_DAYS = 30
PAGE_SIZE = 25


@dataclass(frozen=True)
class Status:
    """How far a connector got with a grant: a short label for the badge, a detail line, and the
    badge tone (``.status--ok``, ``warn``, ``bad`` or ``muted``)."""

    tone: str
    label: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.label}, {self.detail}" if self.detail else self.label


def _clock_label(value: datetime, clock: datetime) -> str:
    value, clock = value.astimezone(UTC), clock.astimezone(UTC)
    if value.date() == clock.date():
        return f"{value:%H:%M} UTC"
    return f"{value:%Y-%m-%d %H:%M} UTC"


def _task(grant: Grant, operation: str) -> Any:
    # Tasks come prefetched with the rows (see _TASKS); at most one per grant and operation.
    for task in grant.provisioning_tasks.all():
        if task.operation == operation:
            return task
    return None


def setup_status(grant: Grant, clock: datetime) -> Status:
    """Whether the connector has set up a live grant: confirmed, waiting, or failed."""
    if grant.provisioned_at and _task(grant, Operation.PROVISION) is None:
        # No connector: nothing to set up elsewhere; Gatehouse's own check is the access.
        return Status("muted", "No connector", "checked by Gatehouse")
    if grant.provisioned_at:
        return Status("ok", "Set up", f"confirmed {_clock_label(grant.provisioned_at, clock)}")
    if grant.state == GrantState.SCHEDULED:
        return Status("muted", "Not started", "set up when it starts")
    task = _task(grant, Operation.PROVISION)
    if task is not None and task.status == TaskStatus.FAILED:
        return Status("bad", "Connector failed", "security team alerted")
    if task is not None and task.connector.kind == ConnectorKind.MANUAL:
        return Status("warn", "Waiting for connector", "a person sets it up")
    return Status("warn", "Waiting for connector")


def removal_status(grant: Grant, clock: datetime) -> Status:
    """Whether the connector has removed an ended grant: confirmed, waiting, or failed."""
    if grant.deprovisioned_at:
        if (
            _task(grant, Operation.PROVISION) is None
            and _task(grant, Operation.DEPROVISION) is None
        ):
            return Status("muted", "Nothing to remove", "no connector")
        return Status("ok", "Removed", f"confirmed {_clock_label(grant.deprovisioned_at, clock)}")
    if grant.state in LIVE_GRANT_STATES:
        # Past its end but not yet swept: access checks already refuse it.
        return Status("warn", "Ended", "removal starts within a minute")
    task = _task(grant, Operation.DEPROVISION)
    if task is not None and task.status == TaskStatus.FAILED:
        return Status("bad", "Removal failed", "security team alerted")
    return Status("warn", "Removal pending", "waiting for connector")


_TASKS = Prefetch(
    "provisioning_tasks",
    queryset=ProvisioningTask.objects.select_related("connector", "confirmed_by").order_by(
        "created_at", "pk"
    ),
)


@dataclass(frozen=True)
class GrantRow:
    grant: Grant
    status: Status
    remaining: timedelta | None = None
    pending_extension_id: int | None = None


def _pending_extension() -> Subquery:
    return Subquery(
        AccessRequest.objects.filter(
            grant=OuterRef("pk"), kind=RequestKind.EXTENSION, state=RequestState.PENDING
        ).values("pk")[:1]
    )


def _safe_next(request: HttpRequest, default: str) -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return default


def _manages_anything(user: User) -> bool:
    return (
        is_security_admin(user)
        or Entitlement.objects.filter(owners=user).exists()
        or System.objects.filter(owners=user).exists()
    )


@require_GET
def my_access(request: HttpRequest) -> HttpResponse:
    """The grants I hold now and those that ended in the last 30 days."""
    user = signed_in_user(request)
    clock = now()
    mine = selectors.my_grants(user=user).prefetch_related(_TASKS)
    active = [
        GrantRow(
            g,
            setup_status(g, clock),
            g.expires_at - clock,
            getattr(g, "pending_extension_id", None),
        )
        for g in mine.filter(state__in=LIVE_GRANT_STATES, expires_at__gt=clock)
        .annotate(pending_extension_id=_pending_extension())
        .order_by("expires_at", "pk")
    ]
    since = clock - timedelta(days=RECENT_DAYS)
    # Access ended when it was revoked or, if not, at its end time (whenever the job caught up).
    ended_qs = (
        mine.filter(Q(state=GrantState.REVOKED) | Q(expires_at__lte=clock))
        .annotate(
            ended=Case(
                When(state=GrantState.REVOKED, then=F("revoked_at")), default=F("expires_at")
            )
        )
        .filter(ended__gte=since)
        .order_by("-ended", "-pk")
    )
    page = Paginator(ended_qs, PAGE_SIZE).get_page(request.GET.get("page"))
    ended = [GrantRow(g, removal_status(g, clock)) for g in page.object_list]
    context = {
        "active": active,
        "ended": ended,
        "page": page,
        "recent_days": RECENT_DAYS,
        "manages": _manages_anything(user),
        "revoke_form": RevokeForm(),
        "here": request.get_full_path(),
    }
    return render(request, "accessreq/access/my_access.html", context)


@require_GET
def managed_access(request: HttpRequest) -> HttpResponse:
    """Live grants on what I own (everything, for security admins), each with a revoke form."""
    user = signed_in_user(request)
    if not _manages_anything(user):
        raise Http404("You don't own any entitlement or system.")
    clock = now()
    form = ManagedFilterForm(request.GET or None)
    text = form.cleaned_data["q"] if form.is_valid() else ""
    grants = selectors.managed_grants(user=user, at=clock, text=text).prefetch_related(_TASKS)
    page = Paginator(grants, PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [GrantRow(g, setup_status(g, clock), g.expires_at - clock) for g in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "rows": rows,
        "page": page,
        "filtered": bool(text),
        "query": query.urlencode(),
        "everything": is_security_admin(user),
        "here": request.get_full_path(),
    }
    return render(
        request,
        "accessreq/access/managed_access.html",
        context,
        status=400 if form.errors else 200,
    )


@require_GET
def grant_detail(request: HttpRequest, grant_id: int) -> HttpResponse:
    """One grant: its window, who ended it and why, its requests and its provisioning tasks."""
    user = signed_in_user(request)
    grant = get_object_or_404(
        Grant.objects.visible_to(user).for_listing().prefetch_related(_TASKS), pk=grant_id
    )
    clock = now()
    live = grant.state in LIVE_GRANT_STATES and grant.expires_at > clock
    requests = (
        AccessRequest.objects.filter(Q(pk=grant.request_id) | Q(grant=grant))
        .select_related("requester", "beneficiary")
        .order_by("created_at", "pk")
    )
    revocable = live and Grant.objects.revocable_by(user).filter(pk=grant.pk).exists()
    own = grant.beneficiary_id == user.pk
    pending = None
    if live and own:
        pending = AccessRequest.objects.filter(
            beneficiary=user, entitlement=grant.entitlement, state=RequestState.PENDING
        ).first()
    context = {
        "grant": grant,
        "live": live,
        "in_effect": live and grant.starts_at <= clock,
        "remaining": grant.expires_at - clock if live else None,
        "status": setup_status(grant, clock) if live else removal_status(grant, clock),
        "requests": requests,
        "tasks": grant.provisioning_tasks.all(),
        "revoke_form": RevokeForm() if revocable else None,
        "own": own,
        "pending": pending,
        "manages": not own and _manages_anything(user),
        # Connector errors can name internal hosts: only the people who fix them see them.
        "show_errors": is_security_admin(user),
    }
    return render(request, "accessreq/access/grant_detail.html", context)


@require_POST
def grant_revoke(request: HttpRequest, grant_id: int) -> HttpResponse:
    """End a grant now with a reason: an owner or security admin revoking, or the holder giving
    it up. The connector is told; removal counts as confirmed only when it confirms."""
    user = signed_in_user(request)
    grant = get_object_or_404(Grant.objects.revocable_by(user), pk=grant_id)
    back = _safe_next(request, reverse("grant_detail", args=[grant.pk]))
    form = RevokeForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return HttpResponseRedirect(back)
    try:
        grant = grant_revoke_service(
            actor=user, grant_id=grant.pk, reason=form.cleaned_data["reason"], http=request
        )
    except NotAllowed:
        raise Http404("No such grant.") from None
    except WorkflowError as error:
        messages.error(request, str(error))
        return HttpResponseRedirect(back)
    if grant.beneficiary_id == user.pk:
        messages.success(request, f"You gave up your access to {grant.entitlement}.")
    else:
        messages.success(
            request, f"Revoked {grant.beneficiary}'s access to {grant.entitlement}. They are told."
        )
    return HttpResponseRedirect(back)


@require_http_methods(["GET", "POST"])
def grant_extend(request: HttpRequest, grant_id: int) -> HttpResponse:
    """The one-click extension from the expiry warning: a new request for the same access, which
    goes through approval again and, once approved, moves the grant's end time."""
    user = signed_in_user(request)
    # The holder, or an owner of the service account that holds it.
    grant = get_object_or_404(
        Grant.objects.filter(Q(beneficiary=user) | Q(beneficiary__owners=user))
        .distinct()
        .for_listing()
        .select_related("request"),
        pk=grant_id,
    )
    entitlement = grant.entitlement
    clock = now()
    live = grant.state in LIVE_GRANT_STATES and grant.expires_at > clock
    pending = (
        AccessRequest.objects.filter(
            beneficiary=grant.beneficiary, entitlement=entitlement, state=RequestState.PENDING
        )
        .order_by("-created_at")
        .first()
    )
    origin = grant.request

    def extend_form(*args: Any, **kwargs: Any) -> ExtendForm:
        return ExtendForm(
            *args,
            longest=entitlement.longest_grant,
            previous=origin.duration,
            ticket_required=entitlement.ticket_required,
            **kwargs,
        )

    if request.method == "POST" and pending is None:
        form = extend_form(request.POST)
        if form.is_valid():
            try:
                created = request_submit(
                    actor=user,
                    beneficiary=grant.beneficiary,
                    entitlement=entitlement,
                    justification=form.cleaned_data["justification"],
                    duration=form.cleaned_data["duration"],
                    ticket=form.cleaned_data.get("ticket", ""),
                    http=request,
                )
            except WorkflowError as error:
                form.add_error(None, str(error))
            else:
                if created.kind == RequestKind.EXTENSION:
                    messages.success(request, "Extension requested. It needs approval again.")
                else:
                    messages.success(request, "Your access had ended, so this is a new request.")
                return redirect("request_detail", request_id=created.pk)
    else:
        original = origin.justification
        if original.startswith("Extension: "):
            original = original.removeprefix("Extension: ")
        form = extend_form(
            initial={"justification": f"Extension: {original}", "ticket": origin.ticket}
        )
    context = {
        "grant": grant,
        "live": live,
        "remaining": grant.expires_at - clock if live else None,
        "pending": pending,
        "form": form,
        "longest": entitlement.longest_grant,
    }
    status = 400 if request.method == "POST" and pending is None else 200
    if request.method == "POST" and pending is not None:
        status = 409
    return render(request, "accessreq/access/grant_extend.html", context, status=status)
