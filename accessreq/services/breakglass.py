"""Break-glass: on-call people take emergency-capable access at once, and an approver reviews it.

The use is a request of kind ``break_glass`` that starts ``active`` (the table's emergency edge),
with a grant flagged ``break_glass``. Approvers and security admins are told at once; the review is
due within ``BREAK_GLASS_REVIEW_HOURS`` and an overdue one raises an alert event.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.urls import reverse
from simple_history.utils import bulk_create_with_history

from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import (
    AccessRequest,
    AssignmentReason,
    Entitlement,
    Grant,
    GrantState,
    Operation,
    RequestKind,
    StageAssignment,
)
from accessreq.policy import rule_people, security_admins, stages_for
from accessreq.services.common import MfaContext, now
from accessreq.services.notifications import notify, notify_with_delegates
from accessreq.services.provisioning import provisioning_schedule
from accessreq.services.requests import MIN_JUSTIFICATION, live_grant, sod_conflicts
from accessreq.states import START, RequestState, check_transition
from audit.services import record
from portal.models import User
from portal.roles import is_on_call
from portal.templatetags.gatehouse import duration as human_duration

REVIEW_STAGE = 0


def break_glass_limit(entitlement: Entitlement) -> timedelta:
    return min(timedelta(minutes=settings.BREAK_GLASS_MAX_MINUTES), entitlement.longest_grant)


def break_glass_reviewers(access_request: AccessRequest) -> list[User]:
    """Everyone the entitlement's policy names in any stage, and the security admins; never the
    person who used break-glass."""
    people: dict[int, User] = {}
    for stage in stages_for(access_request.entitlement):
        for person in rule_people(
            stage["rule"],
            beneficiary=access_request.beneficiary,
            entitlement=access_request.entitlement,
        ):
            people[person.pk] = person
    for admin in security_admins():
        people[admin.pk] = admin
    people.pop(access_request.beneficiary_id, None)
    return sorted(people.values(), key=str)


@transaction.atomic
def break_glass_take(
    *,
    actor: User,
    entitlement: Entitlement,
    reason: str,
    incident: str,
    duration: timedelta,
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> AccessRequest:
    """Grant ``actor`` the entitlement now, for at most the break-glass limit."""
    mfa = mfa or MfaContext.from_request(http)
    if not entitlement.emergency_capable or not entitlement.is_active:
        raise NotAllowed("This entitlement has no break-glass access.")
    if not is_on_call(actor):
        raise NotAllowed("Only people on call may use break-glass.")
    if not mfa.fresh:
        raise StepUpRequired("Break-glass needs a fresh second factor: enter a code from your app.")
    reason, incident = reason.strip(), incident.strip()
    if len(reason) < MIN_JUSTIFICATION:
        raise WorkflowError(f"Describe the emergency in at least {MIN_JUSTIFICATION} characters.")
    if not incident:
        raise WorkflowError("Give the incident reference (for example INC-1234).")
    limit = break_glass_limit(entitlement)
    if duration <= timedelta(0) or duration > limit:
        raise WorkflowError(f"Break-glass access lasts at most {human_duration(limit)}.")
    clock = now()
    held = live_grant(actor, entitlement, at=clock)
    if held is not None:
        raise WorkflowError(
            f"You already hold this access until {held.expires_at:%Y-%m-%d %H:%M} UTC."
        )
    User.objects.select_for_update().filter(pk=actor.pk).first()  # see request_submit
    conflicts = sod_conflicts(actor, entitlement, at=clock)
    if conflicts:
        raise WorkflowError("Separation of duties: " + "; ".join(conflicts))
    check_transition(START, RequestState.ACTIVE)
    from accessreq.services.grants import grants_expire_lapsed

    grants_expire_lapsed(beneficiary=actor, entitlement=entitlement, at=clock)
    try:
        with transaction.atomic():
            access_request = AccessRequest.objects.create(
                requester=actor,
                beneficiary=actor,
                entitlement=entitlement,
                kind=RequestKind.BREAK_GLASS,
                justification=reason,
                incident=incident,
                duration=duration,
                state=RequestState.ACTIVE,
                created_at=clock,
                decided_at=clock,
                review_due_at=clock + timedelta(hours=settings.BREAK_GLASS_REVIEW_HOURS),
            )
            grant = Grant.objects.create(
                beneficiary=actor,
                entitlement=entitlement,
                request=access_request,
                state=GrantState.ACTIVE,
                break_glass=True,
                starts_at=clock,
                expires_at=clock + duration,
                created_at=clock,
            )
    except IntegrityError:
        raise WorkflowError("You already hold this access.") from None
    access_request.grant = grant
    access_request.save()
    reviewers = break_glass_reviewers(access_request)
    bulk_create_with_history(
        [
            StageAssignment(
                request=access_request,
                stage=REVIEW_STAGE,
                principal=person,
                reason=AssignmentReason.RULE,
                created_at=clock,
            )
            for person in reviewers
        ],
        StageAssignment,
    )
    record(
        actor=actor,
        action="request.break_glass",
        target=access_request,
        data={
            "to": RequestState.ACTIVE,
            "entitlement": str(entitlement),
            "grant_id": grant.pk,
            "reason": reason,
            "incident": incident,
            "duration_seconds": int(duration.total_seconds()),
            "expires_at": grant.expires_at.isoformat(),
            "review_due_at": access_request.review_due_at.isoformat()
            if access_request.review_due_at
            else None,
            **mfa.as_data(),
        },
        request=http,
    )
    provisioning_schedule(grant, Operation.PROVISION, cause="activated")
    for person in reviewers:
        notify_with_delegates(
            key=f"break-glass:{access_request.pk}:to:{person.pk}",
            recipient=person,
            subject=f"BREAK-GLASS: {actor} took {entitlement}",
            lines=[
                f"{actor} used break-glass to take {entitlement} for {human_duration(duration)}.",
                f"Incident: {incident}",
                f"Reason: {reason}",
                "An approver must review this use within "
                f"{settings.BREAK_GLASS_REVIEW_HOURS} hours.",
            ],
            path=reverse("request_detail", args=[access_request.pk]),
        )
    return access_request


@transaction.atomic
def break_glass_review(
    *,
    actor: User,
    request_id: int,
    comment: str,
    revoke: bool = False,
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> AccessRequest:
    """An approver confirms a break-glass use after the fact, or revokes the access it gave.
    Like an approval of risky access, it needs a fresh second factor."""
    mfa = mfa or MfaContext.from_request(http)
    from accessreq.models import Delegation

    access_request = (
        AccessRequest.objects.select_for_update()
        .select_related("entitlement__system", "entitlement__environment", "beneficiary")
        .filter(pk=request_id, kind=RequestKind.BREAK_GLASS)
        .first()
    )
    if access_request is None or actor.pk == access_request.beneficiary_id:
        raise NotAllowed("No such break-glass use.")
    clock = now()
    assigned = set(
        access_request.assignments.filter(stage=REVIEW_STAGE).values_list("principal", flat=True)
    )
    principal: User | None = actor if actor.pk in assigned else None
    if principal is None:
        delegation = (
            Delegation.objects.in_force(clock)
            .filter(delegate=actor, delegator__in=assigned)
            .exclude(delegator=access_request.beneficiary_id)
            .select_related("delegator")
            .first()
        )
        principal = delegation.delegator if delegation else None
    if principal is None:
        raise NotAllowed("No such break-glass use.")
    if access_request.reviewed_at is not None:
        raise WorkflowError(f"{access_request.reviewed_by} already reviewed this use.")
    if not mfa.fresh:
        raise StepUpRequired(
            "Reviewing break-glass needs a fresh second factor: enter a code from your app."
        )
    comment = comment.strip()
    if not comment:
        raise WorkflowError("Write what you found; the review comment is the record of it.")
    access_request.reviewed_at = clock
    access_request.reviewed_by = actor
    access_request.review_comment = comment
    access_request.save()
    record(
        actor=actor,
        action="request.break_glass_reviewed",
        target=access_request,
        data={
            "comment": comment,
            "revoke": revoke,
            "overdue": access_request.review_overdue_at is not None,
            "on_behalf_of": str(principal) if principal.pk != actor.pk else None,
            "delegate": str(actor) if principal.pk != actor.pk else None,
            **mfa.as_data(),
        },
        request=http,
    )
    live = (GrantState.ACTIVE, GrantState.SCHEDULED)
    grant = (
        Grant.objects.select_for_update().get(pk=access_request.grant_id)
        if revoke and access_request.grant_id
        else None
    )
    if grant is not None and grant.state in live and grant.expires_at > clock:
        # Reviewers may end access they found unjustified even if they don't own the system.
        from accessreq.services.grants import grant_end

        grant_end(
            grant,
            GrantState.REVOKED,
            actor=actor,
            at=clock,
            reason=f"Break-glass review: {comment}",
            http=http,
        )
    notify(
        key=f"break-glass:{access_request.pk}:reviewed",
        recipient=access_request.beneficiary,
        subject=f"Break-glass reviewed: {access_request.entitlement}",
        lines=[
            f"{actor} reviewed your break-glass use of {access_request.entitlement}.",
            f"Comment: {comment}",
            "Your access was revoked." if revoke else "",
        ],
        path=reverse("request_detail", args=[access_request.pk]),
    )
    return access_request


def break_glass_overdue_alerts() -> int:
    """Raise one alert event per break-glass use whose review is overdue."""
    system = User.objects.system_actor()
    done = 0
    with transaction.atomic():
        clock = now()
        overdue = (
            AccessRequest.objects.select_for_update(skip_locked=True)
            .filter(
                kind=RequestKind.BREAK_GLASS,
                reviewed_at__isnull=True,
                review_overdue_at__isnull=True,
                review_due_at__lte=clock,
            )
            .select_related("entitlement__system", "entitlement__environment", "beneficiary")
        )
        for access_request in overdue:
            access_request.review_overdue_at = clock
            access_request.save()
            record(
                actor=system,
                action="alert.break_glass.review_overdue",
                target=access_request,
                data={
                    "beneficiary": str(access_request.beneficiary),
                    "entitlement": str(access_request.entitlement),
                    "incident": access_request.incident,
                    "review_due_at": access_request.review_due_at.isoformat()
                    if access_request.review_due_at
                    else None,
                },
            )
            for admin in security_admins():
                notify(
                    key=f"break-glass:{access_request.pk}:overdue:{admin.pk}",
                    recipient=admin,
                    subject=f"Overdue break-glass review: {access_request.entitlement}",
                    lines=[
                        f"{access_request.beneficiary}'s break-glass use of "
                        f"{access_request.entitlement} (incident {access_request.incident}) has "
                        "not been reviewed in time.",
                    ],
                    path=reverse("request_detail", args=[access_request.pk]),
                )
            done += 1
    return done
