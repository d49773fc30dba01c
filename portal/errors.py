"""Error pages rendered in the portal layout."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.template import loader


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return render(request, "errors/404.html", status=404)


def forbidden(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    reason = str(exception) if exception and str(exception) else ""
    return render(request, "errors/403.html", {"reason": reason}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    # No context processors: the failure may be in one of them.
    return HttpResponse(loader.get_template("errors/500.html").render(), status=500)
