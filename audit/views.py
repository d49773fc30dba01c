"""Auditor pages: search the ledger, see one event with its proof; published signing keys."""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET

from audit.canonical import format_time
from audit.models import SigningKey


def search(request: HttpRequest) -> HttpResponse:
    raise NotImplementedError  # being built


def event_detail(request: HttpRequest, sequence: int) -> HttpResponse:
    raise NotImplementedError  # being built


@login_not_required
@require_GET
def keys(request: HttpRequest) -> JsonResponse:
    """Every public key that has signed checkpoints, current and retired: public by design."""
    from audit import signing

    current = signing.key_id_of(signing.signing_key().public_key())
    published = [
        {
            "key_id": key.key_id,
            "algorithm": "Ed25519",
            "public_key": key.public_key,
            "created_at": format_time(key.created_at),
            "retired_at": format_time(key.retired_at) if key.retired_at else None,
        }
        for key in SigningKey.objects.order_by("created_at")
    ]
    return JsonResponse({"current_key_id": current, "keys": published})
