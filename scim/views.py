"""The SCIM 2.0 endpoints under ``/scim/v2/`` (RFC 7644): Users, Groups and the discovery
documents, for directories (Okta, Entra ID) with a SCIM token.

Each endpoint parses the request, loads through the SCIM-visible querysets and calls one service
in ``scim.services``. The ``scim_endpoint`` wrapper replaces ``request.user`` (a browser session
carries no authority here, so CSRF does not apply), authenticates the bearer token, applies the
per-token rate limit, and answers every error in the SCIM error schema as
``application/scim+json``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AnonymousUser
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from accessreq.errors import WorkflowError
from scim import services
from scim.changes import (
    group_changes_from_patch,
    group_changes_from_resource,
    user_changes_from_patch,
    user_changes_from_resource,
)
from scim.errors import ScimError, invalid_syntax, invalid_value, not_found
from scim.filters import GROUP_FILTERS, USER_FILTERS, filter_q
from scim.models import ScimToken
from scim.resources import (
    group_members,
    group_resource,
    list_response,
    pick_attributes,
    resource_types,
    schemas,
    scim_teams_for_listing,
    scim_users_for_listing,
    service_provider_config,
    user_resource,
)
from scim.tokens import token_for_secret, token_touch, token_use_refused

logger = logging.getLogger("gatehouse.scim")

CONTENT_TYPE = "application/scim+json"
_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)
_ACCEPTED_BODIES = {"application/scim+json", "application/json"}

View = Callable[..., HttpResponse]


def scim_response(
    body: dict[str, Any] | None, *, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    if body is None:
        response = HttpResponse(status=status)
    else:
        response = HttpResponse(
            json.dumps(body), status=status, content_type=f"{CONTENT_TYPE}; charset=utf-8"
        )
    # Answers describe people; no cache may keep them.
    response["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def _error_response(error: ScimError) -> HttpResponse:
    return scim_response(error.body(), status=error.status, headers=error.headers)


def _unauthorized(detail: str) -> ScimError:
    return ScimError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="gatehouse-scim"'})


def _authenticate(request: HttpRequest) -> ScimToken:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    match = _BEARER.match(header)
    if not match:
        raise _unauthorized("Send a SCIM token in 'Authorization: Bearer <token>'.")
    token = token_for_secret(match.group(1))
    if token is None:
        raise _unauthorized("This is not a valid SCIM token.")
    if token.revoked_at is not None:
        token_use_refused(token=token, http=request)
        raise _unauthorized("This SCIM token was revoked.")
    token_touch(token)
    return token


def _rate_limit(token: ScimToken) -> None:
    from accessreq.api.base import ApiError, rate_limit

    try:
        rate_limit(f"scim:{token.pk}", settings.SCIM_RATE_LIMIT_PER_MINUTE)
    except ApiError as error:
        raise ScimError(429, error.message, headers=error.headers) from None


def scim_endpoint(*methods: str) -> Callable[[View], View]:
    """Make ``view(request, token, ...)`` a SCIM endpoint answering ``methods``."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            request.user = AnonymousUser()
            try:
                token = _authenticate(request)
                if request.method not in methods:
                    raise ScimError(
                        405,
                        f"Use {' or '.join(methods)} here.",
                        headers={"Allow": ", ".join(methods)},
                    )
                _rate_limit(token)
                return view(request, token, *args, **kwargs)
            except ScimError as error:
                return _error_response(error)
            except WorkflowError as error:  # a lifecycle refusal, e.g. one's own manager
                return _error_response(ScimError(400, str(error), scim_type="invalidValue"))
            except Exception:
                logger.exception("SCIM error on %s %s", request.method, request.path)
                return _error_response(ScimError(500, "Something went wrong; it has been logged."))

        # Marked like the API's endpoints: it would take the short way through the middleware
        # if /scim/ were among portal.middleware.SHORT_WAY_PREFIXES; until then it goes through
        # the whole stack, where login_not_required and csrf_exempt let it pass.
        wrapper.api_endpoint = True  # type: ignore[attr-defined]
        return login_not_required(csrf_exempt(wrapper))

    return decorate


def _body(request: HttpRequest) -> Any:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ScimError(413, "The request body is too large.") from None
    if (request.content_type or "") not in _ACCEPTED_BODIES:
        raise ScimError(415, f"Send the body as {CONTENT_TYPE}.", scim_type="invalidSyntax")
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise invalid_syntax("The body is not valid JSON.") from None


def _if_match(request: HttpRequest) -> str | None:
    return request.headers.get("If-Match") or None


def _int_param(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise invalid_value(f"{name} must be a whole number.") from None


def _names(request: HttpRequest, name: str) -> list[str]:
    return [part for part in request.GET.get(name, "").split(",") if part.strip()]


def _shape(request: HttpRequest, resource: dict[str, Any]) -> dict[str, Any]:
    return pick_attributes(
        resource, _names(request, "attributes"), _names(request, "excludedAttributes")
    )


def _single(request: HttpRequest, resource: dict[str, Any], *, status: int = 200) -> HttpResponse:
    headers = {"ETag": resource["meta"]["version"]}
    if status == 201:
        headers["Location"] = resource["meta"]["location"]
    return scim_response(_shape(request, resource), status=status, headers=headers)


def _page(request: HttpRequest, queryset: Any, render: Callable[[Any], dict[str, Any]]) -> Any:
    """RFC 7644 §3.4.2.4: 1-based ``startIndex``, ``count`` cut to ``SCIM_MAX_RESULTS``."""
    start = max(1, _int_param(request, "startIndex", 1))
    count = min(
        max(0, _int_param(request, "count", settings.SCIM_MAX_RESULTS)), settings.SCIM_MAX_RESULTS
    )
    total = queryset.count()
    rows = list(queryset.order_by("pk")[start - 1 : start - 1 + count]) if count else []
    resources = [_shape(request, render(row)) for row in rows]
    return scim_response(list_response(resources, total=total, start_index=start))


# --- Users -------------------------------------------------------------------------------------


def _user(user_id: str) -> Any:
    user = scim_users_for_listing().filter(pk=int(user_id)).first() if user_id.isdigit() else None
    if user is None:
        raise not_found("User", user_id)
    return user


@scim_endpoint("GET", "POST")
def users(request: HttpRequest, token: ScimToken) -> HttpResponse:
    if request.method == "POST":
        changes = user_changes_from_resource(_body(request))
        created = services.scim_user_create(token=token, changes=changes, http=request)
        return _single(request, user_resource(_user(str(created.pk))), status=201)
    people = scim_users_for_listing()
    if request.GET.get("filter"):
        people = people.filter(filter_q(request.GET["filter"], USER_FILTERS)).distinct()
    return _page(request, people, user_resource)


@scim_endpoint("GET", "PUT", "PATCH", "DELETE")
def user(request: HttpRequest, token: ScimToken, user_id: str) -> HttpResponse:
    if request.method == "GET":
        return _single(request, user_resource(_user(user_id)))
    if request.method == "DELETE":
        services.scim_user_delete(
            token=token, user_id=user_id, http=request, if_match=_if_match(request)
        )
        return scim_response(None, status=204)
    _user(user_id)  # an unknown id is 404 before the body is judged
    body = _body(request)
    changes = (
        user_changes_from_resource(body)
        if request.method == "PUT"
        else user_changes_from_patch(body)
    )
    changed = services.scim_user_update(
        token=token, user_id=user_id, changes=changes, http=request, if_match=_if_match(request)
    )
    return _single(request, user_resource(_user(str(changed.pk))))


# --- Groups ------------------------------------------------------------------------------------


def _wants_members(request: HttpRequest) -> bool:
    excluded = {name.strip().lower() for name in _names(request, "excludedAttributes")}
    wanted = {name.strip().lower().split(".")[0] for name in _names(request, "attributes")}
    return "members" not in excluded and (not wanted or "members" in wanted)


def _group_resource(request: HttpRequest, team: Any) -> dict[str, Any]:
    members = group_members(team) if _wants_members(request) else None
    return group_resource(team, members=members)


def _team(request: HttpRequest, team_id: str) -> Any:
    teams = scim_teams_for_listing(with_members=_wants_members(request))
    team = teams.filter(pk=int(team_id)).first() if team_id.isdigit() else None
    if team is None:
        raise not_found("Group", team_id)
    return team


@scim_endpoint("GET", "POST")
def groups(request: HttpRequest, token: ScimToken) -> HttpResponse:
    if request.method == "POST":
        changes = group_changes_from_resource(_body(request))
        team = services.scim_group_create(token=token, changes=changes, http=request)
        return _single(request, _group_resource(request, _team(request, str(team.pk))), status=201)
    teams = scim_teams_for_listing(with_members=_wants_members(request))
    if request.GET.get("filter"):
        teams = teams.filter(filter_q(request.GET["filter"], GROUP_FILTERS)).distinct()
    return _page(request, teams, lambda team: _group_resource(request, team))


@scim_endpoint("GET", "PUT", "PATCH", "DELETE")
def group(request: HttpRequest, token: ScimToken, team_id: str) -> HttpResponse:
    if request.method == "GET":
        return _single(request, _group_resource(request, _team(request, team_id)))
    if request.method == "DELETE":
        services.scim_group_delete(
            token=token, team_id=team_id, http=request, if_match=_if_match(request)
        )
        return scim_response(None, status=204)
    _team(request, team_id)
    body = _body(request)
    changes = (
        group_changes_from_resource(body)
        if request.method == "PUT"
        else group_changes_from_patch(body)
    )
    team = services.scim_group_update(
        token=token, team_id=team_id, changes=changes, http=request, if_match=_if_match(request)
    )
    return _single(request, _group_resource(request, _team(request, str(team.pk))))


# --- Discovery ---------------------------------------------------------------------------------


@scim_endpoint("GET")
def config(request: HttpRequest, token: ScimToken) -> HttpResponse:
    return scim_response(service_provider_config())


@scim_endpoint("GET")
def resource_type_list(request: HttpRequest, token: ScimToken) -> HttpResponse:
    found = resource_types()
    return scim_response(list_response(found, total=len(found), start_index=1))


@scim_endpoint("GET")
def resource_type(request: HttpRequest, token: ScimToken, name: str) -> HttpResponse:
    for found in resource_types():
        if found["id"] == name:
            return scim_response(found)
    raise not_found("ResourceType", name)


@scim_endpoint("GET")
def schema_list(request: HttpRequest, token: ScimToken) -> HttpResponse:
    found = schemas()
    return scim_response(list_response(found, total=len(found), start_index=1))


@scim_endpoint("GET")
def schema(request: HttpRequest, token: ScimToken, urn: str) -> HttpResponse:
    for found in schemas():
        if found["id"] == urn:
            return scim_response(found)
    raise not_found("Schema", urn)


@scim_endpoint("GET", "POST", "PUT", "PATCH", "DELETE")
def unknown(request: HttpRequest, token: ScimToken, rest: str = "") -> HttpResponse:
    raise ScimError(404, f"There is no SCIM endpoint {request.path!r}.")
