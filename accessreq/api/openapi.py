"""The OpenAPI 3.1 document of /api/v1/, built from the schemas the endpoints validate with,
and the public views that serve it as JSON and as a browsable page (no CDN, no JavaScript)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from accessreq.api import schema
from accessreq.api.base import endpoint, json_response

AUTH_ERRORS = {
    "authentication_required": "No Authorization: Bearer header.",
    "invalid_token": "Not a Gatehouse token, or an unknown one.",
    "token_expired": "The token's lifetime is over.",
    "token_revoked": "The token was revoked.",
    "account_inactive": "The token's service account is deactivated.",
}
COMMON_ERRORS = {
    "invalid_json": "The body is not JSON.",
    "invalid_request": "A field is missing or malformed; the message names it.",
    "unsupported_media_type": "The body is not application/json.",
    "rate_limited": "Too many requests this minute; see Retry-After.",
}
EXCHANGE_ERRORS = {
    "malformed_token": "The ID token is not a well-formed, verifiable JWT.",
    "unsigned_token": "alg none.",
    "alg_not_allowed": "Not RS256/ES256 (HS256 included), or the key does not fit the alg.",
    "untrusted_issuer": "iss is not an active trusted issuer.",
    "unknown_kid": "The issuer publishes no key with this kid (after a refresh).",
    "jwks_unavailable": "The issuer's keys could not be fetched (503).",
    "invalid_signature": "The signature does not verify (e.g. a tampered payload).",
    "wrong_audience": "aud is not the issuer's configured audience.",
    "token_expired": "exp has passed.",
    "token_not_yet_valid": "nbf or iat is in the future.",
    "missing_claim": "A required claim (iss, aud, exp, iat, sub, repository, ref) is missing.",
    "no_trust_rule": "No trust rule maps these claims to a service account (403).",
    "ambiguous_trust_rule": "Rules map the claims to two accounts (403).",
    "account_inactive": "The mapped service account is deactivated (403).",
}


def _error_response(description: str, codes: dict[str, str]) -> dict[str, Any]:
    return {
        "description": description,
        "x-error-codes": codes,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _json(ref: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


def _body(ref: str, required: bool = True) -> dict[str, Any]:
    return {
        "required": required,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_UNAUTHORIZED = _error_response("Missing, unknown, expired or revoked token.", AUTH_ERRORS)
_RATE = _error_response("Rate limit reached.", {"rate_limited": COMMON_ERRORS["rate_limited"]})
_BAD = _error_response("Bad request body.", COMMON_ERRORS)
_TOKEN_ID = {
    "name": "token_id",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}


@cache
def document() -> dict[str, Any]:
    """The OpenAPI document (built once per process)."""
    from accessreq.api import openapi_deployments as deployments

    bearer: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gatehouse pipeline API",
            "version": "1",
            "description": (
                "For CI pipelines acting as Gatehouse service accounts. Exchange the job's OIDC "
                "ID token for a short-lived bearer token at POST /token, then ask POST "
                "/authorize before each sensitive step. Every decision is written to the audit "
                "ledger; the answer carries the event's sequence number. Errors are "
                '{"error": {"code": ..., "message": ...}} with a stable code.'
            ),
        },
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token (gtx_... exchanged, gtm_... minted by an owner).",
                }
            },
            "schemas": {
                "Error": schema.ERROR,
                "TokenExchangeRequest": schema.TOKEN_EXCHANGE_REQUEST,
                "TokenExchangeResponse": schema.TOKEN_EXCHANGE_RESPONSE,
                "AuthorizeRequest": schema.AUTHORIZE_REQUEST,
                "AuthorizeResponse": schema.AUTHORIZE_RESPONSE,
                "Token": schema.TOKEN,
                "TokenList": schema.TOKEN_LIST,
                "TokenDetail": {
                    "type": "object",
                    "required": ["token"],
                    "properties": {"token": {"$ref": "#/components/schemas/Token"}},
                },
                "WhoAmI": schema.WHOAMI,
                "RevokeRequest": schema.REVOKE_REQUEST,
                **deployments.schemas(),
            },
        },
        "paths": {
            "/token": {
                "post": {
                    "operationId": "tokenExchange",
                    "summary": "Exchange a CI identity token for an API token",
                    "description": (
                        "GitHub Actions and GitLab CI ID tokens from a trusted issuer, signed "
                        "RS256 or ES256, with this issuer's audience. Trust rules map repository, "
                        f"ref, environment and workflow to a service account. The token lives "
                        f"{settings.API_EXCHANGED_TOKEN_MINUTES} minutes and covers what the "
                        "account holds at this moment. Limited per client address."
                    ),
                    "security": [],
                    "requestBody": _body("TokenExchangeRequest"),
                    "responses": {
                        "201": _json("TokenExchangeResponse", "Token issued (shown once)."),
                        "400": _BAD,
                        "401": _error_response("The ID token was refused.", EXCHANGE_ERRORS),
                        "403": _error_response(
                            "The identity maps to no usable service account.",
                            {
                                k: EXCHANGE_ERRORS[k]
                                for k in (
                                    "no_trust_rule",
                                    "ambiguous_trust_rule",
                                    "account_inactive",
                                )
                            },
                        ),
                        "415": _BAD,
                        "429": _RATE,
                        "503": _error_response(
                            "The issuer's keys are unavailable.",
                            {"jwks_unavailable": EXCHANGE_ERRORS["jwks_unavailable"]},
                        ),
                    },
                }
            },
            "/authorize": {
                "post": {
                    "operationId": "authorize",
                    "summary": "May this pipeline do this now?",
                    "description": (
                        "Allowed when the token covers the scope and the service account holds "
                        "an active grant of it by the database clock. The pipeline context is "
                        "recorded with the decision."
                    ),
                    "security": bearer,
                    "requestBody": _body("AuthorizeRequest"),
                    "responses": {
                        "200": _json("AuthorizeResponse", "Allowed."),
                        "400": _BAD,
                        "401": _UNAUTHORIZED,
                        "403": {
                            **_json("AuthorizeResponse", "Denied, with reasons."),
                            "x-error-codes": {
                                "scope_not_held": "The account holds no active grant of it.",
                                "token_scope": "The token was issued without this scope.",
                                **deployments.AUTHORIZE_CODES,
                            },
                        },
                        "415": _BAD,
                        "429": _RATE,
                        "503": _error_response(
                            "The decision could not be recorded in the ledger in time, so none "
                            "is given; retry.",
                            {"ledger_unavailable": "The audit ledger did not confirm the event."},
                        ),
                    },
                }
            },
            "/me": {
                "get": {
                    "operationId": "whoami",
                    "summary": "The calling service account and its token",
                    "security": bearer,
                    "responses": {
                        "200": _json("WhoAmI", "The caller."),
                        "401": _UNAUTHORIZED,
                        "429": _RATE,
                    },
                }
            },
            "/tokens": {
                "get": {
                    "operationId": "tokenList",
                    "summary": "The calling account's tokens (no secrets)",
                    "security": bearer,
                    "responses": {
                        "200": _json("TokenList", "Newest first, at most 100."),
                        "401": _UNAUTHORIZED,
                        "429": _RATE,
                    },
                }
            },
            "/tokens/{token_id}": {
                "get": {
                    "operationId": "tokenDetail",
                    "summary": "One of the calling account's tokens",
                    "security": bearer,
                    "parameters": [_TOKEN_ID],
                    "responses": {
                        "200": _json("TokenDetail", "The token."),
                        "401": _UNAUTHORIZED,
                        "404": _error_response("Not a token of this account.", {"not_found": ""}),
                        "429": _RATE,
                    },
                }
            },
            "/tokens/{token_id}/revoke": {
                "post": {
                    "operationId": "tokenRevoke",
                    "summary": "Revoke one of the calling account's tokens",
                    "security": bearer,
                    "parameters": [_TOKEN_ID],
                    "requestBody": _body("RevokeRequest", required=False),
                    "responses": {
                        "200": _json("TokenDetail", "Revoked."),
                        "400": _BAD,
                        "401": _UNAUTHORIZED,
                        "404": _error_response("Not a token of this account.", {"not_found": ""}),
                        "409": _error_response(
                            "Already revoked or expired.", {"token_not_active": ""}
                        ),
                        "415": _BAD,
                        "429": _RATE,
                    },
                }
            },
            **deployments.paths(),
        },
    }


@endpoint(methods=("GET",), authenticated=False)
def openapi_json(request: HttpRequest) -> HttpResponse:
    """The schema, public: it describes the interface and holds no data."""
    response = json_response(document())
    response["Cache-Control"] = "public, max-age=300"
    return response


def _operations() -> list[dict[str, Any]]:
    doc = document()
    result = []
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            body_ref = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("$ref", "")
            )
            body = (
                doc["components"]["schemas"].get(body_ref.rsplit("/", 1)[-1]) if body_ref else None
            )
            fields = []
            for name, spec in (body or {}).get("properties", {}).items():
                fields.append(
                    {
                        "name": name,
                        "type": spec.get("type", ""),
                        "required": name in (body or {}).get("required", []),
                        "description": spec.get("description", ""),
                        "sub": [
                            {"name": n, "type": s.get("type", "")}
                            for n, s in spec.get("properties", {}).items()
                        ],
                    }
                )
            responses = [
                {
                    "status": status,
                    "description": answer["description"],
                    "codes": sorted(answer.get("x-error-codes", {}).items()),
                }
                for status, answer in operation["responses"].items()
            ]
            result.append(
                {
                    "method": method.upper(),
                    "path": f"/api/v1{path}",
                    "anchor": operation["operationId"],
                    "summary": operation["summary"],
                    "description": operation.get("description", ""),
                    "authenticated": bool(operation.get("security", True)),
                    "fields": fields,
                    "example": _example(body),
                    "responses": responses,
                }
            )
    return result


def _example(body: dict[str, Any] | None) -> str:
    if not body:
        return ""
    examples = {
        "id_token": "$ACTIONS_ID_TOKEN",
        "action": "deploy",
        "system": "payments-service",
        "environment": "prod",
        "context": {
            "commit_sha": "4f2a9c1e0b7d",
            "run_id": "812345",
            "stage": "deploy-prod",
            "repository": "acme/payments-service",
        },
        "reason": "job finished",
        "commit_sha": "4f2a9c1e0b7d5a3c2e1f0a9b8c7d6e5f4a3b2c1d",
        "checks": {"tests": "passed", "scan": "passed"},
        "artifact_digest": "sha256:" + "ab" * 32,
        "run_id": "812345",
        "stage": "deploy-prod",
        "repository": "acme/payments-service",
    }
    return json.dumps(
        {k: examples[k] for k in body.get("properties", {}) if k in examples}, indent=2
    )


@endpoint(methods=("GET",), authenticated=False, page=True)
def docs_page(request: HttpRequest) -> HttpResponse:
    """The browsable reference, drawn on the server from the same document."""
    context = {
        "info": document()["info"],
        "operations": _operations(),
        "exchanged_minutes": settings.API_EXCHANGED_TOKEN_MINUTES,
        "rate_limit": settings.API_RATE_LIMIT_PER_MINUTE,
        "site_url": settings.SITE_URL.rstrip("/"),
    }
    response = render(request, "accessreq/api/docs.html", context)
    response["Cache-Control"] = "public, max-age=300"
    return response
