"""Error pages rendered in the portal layout.

Django's handlers cover raised errors (404, 403, 400, 500). A view may also answer with an
empty error response of its own, such as the 405 of ``require_POST``; ``ErrorPageMiddleware``
gives those the same styled page, so no one meets a blank screen.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader

# Status codes that get a styled page when a view answers them with an empty body.
_STYLED = {
    400: "errors/400.html",
    403: "errors/403.html",
    404: "errors/404.html",
    405: "errors/405.html",
}
# Headers of the original response that still apply to the page that replaces it.
_KEPT_HEADERS = ("Allow", "Retry-After", "X-Request-ID")


def not_found(
    request: HttpRequest, exception: Exception | None = None, **_url_kwargs: object
) -> HttpResponse:
    """The styled 404; also the view of addresses we close on purpose, whatever their parameters."""
    return render(request, "errors/404.html", status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if exception and str(exception) else ""
    return render(request, "errors/403.html", {"reason": reason}, status=403)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/400.html", status=400)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form sent without a valid CSRF token (an old tab, cookies blocked): say how to recover."""
    message = (
        "This form could not be checked, so nothing was changed. The page was probably open "
        "for a long time, or your browser blocks cookies for this site. Go back, reload the "
        "page and send the form again."
    )
    return render(request, "errors/403.html", {"reason": message}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    # No context processors: the failure may be in one of them.
    return HttpResponse(loader.get_template("errors/500.html").render(), status=500)


class ErrorPageMiddleware:
    """Replace an empty-bodied error response (a 405 from ``require_POST``, a bare 400 or 404)
    with the portal's page for that status, for browsers (``Accept: text/html``). Responses with
    a body, and answers to scripts and API clients, pass as they are."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        template = _STYLED.get(response.status_code)
        if (
            template is None
            or response.streaming
            or response.content
            or not response.get("Content-Type", "").startswith("text/html")
            or "text/html" not in request.headers.get("Accept", "")
            or request.method == "HEAD"
        ):
            return response
        styled = render(request, template, {"method": request.method}, status=response.status_code)
        for header in _KEPT_HEADERS:
            if header in response:
                styled[header] = response[header]
        return styled
