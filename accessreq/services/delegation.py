"""Delegation: an approver names someone to decide for them over a date range."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import Delegation
from accessreq.services.common import now
from accessreq.services.notifications import notify
from audit.services import record
from portal.models import User

LONGEST_DELEGATION = timedelta(days=90)


@transaction.atomic
def delegation_create(
    *,
    actor: User,
    delegate: User,
    starts_at: datetime,
    ends_at: datetime,
    reason: str = "",
    http: HttpRequest | None = None,
) -> Delegation:
    """Let ``delegate`` decide what waits for ``actor`` from ``starts_at`` until ``ends_at``.
    A delegate still never decides a request they made or would benefit from."""
    if delegate.pk == actor.pk:
        raise WorkflowError("Choose someone other than yourself.")
    if not delegate.is_active or delegate.kind != User.Kind.HUMAN:
        raise WorkflowError(f"{delegate} can't be a delegate: the account is not an active person.")
    clock = now()
    if ends_at <= starts_at:
        raise WorkflowError("The end must be after the start.")
    if ends_at <= clock:
        raise WorkflowError("The end is in the past.")
    if ends_at - max(starts_at, clock) > LONGEST_DELEGATION:
        raise WorkflowError("A delegation lasts at most 90 days; set another one after that.")
    overlapping = Delegation.objects.filter(
        delegator=actor, cancelled_at__isnull=True, starts_at__lt=ends_at, ends_at__gt=starts_at
    )
    if overlapping.exists():
        raise WorkflowError(
            "You already have a delegation in that period; cancel it first to change it."
        )
    delegation = Delegation.objects.create(
        delegator=actor,
        delegate=delegate,
        starts_at=starts_at,
        ends_at=ends_at,
        reason=reason.strip(),
        created_at=clock,
    )
    record(
        actor=actor,
        action="delegation.created",
        target=delegation,
        data={
            "delegator": str(actor),
            "delegate": str(delegate),
            "delegate_id": delegate.pk,
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "reason": delegation.reason,
        },
        request=http,
    )
    notify(
        key=f"delegation:{delegation.pk}:created",
        recipient=delegate,
        subject=f"You stand in for {actor}",
        lines=[
            f"{actor} made you their delegate from {starts_at:%Y-%m-%d %H:%M} to "
            f"{ends_at:%Y-%m-%d %H:%M} UTC. Requests waiting for them appear in your inbox.",
        ],
        path=reverse("approvals"),
    )
    return delegation


@transaction.atomic
def delegation_cancel(
    *, actor: User, delegation_id: int, http: HttpRequest | None = None
) -> Delegation:
    """End a delegation early; only the person who gave it may."""
    delegation = (
        Delegation.objects.select_for_update()
        .filter(pk=delegation_id, delegator=actor)
        .select_related("delegate")
        .first()
    )
    if delegation is None:
        raise NotAllowed("No such delegation.")
    clock = now()
    if delegation.cancelled_at is not None or delegation.ends_at <= clock:
        raise WorkflowError("This delegation has already ended.")
    _cancel(delegation, actor=actor, at=clock, http=http)
    return delegation


def _cancel(
    delegation: Delegation,
    *,
    actor: User,
    at: datetime,
    reason: str = "",
    http: HttpRequest | None = None,
) -> None:
    """End a locked delegation now and record it."""
    delegation.cancelled_at = at
    delegation.save()
    data = {"delegator": str(delegation.delegator), "delegate": str(delegation.delegate)}
    record(
        actor=actor,
        action="delegation.cancelled",
        target=delegation,
        data={**data, "reason": reason} if reason else data,
        request=http,
    )


@transaction.atomic
def delegations_cancel_for(
    *, person: User, actor: User, reason: str, http: HttpRequest | None = None
) -> int:
    """Cancel every delegation given by or to ``person`` that is in force or still to come
    (offboarding); returns how many."""
    clock = now()
    delegations = list(
        Delegation.objects.select_for_update(of=("self",))
        .filter(Q(delegator=person) | Q(delegate=person), cancelled_at__isnull=True)
        .filter(ends_at__gt=clock)
        .select_related("delegator", "delegate")
        .order_by("pk")
    )
    for delegation in delegations:
        _cancel(delegation, actor=actor, at=clock, reason=reason, http=http)
    return len(delegations)
