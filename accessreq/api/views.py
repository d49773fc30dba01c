"""API endpoints for pipelines: token exchange, authorization checks and the caller's tokens.

Each endpoint parses its body against the published schema, loads objects scoped to the
calling service account (another account's objects are 404), and calls one service.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from accessreq.api import schema
from accessreq.api.base import (
    ApiError,
    api_token,
    client_address,
    endpoint,
    json_response,
    parse_body,
    rate_limit,
)
from accessreq.api.oidc import IdentityRefused
from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import ApiToken
from accessreq.services.pipelines import authorize_decide, token_exchange
from accessreq.services.tokens import token_revoke

TOKEN_LIST_LIMIT = 100


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def _account(token: ApiToken) -> dict[str, Any]:
    return {"id": token.service_account_id, "name": str(token.service_account)}


def _token(token: ApiToken) -> dict[str, Any]:
    return {
        "id": token.pk,
        "prefix": token.prefix,
        "kind": token.kind,
        "name": token.name,
        "state": token.state_at(timezone.now()),
        "created_at": _iso(token.created_at),
        "expires_at": _iso(token.expires_at),
        "last_used_at": _iso(token.last_used_at),
        "revoked_at": _iso(token.revoked_at),
        "scopes": schema.scope_objects(token.scopes),
    }


@endpoint(methods=("POST",), authenticated=False)
def token(request: HttpRequest) -> HttpResponse:
    """Exchange a CI job's OIDC ID token for a short-lived API token."""
    rate_limit(f"exchange:{client_address(request)}", settings.API_EXCHANGE_RATE_LIMIT_PER_MINUTE)
    body = parse_body(request, schema.TOKEN_EXCHANGE_REQUEST)
    try:
        issued = token_exchange(id_token=body["id_token"], http=request)
    except IdentityRefused as refusal:
        raise ApiError(refusal.status, refusal.code, refusal.message) from None
    except WorkflowError as error:
        raise ApiError(403, "account_inactive", str(error)) from None
    issued_token = issued.token
    lifetime = issued_token.expires_at - issued_token.created_at
    return json_response(
        {
            "access_token": issued.secret,
            "token_type": "Bearer",
            "expires_in": int(lifetime.total_seconds()),
            "expires_at": _iso(issued_token.expires_at),
            "token_id": issued_token.pk,
            "token_prefix": issued_token.prefix,
            "service_account": _account(issued_token),
            "scopes": schema.scope_objects(issued_token.scopes),
            "audit_event_id": issued.audit_event_id,
        },
        status=201,
    )


@endpoint(methods=("POST",))
def authorize(request: HttpRequest) -> HttpResponse:
    """May the calling pipeline do ``action`` on ``system`` in ``environment`` now?"""
    body = parse_body(request, schema.AUTHORIZE_REQUEST)
    current = api_token(request)
    decision = authorize_decide(
        token=current,
        action=body["action"],
        system=body["system"],
        environment=body["environment"],
        context=body.get("context") or {},
        http=request,
    )
    answer: dict[str, Any] = {
        "decision": "allow" if decision.allowed else "deny",
        "allowed": decision.allowed,
        "reasons": decision.reasons,
        "audit_event_id": decision.audit_event_id,
        "principal": _account(current),
    }
    if not decision.allowed:
        answer["error"] = dict(decision.reasons[0])
    response = json_response(answer, status=200 if decision.allowed else 403)
    # A deny is an answer, already in the ledger with its reasons; not a warning for the log.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


@endpoint(methods=("GET",))
def whoami(request: HttpRequest) -> HttpResponse:
    """The calling service account and the token it used."""
    current = api_token(request)
    return json_response({"service_account": _account(current), "token": _token(current)})


def _own_tokens(request: HttpRequest) -> Any:
    return ApiToken.objects.filter(service_account=api_token(request).service_account_id)


@endpoint(methods=("GET",))
def token_list(request: HttpRequest) -> HttpResponse:
    """The calling account's tokens, newest first (never their secrets)."""
    tokens = _own_tokens(request).select_related("service_account")[:TOKEN_LIST_LIMIT]
    return json_response({"tokens": [_token(t) for t in tokens]})


def _own_token(request: HttpRequest, token_id: int) -> ApiToken:
    found = _own_tokens(request).select_related("service_account").filter(pk=token_id).first()
    if found is None:
        raise ApiError(404, "not_found", "No such token.")
    return found


@endpoint(methods=("GET",))
def token_detail(request: HttpRequest, token_id: int) -> HttpResponse:
    """One of the calling account's tokens."""
    return json_response({"token": _token(_own_token(request, token_id))})


@endpoint(methods=("POST",))
def token_revoke_view(request: HttpRequest, token_id: int) -> HttpResponse:
    """Revoke one of the calling account's tokens, e.g. its own at the end of a job."""
    body = parse_body(request, schema.REVOKE_REQUEST, optional=True)
    found = _own_token(request, token_id)
    try:
        revoked = token_revoke(
            actor=api_token(request).service_account,
            token_id=found.pk,
            reason=body.get("reason", ""),
            http=request,
        )
    except NotAllowed:
        raise ApiError(404, "not_found", "No such token.") from None
    except WorkflowError as error:
        raise ApiError(409, "token_not_active", str(error)) from None
    return json_response({"token": _token(revoked)})


@endpoint(methods=("GET", "POST", "PUT", "PATCH", "DELETE"), authenticated=False)
def not_found(request: HttpRequest, rest: str = "") -> HttpResponse:
    raise ApiError(404, "not_found", "No such API endpoint; see /api/v1/docs.")
