"""Request id tagging, the MFA gate that closes every page to an unverified session, and the
API's short way through the middleware."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.handlers.base import BaseHandler
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import Resolver404, resolve, reverse
from django.utils.module_loading import import_string

from portal.auth import is_verified
from portal.auth.sso_session import apply_provider_mfa

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
API_PREFIX = "/api/"
# Paths whose bearer-token views (marked ``api_endpoint``) take the short way: the API, the
# Prometheus scrape and the SCIM directory endpoints, none of which has a session.
SHORT_WAY_PREFIXES = (API_PREFIX, "/metrics", "/scim/v2/")


class RequestIdMiddleware:
    """Give each request an id (a proxy's ``X-Request-ID`` if well-formed) for logs and audit."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response


SIGNED_IN_AT = "gatehouse_signed_in_at"
SEEN_AT = "gatehouse_seen_at"
# The last-seen stamp is written at most this often, so a busy page does not save its session on
# every request; the idle timeout is therefore up to this much longer.
SEEN_RESOLUTION = 60


def session_started(request: HttpRequest) -> None:
    """Stamp a session that just signed in (called at sign-in, after the key was rotated)."""
    clock = int(time.time())
    request.session[SIGNED_IN_AT] = clock
    request.session[SEEN_AT] = clock


class SessionTimeoutMiddleware:
    """End a signed-in session idle for ``SESSION_IDLE_SECONDS`` or older than
    ``SESSION_COOKIE_AGE`` (the absolute lifetime, whatever activity there was): the session is
    flushed and the request goes on anonymous, so the sign-in gate sends the person to sign in
    again, with a message saying why, and the ledger records ``auth.session.expired``.

    After the messages middleware (it adds a message) but before any view hook runs."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            self._check(request, user)
        return self.get_response(request)

    def _check(self, request: HttpRequest, user: Any) -> None:
        session = request.session
        clock = int(time.time())
        started, seen = session.get(SIGNED_IN_AT), session.get(SEEN_AT)
        if not isinstance(started, int) or not isinstance(seen, int):
            session_started(request)  # a session from before these stamps: start counting now
            return
        idle, age = clock - seen, clock - started
        if age > settings.SESSION_COOKIE_AGE:
            reason, message = (
                "lifetime",
                (
                    f"You were signed in for {_hours(settings.SESSION_COOKIE_AGE)}, the longest a "
                    "sign-in lasts. Sign in again to carry on."
                ),
            )
        elif idle > settings.SESSION_IDLE_SECONDS:
            reason, message = (
                "idle",
                (
                    f"Your session ended after {_minutes(settings.SESSION_IDLE_SECONDS)} without "
                    "activity. Sign in again to carry on."
                ),
            )
        else:
            if idle >= SEEN_RESOLUTION:
                session[SEEN_AT] = clock
            return
        from django.contrib import messages
        from django.contrib.auth.models import AnonymousUser

        from audit.services import record

        record(
            actor=user,
            action="auth.session.expired",
            target=user,
            data={"reason": reason, "idle_seconds": idle, "age_seconds": age},
            request=request,
        )
        session.flush()
        request.user = AnonymousUser()
        messages.info(request, message)


def _minutes(seconds: int) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def _hours(seconds: int) -> str:
    if seconds % 3600:
        return _minutes(seconds)
    hours = seconds // 3600
    return f"{hours} hour{'s' if hours != 1 else ''}"


def mfa_not_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view reachable by a signed-in person who has not yet passed the second factor."""
    view.mfa_required = False  # type: ignore[attr-defined]
    return view


class MFARequiredMiddleware:
    """After the password, nothing but MFA enrolment/verification and logout until verified.

    Views that are public (``login_not_required``: login, password reset, health) stay public;
    views marked ``mfa_not_required`` are the MFA pages themselves. Everything else, the admin
    included, needs ``request.user.is_verified()``: a Gatehouse code, or the MFA asserted by a
    provider trusted for it at single sign-on (``portal.auth.sso_session``).
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        apply_provider_mfa(request)
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view_func: Callable[..., Any], view_args: Any, view_kwargs: Any
    ) -> HttpResponse | None:
        if not getattr(view_func, "login_required", True):
            return None
        if not getattr(view_func, "mfa_required", True):
            return None
        user = request.user
        if not user.is_authenticated or is_verified(user):
            return None

        from portal.services.mfa import has_confirmed_device

        target = "mfa_verify" if has_confirmed_device(user) else "mfa_enrol"
        query = urlencode({"next": request.get_full_path()})
        return HttpResponseRedirect(f"{reverse(target)}?{query}")


class _ApiHandler(BaseHandler):
    """Django's request handling with ``API_MIDDLEWARE`` instead of ``MIDDLEWARE``."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware: list[Any] = []
        self._template_response_middleware: list[Any] = []
        self._exception_middleware: list[Any] = []
        handler = convert_exception_to_response(self._get_response)  # type: ignore[attr-defined]
        for dotted in reversed(settings.API_MIDDLEWARE):
            handler = convert_exception_to_response(import_string(dotted)(handler))
        self._middleware_chain = handler


class ApiMiddleware:
    """API endpoints skip the browser's middleware: sessions, CSRF, sign-in, MFA, messages, the
    pages' CSP. Their ``endpoint`` wrapper sets the principal from the bearer token and ignores
    any session, so that middleware only costs time (a third of a decision's CPU). They go
    through ``API_MIDDLEWARE`` instead: security headers, the request id, model history.

    First in ``MIDDLEWARE``, so every server (gunicorn, runserver, the test client) takes the same
    path. Only views under ``SHORT_WAY_PREFIXES`` marked ``api_endpoint`` (JSON endpoints and
    ``/metrics``) take it; the API's HTML docs page and everything else go through the whole
    stack.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.api = _ApiHandler()
        self.api.load_middleware()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(SHORT_WAY_PREFIXES):
            try:
                match = resolve(request.path_info)
            except Resolver404:
                match = None
            if match is not None and getattr(match.func, "api_endpoint", False):
                return self.api.get_response(request)  # type: ignore[return-value]
        return self.get_response(request)
