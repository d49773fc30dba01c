"""The one writer of audit events.

``record`` must run inside the transaction of the change it records, so the event and the change
commit or roll back together. It refuses action codes missing from ``audit.actions``.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone

from audit.actions import describe
from audit.models import AuditEvent

_USER_AGENT_MAX = 512


def _actor_fields(actor: Any) -> dict[str, Any]:
    if actor is None or not getattr(actor, "is_authenticated", False):
        if actor is not None and getattr(actor, "kind", None) == "system":
            return {"actor_id": actor.pk, "actor_name": str(actor), "actor_kind": "system"}
        return {"actor_id": None, "actor_name": "anonymous", "actor_kind": "anonymous"}
    kind = getattr(actor, "kind", "human")
    return {
        "actor_id": actor.pk,
        "actor_name": f"{actor} <{actor.email}>" if getattr(actor, "email", "") else str(actor),
        "actor_kind": kind if kind in {"human", "service", "system"} else "human",
    }


def _target_fields(target: Any) -> dict[str, Any]:
    if target is None:
        return {"target_type": "", "target_id": "", "target_repr": ""}
    if isinstance(target, Model):
        return {
            "target_type": target._meta.label_lower,
            "target_id": str(target.pk),
            "target_repr": str(target)[:200],
        }
    type_, id_, repr_ = target
    return {"target_type": type_, "target_id": str(id_), "target_repr": str(repr_)[:200]}


def _request_fields(request: HttpRequest | None) -> dict[str, Any]:
    if request is None:
        return {}
    fields: dict[str, Any] = {
        "ip": request.META.get("REMOTE_ADDR") or None,
        "user_agent": request.META.get("HTTP_USER_AGENT", "")[:_USER_AGENT_MAX],
        "request_id": getattr(request, "request_id", ""),
    }
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        # A hash, never the key itself: the key is a bearer credential.
        fields["session_hash"] = hashlib.sha256(session.session_key.encode()).hexdigest()
        method = session.get("mfa_method", "")
        verified_at = session.get("mfa_verified_at")
        if method and verified_at is not None:
            fields["mfa_method"] = method
            fields["mfa_age_seconds"] = max(0, int(time.time() - float(verified_at)))
    return fields


def record(
    *,
    actor: Any,
    action: str,
    target: Model | tuple[str, Any, str] | None = None,
    data: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
) -> AuditEvent:
    """Append one audit event for ``action`` by ``actor`` on ``target``.

    ``target`` is a model instance or a ``(type, id, repr)`` tuple; ``data`` is JSON-serialisable
    detail (before/after values for a change). Never put secrets in ``data``.
    """
    describe(action)  # refuses unregistered codes
    with transaction.atomic():
        return AuditEvent.objects.create(
            occurred_at=timezone.now(),
            action=action,
            data=data or {},
            code_version=settings.CODE_VERSION,
            deployment=settings.DEPLOYMENT_NAME,
            **_actor_fields(actor),
            **_target_fields(target),
            **_request_fields(request),
        )
