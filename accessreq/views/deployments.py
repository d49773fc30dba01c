"""Approvers decide deployment approvals from the inbox: approve (with an inline step-up code
for high and critical tiers) or deny with a comment the pipeline shows."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from accessreq.deployment_inbox import deployments_waiting
from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.forms import DecideForm
from accessreq.models import DeploymentApproval
from accessreq.services.common import MfaContext
from accessreq.services.deployments import deployment_approve, deployment_deny
from portal.auth import signed_in_user
from portal.services.mfa import mfa_verify


def _back(deployment_id: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("approvals") + f"#deployment-{deployment_id}")


@require_POST
def deployment_decide(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """Approve or deny one deployment waiting for the signed-in person (else 404)."""
    user = signed_in_user(request)
    if not deployments_waiting(user=user).filter(pk=deployment_id).exists():
        if DeploymentApproval.objects.filter(pk=deployment_id, decisions__approver=user).exists():
            messages.error(request, "You have already decided this deployment.")
            return _back(deployment_id)
        raise Http404
    form = DecideForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, str(error))
        return _back(deployment_id)
    data = form.cleaned_data
    if data["code"]:
        result = mfa_verify(request=request, user=user, code=data["code"])
        if not result.ok:
            messages.error(request, result.error)
            return _back(deployment_id)
    try:
        if data["action"] == "approve":
            decided = deployment_approve(
                actor=user,
                deployment_id=deployment_id,
                comment=data["comment"],
                mfa=MfaContext.from_request(request),
                http=request,
            )
        else:
            decided = deployment_deny(
                actor=user,
                deployment_id=deployment_id,
                comment=data["comment"],
                mfa=MfaContext.from_request(request),
                http=request,
            )
    except NotAllowed:
        raise Http404 from None
    except (StepUpRequired, WorkflowError) as exc:
        messages.error(request, str(exc))
        return _back(deployment_id)
    what = (
        f"deployment #{decided.pk} ({decided.system} {decided.short_sha} to {decided.environment})"
    )
    if data["action"] == "deny":
        messages.success(request, f"Denied {what}. The pipeline has been told why.")
    elif decided.state == "pending":
        messages.success(
            request,
            f"Your approval of {what} is recorded; it still needs stage "
            f"{decided.current_stage} of {len(decided.stages)}.",
        )
    else:
        messages.success(request, f"Approved {what}: the pipeline may deploy this commit.")
    return HttpResponseRedirect(reverse("approvals"))
