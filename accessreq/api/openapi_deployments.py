"""The deployment approval part of the OpenAPI document (merged in by
:func:`accessreq.api.openapi.document`)."""

from __future__ import annotations

from typing import Any

from accessreq.api import schema
from accessreq.api.openapi import _BAD, _RATE, _UNAUTHORIZED, _body, _error_response, _json

CREATE_ERRORS = {
    "invalid_commit": "commit_sha is not a full 40-character SHA.",
    "missing_check": "A check the environment requires is not in checks.",
    "check_failed": "A required check is not 'passed'.",
    "invalid_callback_url": "The callback URL is not https (or http to loopback).",
    "callback_host_not_allowed": "The callback host is not in DEPLOYMENT_CALLBACK_HOSTS.",
}
DENIED_CODES = {
    "scope_not_held": "The account holds no active grant of the scope there.",
    "token_scope": "The token was issued without this scope.",
}
CONFLICT_CODES = {
    "deployment_pending": (
        "An approval of this commit to this environment is already pending; deployment_id names it."
    ),
    "no_approvers": "The policy names nobody who could approve a stage.",
}
# Added to POST /authorize's 403 for deploys to environments that require deployment approval.
AUTHORIZE_CODES = {
    "deployment_approval_required": "No approved deployment of context.commit_sha.",
    "deployment_pending": "The deployment of this commit still waits for approval.",
    "deployment_denied": "The deployment of this commit was denied.",
    "deployment_expired": "The approval of this commit expired; open a new one.",
    "deployment_used": "The approval was already used by another token.",
}
_DEPLOYMENT_ID = {
    "name": "deployment_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


def schemas() -> dict[str, Any]:
    return {
        "DeploymentRequest": schema.DEPLOYMENT_REQUEST,
        "Deployment": schema.DEPLOYMENT,
        "DeploymentCreated": schema.DEPLOYMENT_CREATED,
        "DeploymentDetail": {
            "type": "object",
            "required": ["deployment"],
            "properties": {"deployment": {"$ref": "#/components/schemas/Deployment"}},
        },
    }


def paths() -> dict[str, Any]:
    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "/deployments": {
            "post": {
                "operationId": "deploymentCreate",
                "summary": "Ask approval to deploy a commit to an environment",
                "description": (
                    "The calling service account must hold the scope (action, default deploy) "
                    "on the system in the environment. The environment's required checks (its "
                    "setting; by default tests and scan for high and critical tiers) must be "
                    "'passed'. Approvers are named by the policy of the entitlement that grants "
                    "the scope; the account's owners never approve. Once approved, the approval "
                    "is valid for this commit until expires_at and is used by one token's "
                    "POST /authorize. Poll GET /deployments/{id}, or give callback_url to "
                    "receive the decision signed with the returned callback_secret."
                ),
                "security": bearer,
                "requestBody": _body("DeploymentRequest"),
                "responses": {
                    "201": _json("DeploymentCreated", "Opened; waiting for approval."),
                    "400": _error_response(
                        "Bad body, or checks missing or failed.",
                        {**schema_errors(), **CREATE_ERRORS},
                    ),
                    "401": _UNAUTHORIZED,
                    "403": _error_response("The account may not deploy there.", DENIED_CODES),
                    "409": _error_response(
                        "Already pending, or nobody to approve.", CONFLICT_CODES
                    ),
                    "415": _BAD,
                    "429": _RATE,
                },
            }
        },
        "/deployments/{deployment_id}": {
            "get": {
                "operationId": "deploymentDetail",
                "summary": "One of the calling account's deployments (poll until decided)",
                "security": bearer,
                "parameters": [_DEPLOYMENT_ID],
                "responses": {
                    "200": _json("DeploymentDetail", "The deployment and its state."),
                    "401": _UNAUTHORIZED,
                    "404": _error_response("Not a deployment of this account.", {"not_found": ""}),
                    "429": _RATE,
                },
            }
        },
    }


def schema_errors() -> dict[str, str]:
    return {k: v for k, v in _BAD["x-error-codes"].items() if k != "unsupported_media_type"}
