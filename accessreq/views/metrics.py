"""``/metrics`` for Prometheus: the dashboard's numbers, behind a bearer token of its own.

No token configured (``METRICS_TOKEN``) closes the endpoint (404); a missing or wrong token is a
401. The token is compared in constant time. Like the API's JSON endpoints it takes the short
middleware (no session, CSRF, sign-in or MFA: a scraper has none), and it answers nothing about
the data until the token matches.
"""

from __future__ import annotations

import hmac
import re

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from accessreq.api.base import ApiError, endpoint
from accessreq.reports.metrics import CONTENT_TYPE, exposition

_BEARER = re.compile(r"^Bearer\s+(\S+)\s*$", re.IGNORECASE)
_CHALLENGE = 'Bearer realm="gatehouse-metrics"'


def _check_token(request: HttpRequest) -> None:
    expected = settings.METRICS_TOKEN
    if not expected:
        raise ApiError(404, "not_found", "No such endpoint.")
    match = _BEARER.match(request.META.get("HTTP_AUTHORIZATION", ""))
    if match is None:
        raise ApiError(
            401,
            "authentication_required",
            "Send the metrics token in 'Authorization: Bearer <token>'.",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    if not hmac.compare_digest(match.group(1).encode(), expected.encode()):
        raise ApiError(
            401,
            "invalid_token",
            "This is not the metrics token.",
            headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
        )


@endpoint(methods=("GET",), authenticated=False)
def metrics(request: HttpRequest) -> HttpResponse:
    """Every ``gatehouse_`` metric in the Prometheus text format, computed now."""
    _check_token(request)
    response = HttpResponse(exposition(), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
