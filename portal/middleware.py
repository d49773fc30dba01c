"""Request id tagging and the MFA gate that closes every page to an unverified session."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from portal.auth import is_verified

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


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


def mfa_not_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a view reachable by a signed-in person who has not yet passed the second factor."""
    view.mfa_required = False  # type: ignore[attr-defined]
    return view


class MFARequiredMiddleware:
    """After the password, nothing but MFA enrolment/verification and logout until verified.

    Views that are public (``login_not_required``: login, password reset, health) stay public;
    views marked ``mfa_not_required`` are the MFA pages themselves. Everything else, the admin
    included, needs ``request.user.is_verified()``.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
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
