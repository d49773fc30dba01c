"""The provisioning task list: connector work a security admin must do or look at."""

from __future__ import annotations

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.forms import TaskConfirmForm
from accessreq.models import ConnectorKind, Operation, ProvisioningTask, TaskStatus
from accessreq.services.provisioning import provisioning_confirm, provisioning_retry
from portal.auth import signed_in_user
from portal.models import User
from portal.roles import is_security_admin

RECENT_CONFIRMED = 50


def _security_admin(request: HttpRequest) -> User:
    user = signed_in_user(request)
    if not is_security_admin(user):
        raise Http404("No such page.")
    return user


@require_GET
def task_list(request: HttpRequest) -> HttpResponse:
    """Work waiting for a person (manual tasks, failed deliveries), deliveries being retried,
    then what was confirmed most recently."""
    _security_admin(request)
    tasks = ProvisioningTask.objects.for_listing()
    needs_person = tasks.filter(
        Q(status=TaskStatus.PENDING, connector__kind=ConnectorKind.MANUAL)
        | Q(status=TaskStatus.FAILED)
    ).order_by("created_at", "pk")
    in_flight = (
        tasks.filter(status=TaskStatus.PENDING)
        .exclude(connector__kind=ConnectorKind.MANUAL)
        .order_by("created_at", "pk")
    )
    confirmed = tasks.filter(status=TaskStatus.CONFIRMED).order_by("-confirmed_at", "-pk")[
        :RECENT_CONFIRMED
    ]
    context = {
        "needs_person": list(needs_person),
        "in_flight": list(in_flight),
        "confirmed": list(confirmed),
        "recent_confirmed": RECENT_CONFIRMED,
    }
    return render(request, "accessreq/provisioning/task_list.html", context)


@require_POST
def task_confirm(request: HttpRequest, task_id: int) -> HttpResponse:
    """Mark a task done by hand: a manual task, or a failed delivery someone carried out."""
    user = _security_admin(request)
    form = TaskConfirmForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return redirect("provisioning")
    try:
        task = provisioning_confirm(
            actor=user, task_id=task_id, note=form.cleaned_data["note"], http=request
        )
    except NotAllowed:
        raise Http404("No such task.") from None
    except WorkflowError as error:
        messages.error(request, str(error))
        return redirect("provisioning")
    verb = "set up" if task.operation == Operation.PROVISION else "removed"
    messages.success(request, f"Marked done: access {verb} for grant #{task.grant_id}.")
    return redirect("provisioning")


@require_POST
def task_retry(request: HttpRequest, task_id: int) -> HttpResponse:
    """Send a failed webhook delivery again with a fresh set of attempts."""
    user = _security_admin(request)
    try:
        provisioning_retry(actor=user, task_id=task_id, http=request)
    except NotAllowed:
        raise Http404("No such task.") from None
    except WorkflowError as error:
        messages.error(request, str(error))
        return redirect("provisioning")
    messages.info(request, "Sent again. The result shows here as soon as the connector answers.")
    return redirect("provisioning")
