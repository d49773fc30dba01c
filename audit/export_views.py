"""Evidence export of filtered audit events."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse


def export(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError  # being built
