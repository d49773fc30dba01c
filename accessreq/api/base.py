"""The API's frame: JSON in and out, bearer tokens only, JSON errors, per-token rate limits.

Every endpoint is wrapped by :func:`endpoint`. The wrapper replaces ``request.user`` before the
view runs, so a browser session (verified or not) never acts on the API: the principal is the
service account of the bearer token, or nobody. Endpoints are CSRF-exempt because a session
cookie carries no authority here.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import RequestDataTooBig
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from accessreq.api.schema import SchemaError, validate
from accessreq.models import ApiToken
from audit.group import LedgerUnavailable
from portal import sql
from portal.models import User

logger = logging.getLogger("gatehouse.api")

_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)
_SECRET = re.compile(r"^gt[xm]_[A-Za-z0-9_-]{43}$")


class ApiError(Exception):
    """A refusal answered as ``{"error": {"code": ..., "message": ...}}`` with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}

    def response(self) -> JsonResponse:
        body = {"error": {"code": self.code, "message": self.message}, **self.extra}
        response = json_response(body, status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def json_response(body: dict[str, Any], *, status: int = 200) -> JsonResponse:
    response = JsonResponse(body, status=status)
    # Answers carry secrets (a new token) or decisions; no cache may keep them.
    response["Cache-Control"] = "no-store"
    return response


def _unauthorized(code: str, message: str) -> ApiError:
    challenge = 'Bearer realm="gatehouse"'
    if code != "authentication_required":
        challenge += ', error="invalid_token"'
    return ApiError(401, code, message, headers={"WWW-Authenticate": challenge})


def rate_limit(key: str, limit: int) -> None:
    """Count one request for ``key`` in the current minute; refuse past ``limit`` (429)."""
    window = int(time.time() // 60)
    count = _count(f"gatehouse-api-rate:{key}:{window}", timeout=120)
    if count > limit:
        retry = 60 - int(time.time()) % 60
        raise ApiError(
            429,
            "rate_limited",
            f"More than {limit} requests a minute; try again in {retry} s.",
            headers={"Retry-After": str(retry)},
        )


_redis_writers: dict[tuple[str, ...], Any] = {}


def _redis_writer(backend: RedisCache) -> Any:
    """One redis-py client per Redis location, shared by the threads (each has its own cache
    backend object, and Django builds a new client with ~200 reply callbacks for every call).
    redis-py clients are thread-safe, and their pool reconnects after a fork."""
    servers = tuple(backend._servers)  # type: ignore[attr-defined]
    client = _redis_writers.get(servers)
    if client is None:
        client = _redis_writers[servers] = backend._cache.get_client(write=True)  # type: ignore[attr-defined]
    return client


def _count(cache_key: str, *, timeout: int) -> int:
    """Add one to the counter ``cache_key`` (created with ``timeout``) and return it. On Redis
    one round trip (INCR, then EXPIRE): this runs on every API call."""
    backend = caches["default"]
    if isinstance(backend, RedisCache):
        key = backend.make_and_validate_key(cache_key)
        with _redis_writer(backend).pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, timeout)
            count, _ = pipe.execute()
        return int(count)
    if cache.add(cache_key, 1, timeout=timeout):
        return 1
    try:
        return int(cache.incr(cache_key))
    except ValueError:  # expired between add and incr
        cache.add(cache_key, 1, timeout=timeout)
        return 1


def client_address(request: HttpRequest) -> str:
    return str(request.META.get("REMOTE_ADDR", "") or "unknown")


def authenticate(request: HttpRequest) -> ApiToken:
    """The usable token in ``Authorization: Bearer ...``, or a 401 naming why not. Expiry is
    judged by the database clock, like grants."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header:
        raise _unauthorized(
            "authentication_required", "Send an API token in 'Authorization: Bearer <token>'."
        )
    match = _BEARER.match(header)
    if not match or not _SECRET.match(match.group(1)):
        raise _unauthorized("invalid_token", "The bearer token is not a Gatehouse API token.")
    from accessreq.services.tokens import token_digest, token_touch

    found = _token_by_digest(token_digest(match.group(1)))
    if found is None:
        raise _unauthorized("invalid_token", "This API token is unknown.")
    token, expired = found
    if token.revoked_at is not None:
        _refused(request, token, "token_revoked")
        raise _unauthorized("token_revoked", "This API token was revoked.")
    if expired:
        _refused(request, token, "token_expired")
        raise _unauthorized("token_expired", "This API token has expired; get a new one.")
    if not token.service_account.is_active:
        _refused(request, token, "account_inactive")
        raise _unauthorized("account_inactive", "This token's service account is deactivated.")
    token_touch(token)
    return token


@functools.cache
def _token_sql(vendor: str) -> str:
    # Column lists from the models and the clock expression: no input reaches the text.
    return (
        f"SELECT {sql.columns(ApiToken, 't')}, {sql.columns(User, 'u')}, "  # noqa: S608
        f"t.expires_at <= {sql.NOW[vendor]} FROM accessreq_apitoken t "
        "JOIN portal_user u ON u.id = t.service_account_id WHERE t.digest = %s"
    )


def _token_by_digest(digest: str) -> tuple[ApiToken, bool] | None:
    """The token with ``digest`` (its service account loaded) and whether it has expired by the
    database clock: one prepared statement, as this runs on every API call."""
    row = sql.fetch_one(_token_sql(connection.vendor), [digest])
    if row is None:
        return None
    split = sql.width(ApiToken)
    token = sql.load(ApiToken, row[:split])
    token.service_account = sql.load(User, row[split:-1])
    return token, bool(row[-1])


def _refused(request: HttpRequest, token: ApiToken, code: str) -> None:
    """Audit the use of a known but dead token, at most once a minute per token and reason: a
    leaked token being replayed is worth knowing, a flood of identical events is not."""
    if not cache.add(f"gatehouse-api-refused:{token.pk}:{code}", 1, timeout=60):
        return
    from accessreq.services.pipelines import token_use_refused

    token_use_refused(token=token, code=code, http=request)


def parse_body(
    request: HttpRequest, schema: dict[str, Any], *, optional: bool = False
) -> dict[str, Any]:
    """The request's JSON object, checked against ``schema`` (the one the OpenAPI document
    publishes), or a 4xx naming the problem. With ``optional`` (a body the document marks not
    required), no body at all is an empty object."""
    try:
        raw = request.body
    except RequestDataTooBig:
        raise ApiError(413, "request_too_large", "The request body is too large.") from None
    if optional and not raw:
        return {}
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "Send the body as application/json.")
    try:
        body = json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested too deep
        raise ApiError(400, "invalid_json", "The body is not valid JSON.") from None
    try:
        validate(body, schema)
    except SchemaError as error:
        raise ApiError(400, "invalid_request", str(error)) from None
    return dict(body)


View = Callable[..., HttpResponse]


def endpoint(
    *, methods: tuple[str, ...], authenticated: bool = True, page: bool = False
) -> Callable[[View], View]:
    """Make ``view`` an API endpoint: token authentication (unless ``authenticated=False``),
    the per-token rate limit, the method check, and JSON answers for every error. JSON endpoints
    take the API's short middleware (``API_MIDDLEWARE``); a ``page`` (HTML for people) keeps the
    pages' whole stack, its CSP included."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            # Whatever the session cookie says, nobody acts here until a token says who.
            request.user = AnonymousUser()
            try:
                if request.method not in methods:
                    raise ApiError(
                        405,
                        "method_not_allowed",
                        f"Use {' or '.join(methods)} here.",
                        headers={"Allow": ", ".join(methods)},
                    )
                if authenticated:
                    token = authenticate(request)
                    rate_limit(f"token:{token.pk}", settings.API_RATE_LIMIT_PER_MINUTE)
                    request.api_token = token  # type: ignore[attr-defined]
                    request.user = token.service_account
                return view(request, *args, **kwargs)
            except ApiError as error:
                return error.response()
            except LedgerUnavailable:
                logger.exception("Ledger unavailable on %s %s", request.method, request.path)
                return ApiError(
                    503,
                    "ledger_unavailable",
                    "The decision could not be recorded in the audit ledger in time, so it is not "
                    "given; try again.",
                    headers={"Retry-After": "1"},
                ).response()
            except Exception:
                logger.exception("API error on %s %s", request.method, request.path)
                return ApiError(
                    500, "server_error", "Something went wrong; it has been logged."
                ).response()

        wrapper.api_endpoint = not page  # type: ignore[attr-defined]
        return login_not_required(csrf_exempt(wrapper))

    return decorate


def api_token(request: HttpRequest) -> ApiToken:
    """The token an authenticated endpoint was called with."""
    token: ApiToken = request.api_token  # type: ignore[attr-defined]
    return token
