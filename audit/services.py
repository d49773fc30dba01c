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


def build_event(
    *,
    actor: Any,
    action: str,
    target: Model | tuple[str, Any, str] | None = None,
    data: dict[str, Any] | None = None,
    request: HttpRequest | None = None,
    pipeline: dict[str, str] | None = None,
) -> AuditEvent:
    """An unsaved event with every field but its place in the chain (sequence, hashes, time).

    Refuses unregistered action codes. Cheap and lock-free: callers build outside the lock.
    """
    describe(action)
    return AuditEvent(
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
    event = build_event(
        actor=actor, action=action, target=target, data=data, request=request, pipeline=pipeline
    )
    append_events([event])
    return event


# The chain head and the database clock in one statement, one row even for an empty ledger.
# It must stay a statement of its own after the lock: under READ COMMITTED each statement takes
# its snapshot when it starts, so a read in the locking statement could miss the last commit.
_HEAD_SQL = {
    "postgresql": (
        "SELECT h.sequence, h.leaf_hash, h.occurred_at, clock_timestamp() FROM (SELECT 1) AS one "
        "LEFT JOIN (SELECT sequence, leaf_hash, occurred_at FROM audit_auditevent "
        "ORDER BY sequence DESC LIMIT 1) AS h ON TRUE"
    ),
    "sqlite": (
        "SELECT h.sequence, h.leaf_hash, h.occurred_at, strftime('%Y-%m-%d %H:%M:%f', 'now') "
        "FROM (SELECT 1) AS one LEFT JOIN (SELECT sequence, leaf_hash, occurred_at "
        "FROM audit_auditevent ORDER BY sequence DESC LIMIT 1) AS h ON 1"
    ),
}


def _as_utc(value: datetime | str) -> datetime:
    if isinstance(value, str):  # SQLite keeps datetimes as UTC text
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return value.astimezone(UTC)


def append_events(events: list[AuditEvent]) -> None:
    """Chain and insert ``events`` (from ``build_event``) in order, in one transaction.

    One writer lock and one head read for the whole group; each event is still its own leaf with
    its own sequence, previous hash and time. Joins the caller's transaction if there is one, so
    the events commit (or roll back) with the change they record.
    """
    if not events:
        return
    # No savepoint: inside a caller's transaction, a failed append must fail the whole change.
    with transaction.atomic(savepoint=False):
        lock_ledger()
        with connection.cursor() as cursor:
            cursor.execute(_HEAD_SQL[connection.vendor])
            sequence, prev_hash, head_time, now_value = cursor.fetchone()
        # Never earlier than the event before it (a clock can step back): times rise with the
        # sequence, which lets time-range searches use the sequence index.
        now = _as_utc(now_value)
        if sequence is not None:
            now = max(now, _as_utc(head_time))
        sequence = sequence or 0
        prev_hash = prev_hash or GENESIS
        first = sequence + 1
        for event in events:
            sequence += 1
            event.sequence = sequence
            event.prev_hash = prev_hash
            event.occurred_at = now
            event.leaf_hash = prev_hash = merkle.leaf_hash(
                canonical_bytes(event_payload(event))
            ).hex()
        _insert(events)
        _schedule_checkpoint_if_due(first, sequence)


def _insert(events: list[AuditEvent]) -> None:
    """One multi-row INSERT for the group, values prepared by the model's fields as save() would.
    The ORM's bulk_create costs more than the rest of a group append together (on PostgreSQL it
    sends arrays to UNNEST, quoted in Python)."""
    fields = [f for f in AuditEvent._meta.concrete_fields if not f.primary_key]
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    params = [f.get_db_prep_save(getattr(e, f.attname), connection) for e in events for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AuditEvent._meta.db_table} ({columns}) "  # noqa: S608 - model names
            f"VALUES {', '.join([row] * len(events))} RETURNING id",
            params,
        )
        ids = cursor.fetchall()
    for event, (pk,) in zip(events, ids, strict=True):
        event.pk = pk
        event._state.adding = False
        event._state.db = connection.alias


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
