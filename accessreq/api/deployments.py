"""API endpoints for deployment approvals: a pipeline opens one and polls it. Another service
account's deployment is 404, like anything the caller may not read."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accessreq.api import schema
from accessreq.api.base import ApiError, api_token, endpoint, json_response, parse_body
from accessreq.models import DeploymentApproval
from accessreq.services.common import now
from accessreq.services.deployments import (
    DEPLOY_SCOPE,
    DeploymentRefused,
    deployment_as_data,
    deployment_request,
)


@endpoint(methods=("POST",))
def deployment_create(request: HttpRequest) -> HttpResponse:
    """Open an approval for deploying one commit to an environment, with the pipeline's checks."""
    body = parse_body(request, schema.DEPLOYMENT_REQUEST)
    try:
        opened = deployment_request(
            token=api_token(request),
            system=body["system"],
            environment=body["environment"],
            commit_sha=body["commit_sha"],
            scope=body.get("action", DEPLOY_SCOPE),
            checks=body.get("checks") or {},
            artifact_digest=body.get("artifact_digest", ""),
            links=body.get("links") or [],
            repository=body.get("repository", ""),
            ref=body.get("ref", ""),
            run_id=body.get("run_id", ""),
            stage=body.get("stage", ""),
            description=body.get("description", ""),
            callback_url=body.get("callback_url", ""),
            http=request,
        )
    except DeploymentRefused as refusal:
        raise ApiError(refusal.status, refusal.code, refusal.message, extra=refusal.extra) from None
    answer = {
        "deployment": deployment_as_data(opened.deployment, at=now()),
        "audit_event_id": opened.audit_event_id,
    }
    if opened.callback_secret:
        answer["callback_secret"] = opened.callback_secret
    return json_response(answer, status=201)


@endpoint(methods=("GET",))
def deployment_detail(request: HttpRequest, deployment_id: int) -> HttpResponse:
    """One of the calling account's deployments, with its state as of the database clock."""
    found = (
        DeploymentApproval.objects.of_account(api_token(request).service_account_id)
        .for_listing()
        .filter(pk=deployment_id)
        .first()
    )
    if found is None:
        raise ApiError(404, "not_found", "No such deployment.")
    return json_response({"deployment": deployment_as_data(found, at=now())})
