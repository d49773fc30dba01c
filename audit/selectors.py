"""Reads behind the auditor pages: filtered event search with keyset pages, one event's proof."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Q, QuerySet, Subquery, TextField, Value
from django.db.models.functions import Cast, Coalesce
from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from audit import ledger, merkle, signing
from audit.canonical import GENESIS, canonical_bytes, event_payload
from audit.models import AuditEvent, Checkpoint, SigningKey
from portal import roles

PAGE_SIZE = 50
_MAX_WORDS = 8
_BIGINT_MAX = 2**63 - 1
# "portal.user:42": one record, matched exactly on (target_type, target_id) by audit_target_idx.
_EXACT_TARGET = re.compile(r"^(?P<type>[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*):(?P<id>\S{1,64})$")


@dataclass(frozen=True)
class EventFilters:
    """What an auditor searches for; empty values mean "any"."""

    actor: str = ""
    action: str = ""  # a registered code, or a prefix ending in "." for a whole family
    target: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    text: str = ""

    def __bool__(self) -> bool:
        return any((self.actor, self.action, self.target, self.since, self.until, self.text))


def exact_target(target_type: str, target_id: str) -> str:
    """The target filter value that matches exactly one record."""
    return f"{target_type}:{target_id}"


def _int_or_none(value: str) -> int | None:
    if value.isascii() and value.isdigit() and 0 < int(value) <= _BIGINT_MAX:
        return int(value)
    return None


def _actor_q(value: str) -> Q:
    # Digits only is an id, exactly: "42" must not also match person142@example.com.
    if value.isascii() and value.isdigit():
        actor_id = _int_or_none(value)
        return Q(actor_id=actor_id) if actor_id is not None else Q(pk__in=[])
    return Q(actor_name__icontains=value)


def _target_q(value: str) -> Q:
    exact = _EXACT_TARGET.match(value)
    if exact:
        return Q(target_type=exact["type"], target_id=exact["id"])
    return (
        Q(target_type__icontains=value) | Q(target_id=value[:255]) | Q(target_repr__icontains=value)
    )


def _data_forms(word: str) -> set[str]:
    """The ways ``word`` can appear in the event data rendered as JSON text.

    Strings inside JSON escape quotes and backslashes; SQLite also keeps Django's ASCII-only
    encoding (``\\u00e9``) while PostgreSQL's ``jsonb::text`` prints the character itself.
    """
    escaped = json.dumps(word, ensure_ascii=connection.vendor != "postgresql")[1:-1]
    return {word, escaped}


def _text_q(word: str) -> Q:
    query = (
        Q(action__icontains=word) | Q(actor_name__icontains=word) | Q(target_repr__icontains=word)
    )
    for form in _data_forms(word):
        query |= Q(data_text__icontains=form)
    return query


_NO_SEQUENCE = 2**62


def _first_sequence_at_or_after(moment: Any) -> Any:
    return (
        AuditEvent.objects.filter(occurred_at__gte=moment)
        .order_by("occurred_at", "sequence")
        .values("sequence")[:1]
    )


def event_search(*, user: Any, filters: EventFilters) -> QuerySet[AuditEvent]:
    """Events ``user`` may read that match every given filter, newest first (by ``sequence``)."""
    qs = visible_events(user)
    if filters.actor:
        qs = qs.filter(_actor_q(filters.actor))
    if filters.action.endswith("."):
        qs = qs.filter(action__startswith=filters.action)
    elif filters.action:
        qs = qs.filter(action=filters.action)
    if filters.target:
        qs = qs.filter(_target_q(filters.target))
    # Event times never decrease along the sequence (audit.services.record guarantees it and
    # `audit verify` checks it), so a time bound is a sequence bound found with one index lookup.
    if filters.since is not None:
        qs = qs.filter(sequence__gte=Subquery(_first_sequence_at_or_after(filters.since)))
    if filters.until is not None:
        qs = qs.filter(
            sequence__lt=Coalesce(
                Subquery(_first_sequence_at_or_after(filters.until)), Value(_NO_SEQUENCE)
            )
        )
    words = filters.text.split()[:_MAX_WORDS]
    if words:
        # CAST(data AS text): jsonb::text on PostgreSQL, the stored JSON string on SQLite.
        qs = qs.annotate(data_text=Cast("data", output_field=TextField()))
        for word in words:
            qs = qs.filter(_text_q(word))
    return qs.order_by("-sequence")


@dataclass
class EventPage:
    """One keyset page of events, newest first, with the cursors of its neighbours."""

    events: list[AuditEvent]
    newer: int | None = None  # ``after=`` cursor for the page of newer events, if any
    older: int | None = None  # ``before=`` cursor for the page of older events, if any


def _any_beyond(
    qs: QuerySet[AuditEvent], *, older_than: int | None = None, newer_than: int | None = None
) -> bool:
    """Whether ``qs`` has an event past the page's edge.

    An ordered LIMIT 1 rather than EXISTS: PostgreSQL then walks the sequence index from the
    edge instead of scanning the table in physical order.
    """
    if older_than is not None:
        edge = qs.filter(sequence__lt=older_than).order_by("-sequence")
    else:
        edge = qs.filter(sequence__gt=newer_than).order_by("sequence")
    return edge.values_list("sequence", flat=True).first() is not None


def event_page(
    qs: QuerySet[AuditEvent],
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = PAGE_SIZE,
) -> EventPage:
    """A page of ``qs`` by sequence, never OFFSET and never COUNT: two indexed queries at most.

    ``before=N``: the ``size`` newest events older than N. ``after=N``: the ``size`` oldest events
    newer than N, shown newest first. One extra row tells whether the walk goes on in that
    direction; one indexed probe tells whether there is anything on the other side.
    """
    if after is not None:
        rows = list(qs.filter(sequence__gt=after).order_by("sequence")[: size + 1])
        events = rows[:size][::-1]
        more_newer = len(rows) > size
        more_older = bool(events) and _any_beyond(qs, older_than=events[-1].sequence)
    else:
        window = qs if before is None else qs.filter(sequence__lt=before)
        rows = list(window.order_by("-sequence")[: size + 1])
        events = rows[:size]
        more_older = len(rows) > size
        more_newer = (
            before is not None and bool(events) and _any_beyond(qs, newer_than=events[0].sequence)
        )
    return EventPage(
        events=events,
        newer=events[0].sequence if more_newer else None,
        older=events[-1].sequence if more_older else None,
    )


def visible_events(user: Any) -> QuerySet[AuditEvent]:
    """The events ``user`` may read: all of them for auditors and security admins, else none."""
    if roles.can_read_audit(user):
        return AuditEvent.objects.all()
    return AuditEvent.objects.none()


@dataclass
class InclusionCheck:
    """What the server checked about one event against the ledger and its newest checkpoint."""

    content_ok: bool  # the stored fields hash to the stored leaf hash
    chain_ok: bool  # prev_hash is the previous event's leaf hash (or the genesis value)
    checkpoint: Checkpoint | None = None
    signature_ok: bool = False  # the checkpoint's signature verifies with its published key
    key_known: bool = False
    path: list[str] = field(default_factory=list)
    included: bool = False  # the audit path leads from the leaf hash to the signed root

    @property
    def verified(self) -> bool:
        return bool(
            self.content_ok
            and self.chain_ok
            and self.checkpoint is not None
            and self.signature_ok
            and self.included
        )


def inclusion_check(event: AuditEvent, prev_leaf_hash: str | None) -> InclusionCheck:
    """Recompute the event's leaf hash, its chain link and its RFC 6962 inclusion proof.

    Reading the proof streams every leaf hash up to the checkpoint's tree size (O(n) reads in
    O(log n) queries): fine for one event on a detail page, not for a list.
    """
    leaf = merkle.leaf_hash(canonical_bytes(event_payload(event)))
    expected_prev = GENESIS if event.sequence == 1 else prev_leaf_hash
    check = InclusionCheck(
        content_ok=leaf.hex() == event.leaf_hash,
        chain_ok=expected_prev is not None and expected_prev == event.prev_hash,
    )
    checkpoint = ledger.covering_checkpoint(event.sequence)
    if checkpoint is None:
        return check
    check.checkpoint = checkpoint
    public = (
        SigningKey.objects.filter(key_id=checkpoint.key_id)
        .values_list("public_key", flat=True)
        .first()
    )
    check.key_known = public is not None
    check.signature_ok = public is not None and signing.verify_signature(
        public, checkpoint.signature, ledger.checkpoint_message(checkpoint)
    )
    proof = ledger.inclusion_proof(event.sequence, checkpoint.tree_size)
    check.path = [node.hex() for node in proof]
    try:
        stored_leaf = bytes.fromhex(event.leaf_hash)
        root = bytes.fromhex(checkpoint.root_hash)
    except ValueError:
        return check
    check.included = merkle.verify_inclusion(
        event.sequence - 1, checkpoint.tree_size, stored_leaf, proof, root
    )
    return check


@dataclass(frozen=True)
class TargetLinks:
    """Where an event's target lives in the admin, as far as the viewer may follow."""

    exists: bool
    change_url: str = ""
    history_url: str = ""


def target_admin_links(event: AuditEvent, request: HttpRequest) -> TargetLinks | None:
    """Admin change and history pages of the event's target, if it is an admin-registered model.

    None when the target is not such a model. Links only when the record still exists and the
    viewer may open it in the admin (auditors are not staff: they see that it exists, no links).
    """
    from django.apps import apps
    from django.contrib.admin.exceptions import NotRegistered
    from django.contrib.admin.utils import quote

    if not event.target_type or not event.target_id:
        return None
    try:
        model = apps.get_model(event.target_type)
        model_admin = admin.site.get_model_admin(model)
    except (LookupError, ValueError, NotRegistered):
        return None
    try:
        pk = model._meta.pk.to_python(event.target_id)
        obj = model._default_manager.filter(pk=pk).first()
    except (ValidationError, ValueError, OverflowError):
        obj = None
    if obj is None:
        return TargetLinks(exists=False)
    if not (admin.site.has_permission(request) and model_admin.has_view_permission(request, obj)):
        return TargetLinks(exists=True)
    info = (model._meta.app_label, model._meta.model_name)
    try:
        change = reverse("admin:{}_{}_change".format(*info), args=(quote(obj.pk),))
        history = reverse("admin:{}_{}_history".format(*info), args=(quote(obj.pk),))
    except NoReverseMatch:
        return TargetLinks(exists=True)
    return TargetLinks(exists=True, change_url=change, history_url=history)
