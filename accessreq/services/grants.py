"""Grants: created or extended on approval, activated at their start, expired and revoked.

Access checks never wait for these: :func:`accessreq.selectors.holds_scope` compares the grant's
times with the database clock. The jobs here bring ``state`` up to date, call the connectors and
tell people, and each is safe to run twice or from two workers at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import (
    LIVE_GRANT_STATES,
    AccessRequest,
    Entitlement,
    Grant,
    GrantState,
    Operation,
    RequestKind,
)
from accessreq.services.common import move, now
from accessreq.services.notifications import notify
from accessreq.services.provisioning import provisioning_cancel_setup, provisioning_schedule
from accessreq.states import RequestState
from audit.services import record
from portal.models import User
from portal.templatetags.gatehouse import duration as human_duration


def _grant_data(grant: Grant) -> dict[str, object]:
    return {
        "grant_id": grant.pk,
        "entitlement": str(grant.entitlement),
        "beneficiary": str(grant.beneficiary),
        "beneficiary_id": grant.beneficiary_id,
        "starts_at": grant.starts_at.isoformat(),
        "expires_at": grant.expires_at.isoformat(),
        "break_glass": grant.break_glass,
    }


def grant_from_approval(
    access_request: AccessRequest, *, actor: User, at: datetime, http: HttpRequest | None = None
) -> Grant:
    """Create the grant for an approved request, or extend the grant an extension is for.

    The duration starts when access starts: at approval, or at the requested start time.
    Must run inside the approving transaction with the request locked.
    """
    grant = None
    if access_request.kind == RequestKind.EXTENSION and access_request.grant_id:
        grant = Grant.objects.select_for_update().get(pk=access_request.grant_id)
        if grant.state not in LIVE_GRANT_STATES or grant.expires_at <= at:
            # It ended while the extension waited: the request stops following it (it may
            # still have to be marked expired below) and gets a fresh grant.
            grant = access_request.grant = None
            access_request.save(update_fields=["grant"])
    if grant is None:
        grants_expire_lapsed(
            beneficiary=access_request.beneficiary, entitlement=access_request.entitlement, at=at
        )
        # Access taken while the request waited (break-glass) is extended, as a request for
        # held access would have been; a second live grant can't exist.
        grant = (
            Grant.objects.select_for_update()
            .live()
            .filter(
                beneficiary=access_request.beneficiary_id,
                entitlement=access_request.entitlement_id,
                expires_at__gt=at,
            )
            .first()
        )
    if grant is not None:
        previous = grant.expires_at
        ceiling = at + access_request.entitlement.longest_grant
        grant.expires_at = min(max(previous, at) + access_request.duration, ceiling)
        grant.expires_at = max(grant.expires_at, previous)
        grant.warned_24h_for = grant.warned_1h_for = None
        grant.save()
        access_request.grant = grant
        move(
            access_request,
            RequestState.ACTIVE,
            actor=actor,
            action="grant.extended",
            data={**_grant_data(grant), "previous_expires_at": previous.isoformat()},
            http=http,
        )
        return grant
    starts_at = max(at, access_request.requested_start or at)
    grant = Grant.objects.create(
        beneficiary=access_request.beneficiary,
        entitlement=access_request.entitlement,
        request=access_request,
        state=GrantState.SCHEDULED if starts_at > at else GrantState.ACTIVE,
        break_glass=access_request.kind == RequestKind.BREAK_GLASS,
        starts_at=starts_at,
        expires_at=starts_at + access_request.duration,
        created_at=at,
    )
    access_request.grant = grant
    access_request.save()
    if grant.state == GrantState.ACTIVE:
        _activate(grant, access_request, actor=actor, http=http)
    return grant


def grant_birthright(
    *, beneficiary: User, entitlement: Entitlement, duration: timedelta, team_name: str
) -> Grant | None:
    """Give ``beneficiary`` a team's birthright access: a request by the system actor that is
    approved at once (no stage: the security admin who named the access for the team decided),
    then the grant as for any approval, so the connector, expiry and reviews treat it the same.
    Access they already hold is left as it is; ``None`` if nothing was granted."""
    clock = now()
    if not entitlement.is_active or not beneficiary.is_active:
        return None
    from accessreq.services.requests import live_grant

    if live_grant(beneficiary, entitlement, at=clock) is not None:
        return None
    system = User.objects.system_actor()
    access_request = AccessRequest.objects.create(
        requester=system,
        beneficiary=beneficiary,
        entitlement=entitlement,
        kind=RequestKind.BIRTHRIGHT,
        justification=f"Birthright access of the team {team_name}.",
        duration=min(duration, entitlement.longest_grant),
        state=RequestState.APPROVED,
        created_at=clock,
        decided_at=clock,
    )
    record(
        actor=system,
        action="request.birthright",
        target=access_request,
        data={
            "to": RequestState.APPROVED,
            "kind": RequestKind.BIRTHRIGHT,
            "team": team_name,
            "entitlement": str(entitlement),
            "beneficiary": str(beneficiary),
            "beneficiary_id": beneficiary.pk,
            "duration_seconds": int(access_request.duration.total_seconds()),
        },
    )
    return grant_from_approval(access_request, actor=system, at=clock)


def grants_expire_lapsed(*, beneficiary: User, entitlement: Entitlement, at: datetime) -> int:
    """Expire the beneficiary's grants of ``entitlement`` that ended before the expiry job
    caught up, so a new grant for it can start. Call inside the transaction that creates it."""
    lapsed = (
        Grant.objects.select_for_update()
        .filter(
            beneficiary=beneficiary,
            entitlement=entitlement,
            state__in=LIVE_GRANT_STATES,
            expires_at__lte=at,
        )
        .select_related("entitlement__system", "entitlement__environment", "beneficiary")
    )
    system = User.objects.system_actor()
    done = 0
    for grant in lapsed:
        grant_end(grant, GrantState.EXPIRED, actor=system, at=at)
        done += 1
    return done


def _activate(
    grant: Grant, access_request: AccessRequest, *, actor: User, http: HttpRequest | None = None
) -> None:
    move(access_request, RequestState.ACTIVE, actor=actor, data=_grant_data(grant), http=http)
    provisioning_schedule(grant, Operation.PROVISION, cause="activated")


def grants_activate_due(*, batch: int = 200) -> int:
    """Activate scheduled grants whose start time has come."""
    system = User.objects.system_actor()
    done = 0
    while True:
        with transaction.atomic():
            clock = now()
            grants = list(
                Grant.objects.select_for_update(skip_locked=True)
                .filter(state=GrantState.SCHEDULED, starts_at__lte=clock)
                .select_related("entitlement__system", "entitlement__environment", "beneficiary")
                .order_by("starts_at")[:batch]
            )
            if not grants:
                return done
            for grant in grants:
                grant.state = GrantState.ACTIVE
                grant.save()
                access_request = AccessRequest.objects.select_for_update().get(pk=grant.request_id)
                _activate(grant, access_request, actor=system)
                done += 1


def grants_expire_due(*, batch: int = 200) -> int:
    """Mark grants past ``expires_at`` expired, once each, even with two workers running."""
    system = User.objects.system_actor()
    done = 0
    while True:
        with transaction.atomic():
            clock = now()
            grants = list(
                Grant.objects.select_for_update(skip_locked=True)
                .filter(state__in=LIVE_GRANT_STATES, expires_at__lte=clock)
                .select_related("entitlement__system", "entitlement__environment", "beneficiary")
                .order_by("expires_at")[:batch]
            )
            if not grants:
                return done
            for grant in grants:
                grant_end(grant, GrantState.EXPIRED, actor=system, at=clock)
                done += 1


def grant_end(
    grant: Grant,
    state: str,
    *,
    actor: User,
    at: datetime,
    reason: str = "",
    http: HttpRequest | None = None,
) -> None:
    """Move a locked live grant and its open requests to ``expired`` or ``revoked``, and tell
    the connector. The one way a grant ends: revocation, expiry, deactivation, break-glass
    reviews and campaign decisions all come here after their own permission checks, inside the
    caller's transaction (the caller writes its own audit event; the request moves write theirs)."""
    was_active = grant.state == GrantState.ACTIVE
    grant.state = GrantState(state)
    grant.ended_at = at
    if state == GrantState.REVOKED:
        grant.revoked_at = at
        grant.revoked_by = actor
        grant.revoke_reason = reason
    grant.save()
    target = RequestState.EXPIRED if state == GrantState.EXPIRED else RequestState.REVOKED
    linked = (
        AccessRequest.objects.select_for_update()
        .filter(grant=grant, state__in=[RequestState.APPROVED, RequestState.ACTIVE])
        .select_related("entitlement__system", "entitlement__environment", "beneficiary")
        .order_by("pk")
    )
    for access_request in linked:
        if access_request.state == RequestState.APPROVED and target == RequestState.EXPIRED:
            # A scheduled grant that ends before the start job ran still passes through active,
            # so every request follows the state table.
            move(access_request, RequestState.ACTIVE, actor=actor, data=_grant_data(grant))
        move(
            access_request,
            target,
            actor=actor,
            data={**_grant_data(grant), "reason": reason},
            http=http,
        )
    provisioning_cancel_setup(grant, actor=actor)
    if was_active:
        provisioning_schedule(grant, Operation.DEPROVISION, cause=state)
    else:
        # Never set up, so there is nothing to remove.
        grant.deprovisioned_at = at
        grant.save(update_fields=["deprovisioned_at"])


@transaction.atomic
def grant_revoke(
    *, actor: User, grant_id: int, reason: str, http: HttpRequest | None = None
) -> Grant:
    """End a grant now. The holder, the entitlement's or system's owners and security admins may;
    the connector is told, and the removal is confirmed only when it confirms."""
    if not Grant.objects.revocable_by(actor).filter(pk=grant_id).exists():
        raise NotAllowed("No such grant.")
    grant = (
        Grant.objects.select_for_update()
        .select_related("entitlement__system", "entitlement__environment", "beneficiary")
        .get(pk=grant_id)
    )
    reason = reason.strip()
    if not reason:
        raise WorkflowError("Give a reason for revoking; the holder and auditors will see it.")
    clock = now()
    if grant.state not in LIVE_GRANT_STATES or grant.expires_at <= clock:
        # A live grant past its end has expired even if the expiry job has not caught up.
        ended = (
            grant.get_state_display().lower() if grant.state not in LIVE_GRANT_STATES else "expired"
        )
        raise WorkflowError(f"This access has already ended ({ended}).")
    grant_end(grant, GrantState.REVOKED, actor=actor, at=clock, reason=reason, http=http)
    if actor.pk != grant.beneficiary_id:
        notify(
            key=f"grant:{grant.pk}:revoked",
            recipient=grant.beneficiary,
            subject=f"Access revoked: {grant.entitlement}",
            lines=[f"{actor} revoked your access to {grant.entitlement}.", f"Reason: {reason}"],
            path=reverse("my_access"),
        )
    return grant


def grants_revoke_for_person(
    *, beneficiary: User, actor: User, reason: str, http: HttpRequest | None = None
) -> int:
    """Revoke everything ``beneficiary`` holds or is about to hold (offboarding). Called by the
    deactivation service inside its transaction; connectors are told as for any revocation."""
    clock = now()
    grants = (
        Grant.objects.select_for_update()
        .filter(beneficiary=beneficiary, state__in=LIVE_GRANT_STATES)
        .select_related("entitlement__system", "entitlement__environment", "beneficiary")
        .order_by("pk")
    )
    count = 0
    for grant in grants:
        grant_end(grant, GrantState.REVOKED, actor=actor, at=clock, reason=reason, http=http)
        count += 1
    return count


WARNINGS = (
    ("24h", timedelta(hours=24), "warned_24h_for"),
    ("1h", timedelta(hours=1), "warned_1h_for"),
)


def expiry_warnings_send() -> int:
    """Tell holders 24 hours and 1 hour before a grant ends, once per end time."""
    sent = 0
    with transaction.atomic():
        clock = now()
        for label, ahead, field in WARNINGS:
            due = (
                Grant.objects.select_for_update(skip_locked=True)
                .filter(
                    state=GrantState.ACTIVE, expires_at__gt=clock, expires_at__lte=clock + ahead
                )
                .select_related("entitlement__system", "entitlement__environment", "beneficiary")
            )
            for grant in due:
                if getattr(grant, field) == grant.expires_at:
                    continue
                if grant.expires_at - grant.starts_at <= ahead:
                    # A grant no longer than the warning's lead time was just granted with its
                    # end time: one shorter than a day gets only the 1-hour warning, one of an
                    # hour or less none.
                    continue
                setattr(grant, field, grant.expires_at)
                grant.save(update_fields=[field])
                left = human_duration(grant.expires_at - clock)
                notify(
                    key=f"grant:{grant.pk}:expiry:{label}:{grant.expires_at.isoformat()}",
                    recipient=grant.beneficiary,
                    subject=f"Access ends in {left}: {grant.entitlement}",
                    lines=[
                        f"Your access to {grant.entitlement} ends at "
                        f"{grant.expires_at:%Y-%m-%d %H:%M} UTC ({left} from now).",
                        "To keep it, request an extension with one click (it goes through "
                        "approval again):",
                    ],
                    path=reverse("grant_extend", args=[grant.pk]),
                )
                sent += 1
    return sent


# Grant ids this process stamped as used, and when: repeat uses within USE_RESOLUTION don't
# reach the database. Bounded: emptied when full (the cost is one extra conditional UPDATE each).
USE_RESOLUTION = timedelta(hours=1)
_USE_STAMPS_MAX = 10_000
_used_recently: dict[int, datetime] = {}


def grant_touch(grant_id: int) -> None:
    """Note that the grant allowed an authorization, at most once an hour per grant: a usage
    stamp, not a state change. One conditional UPDATE of ``last_used_at`` (a field kept out of
    the grant's history) and no audit event: the decision it allowed is the ledger's record.
    ``last_used_at`` is therefore up to about an hour older than the last use; the app clock is
    close enough for that and saves a query."""
    clock = timezone.now()
    stamped = _used_recently.get(grant_id)
    if stamped is not None and clock - stamped < USE_RESOLUTION:
        return
    if len(_used_recently) >= _USE_STAMPS_MAX:
        _used_recently.clear()
    Grant.objects.filter(pk=grant_id).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=clock - USE_RESOLUTION)
    ).update(last_used_at=clock)
    _used_recently[grant_id] = clock
