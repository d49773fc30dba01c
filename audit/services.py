"""The one writer of audit events.

``record`` must run inside the transaction of the change it records, so the event and the change
commit or roll back together. It refuses action codes missing from ``audit.actions``.

Writers are serialised: on PostgreSQL by a transaction-scoped advisory lock, on SQLite by the
database write lock that ``BEGIN IMMEDIATE`` takes. Under the lock the writer reads the chain head,
assigns the next sequence number and the database time, and hashes the canonical event, so chain
order is commit order and a rolled-back change leaves neither an event nor a gap.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Model
from django.http import HttpRequest

from audit import merkle
from audit.actions import describe
from audit.canonical import GENESIS, canonical_bytes, event_payload
from audit.models import AuditEvent

log = logging.getLogger(__name__)

# Any constant works; it only has to be the same in every process.
_LEDGER_LOCK_KEY = 0x6761746568

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
        "ip": _normalised_ip(request.META.get("REMOTE_ADDR")),
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


def _normalised_ip(value: str | None) -> str | None:
    # Stored the way PostgreSQL's inet prints it, so the hashed value is what reads back.
    if not value:
        return None
    try:
        return ipaddress.ip_address(value).compressed
    except ValueError:
        return None


def lock_ledger() -> None:
    """Take the ledger's writer lock for the rest of the current transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LEDGER_LOCK_KEY])
    # SQLite: the transaction began with BEGIN IMMEDIATE and already holds the write lock.


def database_now() -> datetime:
    """The database server's clock, so every writer stamps events from one clock."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT clock_timestamp()")
            value = cursor.fetchone()[0]
            return value.astimezone(UTC)
        cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
        text = cursor.fetchone()[0]
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def record(
    *,
    actor: Any,
    action: str,
    target: Model | tuple[str, Any, str] | None = None,
    data: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    pipeline: dict[str, str] | None = None,
) -> AuditEvent:
    """Append one audit event for ``action`` by ``actor`` on ``target``.

    ``target`` is a model instance or a ``(type, id, repr)`` tuple; ``data`` is JSON-serialisable
    detail (before/after values for a change); ``pipeline`` is the run id, stage and commit of a
    pipeline caller. Never put secrets in ``data``.
    """
    describe(action)  # refuses unregistered codes
    event = AuditEvent(
        action=action,
        # A JSON round trip first, so what is hashed is exactly what the database gives back.
        data=json.loads(json.dumps(data or {}, allow_nan=False)),
        pipeline=pipeline or {},
        code_version=settings.CODE_VERSION,
        deployment=settings.DEPLOYMENT_NAME,
        **_actor_fields(actor),
        **_target_fields(target),
        **_request_fields(request),
    )
    with transaction.atomic():
        lock_ledger()
        head = (
            AuditEvent.objects.order_by("-sequence")
            .values("sequence", "leaf_hash", "occurred_at")
            .first()
        )
        event.sequence = head["sequence"] + 1 if head else 1
        event.prev_hash = head["leaf_hash"] if head else GENESIS
        # Never earlier than the event before it (a clock can step back): times rise with the
        # sequence, which lets time-range searches use the sequence index.
        now = database_now()
        event.occurred_at = max(now, head["occurred_at"]) if head else now
        event.leaf_hash = merkle.leaf_hash(canonical_bytes(event_payload(event))).hex()
        event.save(force_insert=True)
        _schedule_checkpoint_if_due(event.sequence, event.sequence)
    return event


def _schedule_checkpoint_if_due(first_sequence: int, last_sequence: int) -> None:
    """Every AUDIT_CHECKPOINT_EVERY_EVENTS events, sign a checkpoint once the append commits.

    A rolled-back append frees its sequence numbers, so the next one to take them asks again.
    """
    every = settings.AUDIT_CHECKPOINT_EVERY_EVENTS
    if every > 0 and last_sequence // every > (first_sequence - 1) // every:
        transaction.on_commit(_enqueue_checkpoint)


def _enqueue_checkpoint() -> None:
    from audit.tasks import checkpoint_sign_task

    try:
        checkpoint_sign_task.delay()
    except Exception:  # the event is committed; beat signs within 5 minutes anyway
        log.exception("Could not queue the every-N-events checkpoint")
