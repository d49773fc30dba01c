"""Home page and health endpoint."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from portal.celery import app as celery_app
from portal.home import home_for


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """What needs me, and what do I hold."""
    return render(request, "portal/home.html", {"home": home_for(request)})


def _check_database() -> dict[str, object]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "down"
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


def _check_broker() -> dict[str, object]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as exc:  # kombu raises many transport-specific errors
        # The class name only: broker URLs can carry credentials.
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True}


@login_not_required
@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Database and broker reachability, for load balancers and monitoring (503 if one is down)."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(check["ok"] for check in checks.values())
    body = {
        "status": "ok" if healthy else "unavailable",
        "checks": checks,
        "version": settings.CODE_VERSION,
    }
    return JsonResponse(body, status=200 if healthy else 503)
