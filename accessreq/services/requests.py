"""Requests: submit, approve, deny, withdraw, time out and escalate.

Every function locks the request row before it reads its state, so two approvers, an approver and
a withdrawal, or two sweeps never act on a stale state. The database constraints (one pending
request per beneficiary and entitlement, one decision per person per request) back this up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.urls import reverse
from simple_history.utils import bulk_create_with_history

from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import (
    AccessRequest,
    Approval,
    AssignmentReason,
    ConflictRule,
    Decision,
    Entitlement,
    Grant,
    RequestKind,
    StageAssignment,
)
from accessreq.policy import (
    STEP_UP_TIERS,
    conflicted,
    decides_for,
    security_admins,
    stage_approvers,
    stages_for,
)
from accessreq.services.common import MfaContext, move, now
from accessreq.services.notifications import notify, notify_with_delegates
from accessreq.states import START, RequestState, check_transition
from audit.services import record
from portal.models import User

MIN_JUSTIFICATION = 20
LATEST_START = timedelta(days=30)
# A start a few minutes in the past is "now" (the form was open a while), not an error.
START_GRACE = timedelta(minutes=5)


def may_request_for(actor: User, beneficiary: User) -> bool:
    """People request for themselves, managers for their reports, owners for service accounts."""
    if actor.pk == beneficiary.pk:
        return True
    if beneficiary.kind == User.Kind.HUMAN:
        return beneficiary.manager_id == actor.pk
    if beneficiary.kind == User.Kind.SERVICE:
        return beneficiary.owners.filter(pk=actor.pk).exists()
    return False


def sod_conflicts(
    beneficiary: User, entitlement: Entitlement, *, at: datetime, include_pending: bool = True
) -> list[str]:
    """Reasons the beneficiary may not hold ``entitlement``: conflict rules naming it together
    with something they hold now or have asked for."""
    rules = ConflictRule.objects.filter(Q(first=entitlement) | Q(second=entitlement))
    reasons = []
    for rule in rules.select_related(
        "first__system", "first__environment", "second__system", "second__environment"
    ):
        other = rule.second if rule.first_id == entitlement.pk else rule.first
        holds = Grant.objects.filter(
            beneficiary=beneficiary, entitlement=other, revoked_at__isnull=True, expires_at__gt=at
        ).exists()
        asked = (
            include_pending
            and AccessRequest.objects.filter(
                beneficiary=beneficiary, entitlement=other, state=RequestState.PENDING
            ).exists()
        )
        if holds or asked:
            verb = "holds" if holds else "has requested"
            reasons.append(f"{beneficiary} {verb} {other}, which conflicts: {rule.reason}")
    return reasons


def live_grant(beneficiary: User, entitlement: Entitlement, *, at: datetime) -> Grant | None:
    """The grant through which the beneficiary holds (or will soon hold) this entitlement."""
    return (
        Grant.objects.live()
        .filter(beneficiary=beneficiary, entitlement=entitlement, expires_at__gt=at)
        .first()
    )


@transaction.atomic
def request_submit(
    *,
    actor: User,
    entitlement: Entitlement,
    justification: str,
    duration: timedelta,
    beneficiary: User | None = None,
    ticket: str = "",
    requested_start: datetime | None = None,
    http: HttpRequest | None = None,
) -> AccessRequest:
    """Create a pending request (an extension if the beneficiary already holds the access),
    freeze its policy, and ask the first stage's approvers."""
    beneficiary = beneficiary or actor
    clock = now()
    if not entitlement.is_active:
        raise WorkflowError("This entitlement can no longer be requested.")
    if not beneficiary.is_active or beneficiary.kind == User.Kind.SYSTEM:
        raise WorkflowError(f"{beneficiary} can't receive access.")
    if not may_request_for(actor, beneficiary):
        raise WorkflowError(
            "You can request access for yourself, for people who report to you, "
            "and for service accounts you own."
        )
    justification = justification.strip()
    if len(justification) < MIN_JUSTIFICATION:
        raise WorkflowError(
            f"Explain why in at least {MIN_JUSTIFICATION} characters, so approvers can decide."
        )
    ticket = ticket.strip()
    if entitlement.ticket_required and not ticket:
        raise WorkflowError("This entitlement needs a ticket reference.")
    if duration <= timedelta(0):
        raise WorkflowError("Choose a duration.")
    if duration > entitlement.longest_grant:
        raise WorkflowError(
            f"The longest this access can be granted for is {_human(entitlement.longest_grant)}."
        )
    if requested_start is not None:
        if requested_start < clock - START_GRACE:
            raise WorkflowError(
                "The start time is in the past; leave it empty to start on approval."
            )
        if requested_start > clock + LATEST_START:
            raise WorkflowError("The start time must be within the next 30 days.")
    # The beneficiary's row is the lock for separation of duties: two requests (or a request
    # and a break-glass) for conflicting entitlements check one after the other.
    User.objects.select_for_update().filter(pk=beneficiary.pk).first()
    conflicts = sod_conflicts(beneficiary, entitlement, at=clock)
    if conflicts:
        raise WorkflowError("Separation of duties: " + "; ".join(conflicts))

    stages = stages_for(entitlement)
    for stage in stages:
        if not stage_approvers(
            stage["rule"], requester=actor, beneficiary=beneficiary, entitlement=entitlement
        ).people:
            raise WorkflowError(
                f"Nobody can approve stage {stage['position']} ({stage['rule_label']}) of this "
                "request. Ask a security admin to name owners for this entitlement."
            )

    held = live_grant(beneficiary, entitlement, at=clock)
    check_transition(START, RequestState.PENDING)
    try:
        with transaction.atomic():
            access_request = AccessRequest.objects.create(
                requester=actor,
                beneficiary=beneficiary,
                entitlement=entitlement,
                kind=RequestKind.EXTENSION if held else RequestKind.NEW,
                grant=held,
                justification=justification,
                ticket=ticket,
                duration=duration,
                requested_start=None if held else requested_start,
                state=RequestState.PENDING,
                stages=stages,
                current_stage=1,
                stage_opened_at=clock,
                created_at=clock,
                timeout_at=clock + timedelta(days=settings.REQUEST_TIMEOUT_DAYS),
            )
    except IntegrityError:
        raise WorkflowError(
            f"{beneficiary} already has a pending request for {entitlement}; "
            "withdraw it or wait for its decision."
        ) from None
    record(
        actor=actor,
        action="request.submitted",
        target=access_request,
        data={
            "to": RequestState.PENDING,
            "kind": access_request.kind,
            "entitlement": str(entitlement),
            "beneficiary": str(beneficiary),
            "beneficiary_id": beneficiary.pk,
            "on_behalf": actor.pk != beneficiary.pk,
            "duration_seconds": int(duration.total_seconds()),
            "requested_start": requested_start.isoformat() if requested_start else None,
            "ticket": ticket,
            "extends_grant": held.pk if held else None,
            "stages": [
                {k: s[k] for k in ("position", "rule", "quorum", "step_up")} for s in stages
            ],
        },
        request=http,
    )
    _open_stage(access_request, 1, at=clock)
    return access_request


def _human(value: timedelta) -> str:
    from portal.templatetags.gatehouse import duration

    return duration(value)


def _open_stage(access_request: AccessRequest, position: int, *, at: datetime) -> None:
    """Assign stage ``position`` to its approvers and tell them."""
    stage = access_request.stage(position)
    assert stage is not None
    people, reason = _stage_people(access_request, stage)
    bulk_create_with_history(
        [
            StageAssignment(
                request=access_request,
                stage=position,
                principal=person,
                reason=reason,
                created_at=at,
            )
            for person in people
        ],
        StageAssignment,
    )
    _ask(access_request, stage, people)


def _stage_people(access_request: AccessRequest, stage: dict[str, Any]) -> tuple[list[User], str]:
    """Who decides ``stage`` now, and why (an AssignmentReason): the rule's active people, minus
    anyone conflicted or who already decided an earlier stage (nobody satisfies two); when that
    leaves nobody, the security admins, as when the rule names nobody."""
    approvers = stage_approvers(
        stage["rule"],
        requester=access_request.requester,
        beneficiary=access_request.beneficiary,
        entitlement=access_request.entitlement,
    )
    used = _principals_used(access_request)
    people = [p for p in approvers.people if p.pk not in used]
    if people:
        return people, approvers.reason
    excluded = used | conflicted(access_request.requester, access_request.beneficiary)
    return [p for p in security_admins() if p.pk not in excluded], AssignmentReason.FALLBACK


def _ask(access_request: AccessRequest, stage: dict[str, Any], people: list[User]) -> None:
    """Tell ``people`` (and their delegates) that ``stage`` of the request waits for them."""
    position = stage["position"]
    kind = "extension of" if access_request.kind == RequestKind.EXTENSION else "access to"
    for person in people:
        notify_with_delegates(
            key=f"request:{access_request.pk}:stage:{position}:principal:{person.pk}",
            recipient=person,
            subject=f"Approval needed: {access_request.entitlement}",
            lines=[
                f"{access_request.requester} asks for {kind} {access_request.entitlement} "
                f"for {access_request.beneficiary}, for {_human(access_request.duration)}.",
                f"Stage {position} of {len(access_request.stages)}: {stage['rule_label']}.",
                f"Reason: {access_request.justification}",
            ],
            path=reverse("approvals"),
        )


def _principals_used(access_request: AccessRequest) -> set[int]:
    """Everyone who has decided, or been stood in for, on this request."""
    used: set[int] = set()
    for approver, principal in access_request.approvals.values_list("approver", "on_behalf_of"):
        used.add(approver)
        if principal:
            used.add(principal)
    return used


def _lock(request_id: int) -> AccessRequest:
    access_request = (
        AccessRequest.objects.select_for_update()
        .filter(pk=request_id)
        .select_related(
            "entitlement__system", "entitlement__environment", "requester", "beneficiary"
        )
        .first()
    )
    if access_request is None:
        raise NotAllowed("No such request.")
    return access_request


def deciding_principal(access_request: AccessRequest, actor: User, *, at: datetime) -> User | None:
    """Whom ``actor`` would decide the current stage for: themself if assigned, else the
    assigned approver they stand in for as a delegate; None if they may not decide it."""
    assigned = set(
        StageAssignment.objects.filter(
            request=access_request, stage=access_request.current_stage
        ).values_list("principal", flat=True)
    )
    return decides_for(
        actor,
        assigned=assigned,
        used=_principals_used(access_request),
        excluded=conflicted(access_request.requester, access_request.beneficiary),
        at=at,
    )


def requires_step_up(access_request: AccessRequest) -> bool:
    """Deciding the current stage needs a fresh second factor: the stage says so, or the
    entitlement is high or critical tier whatever its policy says."""
    stage = access_request.stage(access_request.current_stage) or {}
    tier = access_request.entitlement.environment.risk_tier
    return bool(stage.get("step_up")) or tier in STEP_UP_TIERS


def _decide_checks(
    access_request: AccessRequest, actor: User, mfa: MfaContext, at: datetime
) -> tuple[User, dict[str, Any]]:
    if access_request.state != RequestState.PENDING:
        if access_request.approvals.filter(approver=actor).exists() or deciding_principal(
            access_request, actor, at=at
        ):
            raise WorkflowError(
                "This request is no longer pending: it is "
                f"{access_request.get_state_display().lower()}."
            )
        raise NotAllowed("No such request.")
    if actor.pk in conflicted(access_request.requester, access_request.beneficiary):
        raise NotAllowed("Nobody decides their own request.")
    if access_request.approvals.filter(approver=actor).exists():
        raise WorkflowError("You have already decided this request.")
    principal = deciding_principal(access_request, actor, at=at)
    if principal is None:
        raise NotAllowed("This request is not waiting for you.")
    stage = access_request.stage(access_request.current_stage)
    assert stage is not None
    if requires_step_up(access_request) and not mfa.fresh:
        raise StepUpRequired(
            "This request needs a fresh second factor: enter a code from your authenticator app."
        )
    if not access_request.entitlement.is_active:
        raise WorkflowError("This entitlement was withdrawn from the catalog; deny the request.")
    if not access_request.beneficiary.is_active:
        raise WorkflowError(f"{access_request.beneficiary}'s account is deactivated; deny it.")
    return principal, stage


@transaction.atomic
def request_approve(
    *,
    actor: User,
    request_id: int,
    comment: str = "",
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> AccessRequest:
    """Record ``actor``'s approval of the current stage; when the stage reaches its quorum, open
    the next one or, after the last, approve the request and create (or extend) the grant."""
    mfa = mfa or MfaContext.from_request(http)
    access_request = _lock(request_id)
    clock = now()
    principal, stage = _decide_checks(access_request, actor, mfa, clock)
    delegate = principal.pk != actor.pk
    Approval.objects.create(
        request=access_request,
        stage=stage["position"],
        approver=actor,
        on_behalf_of=principal if delegate else None,
        decision=Decision.APPROVE,
        comment=comment.strip(),
        mfa_method=mfa.method,
        mfa_age_seconds=mfa.age_seconds,
        decided_at=clock,
    )
    approvals = access_request.approvals.filter(
        stage=stage["position"], decision=Decision.APPROVE
    ).count()
    complete = approvals >= stage["quorum"]
    record(
        actor=actor,
        action="request.approval_given",
        target=access_request,
        data={
            "stage": stage["position"],
            "stage_rule": stage["rule"],
            "approvals": approvals,
            "quorum": stage["quorum"],
            "stage_complete": complete,
            "comment": comment.strip(),
            "on_behalf_of": str(principal) if delegate else None,
            "on_behalf_of_id": principal.pk if delegate else None,
            "delegate": str(actor) if delegate else None,
            "beneficiary": str(access_request.beneficiary),
            **mfa.as_data(),
        },
        request=http,
    )
    if not complete:
        return access_request
    if stage["position"] < len(access_request.stages):
        access_request.current_stage = stage["position"] + 1
        access_request.stage_opened_at = clock
        access_request.escalated_at = None
        access_request.save()
        _open_stage(access_request, access_request.current_stage, at=clock)
        return access_request

    from accessreq.services.grants import grant_from_approval

    User.objects.select_for_update().filter(pk=access_request.beneficiary_id).first()
    held_conflicts = sod_conflicts(
        access_request.beneficiary, access_request.entitlement, at=clock, include_pending=False
    )
    if held_conflicts:
        raise WorkflowError(
            "Separation of duties: " + "; ".join(held_conflicts) + ". Deny this request."
        )
    access_request.decided_at = clock
    move(
        access_request,
        RequestState.APPROVED,
        actor=actor,
        data={"stages": len(access_request.stages)},
        http=http,
    )
    grant_from_approval(access_request, actor=actor, at=clock, http=http)
    notify(
        key=f"request:{access_request.pk}:approved",
        recipient=access_request.requester,
        subject=f"Approved: {access_request.entitlement}",
        lines=[
            f"Your request for {access_request.entitlement} for {access_request.beneficiary} "
            "was approved.",
            _grant_line(access_request),
        ],
        path=reverse("request_detail", args=[access_request.pk]),
    )
    _tell_beneficiary(access_request, "approved", [_grant_line(access_request)])
    return access_request


def _tell_beneficiary(access_request: AccessRequest, outcome: str, lines: list[str]) -> None:
    """A request made for someone else: they (or a service account's owners) hear the outcome."""
    if access_request.beneficiary_id == access_request.requester_id:
        return
    notify(
        key=f"request:{access_request.pk}:{outcome}:beneficiary",
        recipient=access_request.beneficiary,
        subject=f"{outcome.capitalize()}: {access_request.entitlement}",
        lines=[
            f"{access_request.requester} requested {access_request.entitlement} for "
            f"{access_request.beneficiary}; it was {outcome}.",
            *lines,
        ],
        path=reverse("request_detail", args=[access_request.pk]),
    )


def _grant_line(access_request: AccessRequest) -> str:
    grant = access_request.grant
    if grant is None:
        return ""
    return (
        f"Access from {grant.starts_at:%Y-%m-%d %H:%M} UTC "
        f"until {grant.expires_at:%Y-%m-%d %H:%M} UTC."
    )


@transaction.atomic
def request_deny(
    *,
    actor: User,
    request_id: int,
    comment: str,
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> AccessRequest:
    """Deny the request at its current stage; a denial needs a comment the requester will read."""
    mfa = mfa or MfaContext.from_request(http)
    comment = comment.strip()
    access_request = _lock(request_id)
    clock = now()
    # Deny needs no step-up: refusing access can't widen it.
    principal, stage = _decide_checks(access_request, actor, MfaContext("n/a", 0), clock)
    if not comment:
        raise WorkflowError("Say why you deny the request; the requester will see your comment.")
    delegate = principal.pk != actor.pk
    Approval.objects.create(
        request=access_request,
        stage=stage["position"],
        approver=actor,
        on_behalf_of=principal if delegate else None,
        decision=Decision.DENY,
        comment=comment,
        mfa_method=mfa.method,
        mfa_age_seconds=mfa.age_seconds,
        decided_at=clock,
    )
    access_request.decided_at = clock
    move(
        access_request,
        RequestState.DENIED,
        actor=actor,
        data={
            "stage": stage["position"],
            "comment": comment,
            "on_behalf_of": str(principal) if delegate else None,
            "on_behalf_of_id": principal.pk if delegate else None,
            "delegate": str(actor) if delegate else None,
            **mfa.as_data(),
        },
        http=http,
    )
    notify(
        key=f"request:{access_request.pk}:denied",
        recipient=access_request.requester,
        subject=f"Denied: {access_request.entitlement}",
        lines=[
            f"{actor} denied your request for {access_request.entitlement}.",
            f"Comment: {comment}",
        ],
        path=reverse("request_detail", args=[access_request.pk]),
    )
    _tell_beneficiary(access_request, "denied", [f"Comment: {comment}"])
    return access_request


@transaction.atomic
def request_withdraw(
    *, actor: User, request_id: int, http: HttpRequest | None = None
) -> AccessRequest:
    """The requester (or the beneficiary) takes back a request that is still pending."""
    access_request = _lock(request_id)
    if actor.pk not in (access_request.requester_id, access_request.beneficiary_id):
        raise NotAllowed("No such request.")
    if access_request.state != RequestState.PENDING:
        raise WorkflowError(
            f"Only a pending request can be withdrawn; this one is "
            f"{access_request.get_state_display().lower()}."
        )
    access_request.decided_at = now()
    move(access_request, RequestState.WITHDRAWN, actor=actor, http=http)
    return access_request


@transaction.atomic
def request_reroute(
    *, actor: User, request_id: int, why: str, http: HttpRequest | None = None
) -> bool:
    """Ask the current stage's rule again who decides it, after the people around the request
    changed (a new manager, an approver who left): those it no longer names are taken off the
    stage (escalation assignments stay while the person is active), those it newly names are
    asked. Returns whether anyone changed; a request no longer pending is left alone."""
    access_request = _lock(request_id)
    if access_request.state != RequestState.PENDING:
        return False
    stage = access_request.stage(access_request.current_stage)
    if stage is None:
        return False
    people, reason = _stage_people(access_request, stage)
    wanted = {p.pk for p in people}
    current = list(
        access_request.assignments.filter(stage=stage["position"]).select_related("principal")
    )
    assigned = {a.principal_id for a in current}
    removed = [
        a
        for a in current
        if a.principal_id not in wanted
        and not (a.reason == AssignmentReason.ESCALATION and a.principal.is_active)
    ]
    added = [p for p in people if p.pk not in assigned]
    if not removed and not added:
        return False
    clock = now()
    for assignment in removed:
        assignment.delete()
    bulk_create_with_history(
        [
            StageAssignment(
                request=access_request,
                stage=stage["position"],
                principal=person,
                reason=reason,
                created_at=clock,
            )
            for person in added
        ],
        StageAssignment,
    )
    record(
        actor=actor,
        action="request.rerouted",
        target=access_request,
        data={
            "stage": stage["position"],
            "why": why,
            "removed": [str(a.principal) for a in removed],
            "removed_ids": [a.principal_id for a in removed],
            "added": [str(p) for p in added],
            "added_ids": [p.pk for p in added],
            "reason": reason,
        },
        request=http,
    )
    _ask(access_request, stage, added)
    return True


@transaction.atomic
def requests_withdraw_for_leaver(
    *, person: User, actor: User, reason: str, http: HttpRequest | None = None
) -> int:
    """Withdraw every pending request ``person`` made or would benefit from (offboarding); the
    other party is told. Returns how many."""
    done = 0
    pending = AccessRequest.objects.filter(state=RequestState.PENDING).filter(
        Q(beneficiary=person) | Q(requester=person)
    )
    for request_id in pending.order_by("pk").values_list("pk", flat=True):
        access_request = _lock(request_id)
        if access_request.state != RequestState.PENDING:
            continue
        access_request.decided_at = now()
        move(
            access_request,
            RequestState.WITHDRAWN,
            actor=actor,
            data={"reason": reason, "leaver_id": person.pk},
            http=http,
        )
        other = (
            access_request.requester
            if access_request.beneficiary_id == person.pk
            else access_request.beneficiary
        )
        if other.pk != person.pk and other.kind == User.Kind.HUMAN:
            notify(
                key=f"request:{access_request.pk}:withdrawn_leaver",
                recipient=other,
                subject=f"Withdrawn: {access_request.entitlement}",
                lines=[
                    f"The request for {access_request.entitlement} for "
                    f"{access_request.beneficiary} was withdrawn: {reason}.",
                ],
                path=reverse("request_detail", args=[access_request.pk]),
            )
        done += 1
    return done


def requests_time_out(*, limit: int = 500) -> int:
    """Time out pending requests past their ``timeout_at``; safe to run from two workers."""
    system = User.objects.system_actor()
    done = 0
    while done < limit:
        with transaction.atomic():
            clock = now()
            batch = list(
                AccessRequest.objects.select_for_update(skip_locked=True)
                .filter(state=RequestState.PENDING, timeout_at__lte=clock)
                .select_related(
                    "entitlement__system", "entitlement__environment", "requester", "beneficiary"
                )
                .order_by("timeout_at")[:100]
            )
            if not batch:
                break
            for access_request in batch:
                access_request.decided_at = clock
                move(access_request, RequestState.TIMED_OUT, actor=system)
                notify(
                    key=f"request:{access_request.pk}:timed_out",
                    recipient=access_request.requester,
                    subject=f"Timed out: {access_request.entitlement}",
                    lines=[
                        f"Your request for {access_request.entitlement} got no decision within "
                        f"{settings.REQUEST_TIMEOUT_DAYS} days and has timed out.",
                        "Request it again if you still need it.",
                    ],
                    path=reverse("request_detail", args=[access_request.pk]),
                )
                done += 1
    return done


def requests_escalate(*, limit: int = 500) -> int:
    """Add the security admins to stages that have waited too long, once per stage."""
    system = User.objects.system_actor()
    done = 0
    with transaction.atomic():
        clock = now()
        cutoff = clock - timedelta(hours=settings.REQUEST_ESCALATE_AFTER_HOURS)
        batch = list(
            AccessRequest.objects.select_for_update(skip_locked=True)
            .filter(
                state=RequestState.PENDING,
                escalated_at__isnull=True,
                stage_opened_at__lte=cutoff,
            )
            .select_related(
                "entitlement__system", "entitlement__environment", "requester", "beneficiary"
            )
            .order_by("stage_opened_at")[:limit]
        )
        admins = security_admins()
        for access_request in batch:
            excluded = conflicted(access_request.requester, access_request.beneficiary)
            excluded |= _principals_used(access_request)
            stage = access_request.current_stage
            already = set(
                access_request.assignments.filter(stage=stage).values_list("principal", flat=True)
            )
            added = [a for a in admins if a.pk not in excluded and a.pk not in already]
            bulk_create_with_history(
                [
                    StageAssignment(
                        request=access_request,
                        stage=stage,
                        principal=admin,
                        reason=AssignmentReason.ESCALATION,
                        created_at=clock,
                    )
                    for admin in added
                ],
                StageAssignment,
            )
            access_request.escalated_at = clock
            access_request.save()
            record(
                actor=system,
                action="request.escalated",
                target=access_request,
                data={
                    "stage": stage,
                    "waited_hours": settings.REQUEST_ESCALATE_AFTER_HOURS,
                    "added": [str(a) for a in added],
                },
            )
            for person in list(
                access_request.assignments.filter(stage=stage).select_related("principal")
            ):
                notify_with_delegates(
                    key=f"request:{access_request.pk}:stage:{stage}:escalated:{person.principal_id}",
                    recipient=person.principal,
                    subject=f"Escalated: {access_request.entitlement}",
                    lines=[
                        f"{access_request.requester}'s request for {access_request.entitlement} "
                        f"has waited more than {settings.REQUEST_ESCALATE_AFTER_HOURS} hours at "
                        f"stage {stage}. It was escalated to the security admins.",
                    ],
                    path=reverse("approvals"),
                )
            done += 1
    return done
