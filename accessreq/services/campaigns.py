"""Recertification campaigns: schedule, launch (idempotent, resumable), decide, remind, escalate
and close at the deadline.

A launch creates the campaign row once per template and period (a unique constraint), then adds
review items in batches under the campaign's row lock, moving ``launch_cursor`` past each batch;
items are unique per campaign and grant, so two launches, a retried task or a launch killed midway
and run again never duplicate anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from accessreq.campaign_states import (
    START,
    CampaignState,
    ReviewDecision,
    check_campaign_transition,
    check_item_transition,
)
from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import (
    Approval,
    Cadence,
    Campaign,
    CampaignTemplate,
    DeadlineAction,
    Decision,
    Grant,
    GrantState,
    ReviewerRule,
    ReviewItem,
    RiskTier,
)
from accessreq.policy import STEP_UP_TIERS
from accessreq.services.common import MfaContext, now
from accessreq.services.grants import grant_end
from accessreq.services.notifications import notify
from audit.services import record
from portal.models import User

LAUNCH_BATCH = 2000

_CRON_MONTHS = {
    Cadence.MONTHLY: "*",
    Cadence.QUARTERLY: "1,4,7,10",
    Cadence.SEMIANNUAL: "1,7",
    Cadence.ANNUAL: "1",
}


def campaign_period(cadence: str, at: datetime) -> str:
    """The period label a launch at ``at`` belongs to: 2026-11, 2026-Q4, 2026-H2 or 2026."""
    if cadence == Cadence.MONTHLY:
        return f"{at:%Y-%m}"
    if cadence == Cadence.QUARTERLY:
        return f"{at.year}-Q{(at.month - 1) // 3 + 1}"
    if cadence == Cadence.SEMIANNUAL:
        return f"{at.year}-H{1 if at.month <= 6 else 2}"
    return f"{at.year}"


@transaction.atomic
def template_schedule_sync(template: CampaignTemplate) -> PeriodicTask:
    """Keep the template's beat schedule (django-celery-beat, editable in the admin) in step with
    its cadence: 00:30 UTC on the first day of each period."""
    schedule, _ = CrontabSchedule.objects.get_or_create(
        minute="30",
        hour="0",
        day_of_month="1",
        month_of_year=_CRON_MONTHS[Cadence(template.cadence)],
        day_of_week="*",
        timezone="UTC",
    )
    name = f"Recertification: {template.name} (template {template.pk})"
    task = template.periodic_task
    if task is None:
        task = PeriodicTask(task="accessreq.tasks.campaign_launch_due")
    task.name = name
    task.crontab = schedule
    task.interval = None
    task.args = json.dumps([template.pk])
    task.enabled = template.is_active
    task.save()
    if template.periodic_task_id != task.pk:
        template.periodic_task = task
        template.save(update_fields=["periodic_task"])
    return task


def scope_grants(template: CampaignTemplate, *, at: datetime) -> QuerySet[Grant]:
    """Active grants the template covers, in primary-key order (the launch cursor's order)."""
    grants = Grant.objects.filter(
        state=GrantState.ACTIVE, revoked_at__isnull=True, expires_at__gt=at, starts_at__lte=at
    )
    environments = list(template.environments.values_list("pk", flat=True))
    if environments:
        grants = grants.filter(entitlement__environment__in=environments)
    if template.tiers:
        grants = grants.filter(entitlement__environment__risk_tier__in=template.tiers)
    systems = list(template.systems.values_list("pk", flat=True))
    if systems:
        grants = grants.filter(entitlement__system__in=systems)
    entitlements = list(template.entitlements.values_list("pk", flat=True))
    if entitlements:
        grants = grants.filter(entitlement__in=entitlements)
    if not template.include_service_accounts:
        grants = grants.filter(beneficiary__kind=User.Kind.HUMAN)
    return grants.order_by("pk")


@dataclass
class _Owners:
    entitlement: dict[int, int]
    system: dict[int, int]
    # Owners of service-account holders: they act through the account, so never review it.
    service_owners: dict[int, set[int]]


def _first_owners(grants: list[Grant]) -> _Owners:
    """The first (lowest id) active owner of each entitlement and system in the batch."""
    from accessreq.models import Entitlement, System

    ent_ids = {g.entitlement_id for g in grants}
    sys_ids = {g.entitlement.system_id for g in grants}
    ent: dict[int, int] = {}
    for ent_id, owner_id in (
        Entitlement.owners.through.objects.filter(entitlement_id__in=ent_ids, user__is_active=True)
        .order_by("entitlement_id", "user_id")
        .values_list("entitlement_id", "user_id")
    ):
        ent.setdefault(ent_id, owner_id)
    sysmap: dict[int, int] = {}
    for sys_id, owner_id in (
        System.owners.through.objects.filter(system_id__in=sys_ids, user__is_active=True)
        .order_by("system_id", "user_id")
        .values_list("system_id", "user_id")
    ):
        sysmap.setdefault(sys_id, owner_id)
    service_owners: dict[int, set[int]] = {}
    service_ids = {g.beneficiary_id for g in grants if g.beneficiary.kind == User.Kind.SERVICE}
    if service_ids:
        for account_id, owner_id in User.owners.through.objects.filter(
            from_user_id__in=service_ids
        ).values_list("from_user_id", "to_user_id"):
            service_owners.setdefault(account_id, set()).add(owner_id)
    return _Owners(ent, sysmap, service_owners)


def _reviewer_for(
    template: CampaignTemplate, grant: Grant, owners: _Owners, active: set[int]
) -> tuple[int, str]:
    """The reviewer the rule names, or the fallback when that is nobody, someone inactive, or the
    holder (nobody reviews their own access; the fallback's own access goes to the owner)."""
    holder = grant.beneficiary
    if template.reviewer_rule == ReviewerRule.MANAGER:
        candidate = holder.manager_id
    elif template.reviewer_rule == ReviewerRule.ENTITLEMENT_OWNER:
        candidate = owners.entitlement.get(grant.entitlement_id)
    else:
        candidate = owners.system.get(grant.entitlement.system_id)
    conflicted = {holder.pk} | owners.service_owners.get(holder.pk, set())
    if candidate and candidate not in conflicted and candidate in active:
        return candidate, "rule"
    if template.fallback_reviewer_id in conflicted:
        # The fallback reviewer's own access goes to the template's owner instead.
        return template.owner_id, "fallback"
    return template.fallback_reviewer_id, "fallback"


def _snapshot(grant: Grant, approvers: list[str]) -> dict[str, Any]:
    holder = grant.beneficiary
    entitlement = grant.entitlement
    return {
        "holder": str(holder),
        "holder_email": holder.email,
        "holder_id": holder.pk,
        "holder_status": holder.employment_status,
        "holder_active": holder.is_active,
        "team": holder.team.name if holder.team else "",
        "entitlement": str(entitlement),
        "system": entitlement.system.name,
        "environment": entitlement.environment.name,
        "tier": entitlement.environment.risk_tier,
        "granted_at": grant.starts_at.isoformat(),
        "expires_at": grant.expires_at.isoformat(),
        "granted_by": approvers,
        "break_glass": grant.break_glass,
        "last_used_at": grant.last_used_at.isoformat() if grant.last_used_at else None,
    }


def campaign_launch(
    *, template_id: int, actor: User, at: datetime | None = None, fail_after_batches: int = 0
) -> Campaign:
    """Launch (or finish launching) this period's campaign of the template. Safe to call twice,
    concurrently, or again after a crash: one campaign, one item per grant.

    ``fail_after_batches`` exists for the fault test that kills a launch midway.
    """
    clock = at or now()
    template = CampaignTemplate.objects.select_related("fallback_reviewer").get(pk=template_id)
    period = campaign_period(template.cadence, clock)
    campaign = _campaign_for(template, period, actor=actor, at=clock)
    batches = 0
    while True:
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
            if locked.state != CampaignState.LAUNCHING:
                return locked
            grants = list(
                scope_grants(template, at=locked.launched_at or clock)
                .filter(pk__gt=locked.launch_cursor)
                .select_related(
                    "beneficiary__team", "entitlement__system", "entitlement__environment"
                )[:LAUNCH_BATCH]
            )
            if not grants:
                _open(locked, template, actor=actor)
                return locked
            _add_items(locked, template, grants, at=clock)
            locked.launch_cursor = grants[-1].pk
            locked.save(update_fields=["launch_cursor"])
        batches += 1
        if fail_after_batches and batches >= fail_after_batches:
            raise RuntimeError("launch interrupted (fault test)")


def campaign_launch_for_grants(
    *, template: CampaignTemplate, period: str, grants: list[Grant], actor: User, at: datetime
) -> Campaign:
    """A one-off campaign of ``template`` over ``grants`` (a mover's review), opened at once.
    Launched again for the same period while it is still open, it adds the grants it lacks."""
    campaign = _campaign_for(template, period, actor=actor, at=at)
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if locked.state not in (CampaignState.LAUNCHING, CampaignState.OPEN):
        raise WorkflowError(f"The campaign {locked} is already {locked.get_state_display()}.")
    _add_items(locked, template, grants, at=at)
    if locked.state == CampaignState.LAUNCHING:
        _open(locked, template, actor=actor)
    return locked


def _campaign_for(
    template: CampaignTemplate, period: str, *, actor: User, at: datetime
) -> Campaign:
    existing = Campaign.objects.filter(template=template, period=period).first()
    if existing is not None:
        return existing
    check_campaign_transition(START, CampaignState.SCHEDULED)
    check_campaign_transition(CampaignState.SCHEDULED, CampaignState.LAUNCHING)
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                template=template,
                period=period,
                state=CampaignState.LAUNCHING,
                created_at=at,
                launched_at=at,
                launched_by=actor,
                deadline=at + timedelta(days=template.duration_days),
            )
            record(
                actor=actor,
                action="campaign.launched",
                target=campaign,
                data={
                    "template": template.name,
                    "period": period,
                    "deadline": campaign.deadline.isoformat(),
                },
            )
    except IntegrityError:
        # Another launch created it first; carry on with that one.
        return Campaign.objects.get(template=template, period=period)
    return campaign


def _add_items(
    campaign: Campaign, template: CampaignTemplate, grants: list[Grant], *, at: datetime
) -> None:
    owners = _first_owners(grants)
    candidates = {g.beneficiary.manager_id for g in grants if g.beneficiary.manager_id}
    candidates |= set(owners.entitlement.values()) | set(owners.system.values())
    active = set(
        User.objects.filter(pk__in=candidates, is_active=True, kind=User.Kind.HUMAN).values_list(
            "pk", flat=True
        )
    )
    approvers: dict[int, list[str]] = {}
    for request_id, name, email in (
        Approval.objects.filter(
            request_id__in={g.request_id for g in grants}, decision=Decision.APPROVE
        )
        .order_by("decided_at")
        .values_list("request_id", "approver__display_name", "approver__email")
    ):
        approvers.setdefault(request_id, []).append(name or email)
    items = []
    for grant in grants:
        reviewer, reason = _reviewer_for(template, grant, owners, active)
        items.append(
            ReviewItem(
                campaign=campaign,
                grant=grant,
                reviewer_id=reviewer,
                reviewer_reason=reason,
                snapshot=_snapshot(grant, approvers.get(grant.request_id, [])),
                tier=grant.entitlement.environment.risk_tier,
                system_id=grant.entitlement.system_id,
                team_name=grant.beneficiary.team.name if grant.beneficiary.team else "",
                created_at=at,
            )
        )
    # ignore_conflicts: items a crashed earlier run already wrote are skipped, not duplicated.
    ReviewItem.objects.bulk_create(items, ignore_conflicts=True)


def _open(campaign: Campaign, template: CampaignTemplate, *, actor: User) -> None:
    check_campaign_transition(campaign.state, CampaignState.OPEN)
    campaign.state = CampaignState.OPEN
    campaign.save(update_fields=["state"])
    count = campaign.items.count()
    record(
        actor=actor,
        action="campaign.opened",
        target=campaign,
        data={"items": count, "deadline": campaign.deadline.isoformat()},
    )
    reviewers = (
        User.objects.filter(review_items__campaign=campaign)
        .distinct()
        .order_by("pk")
        .only("pk", "email", "display_name", "kind", "is_active")
    )
    for reviewer in reviewers:
        notify(
            key=f"campaign:{campaign.pk}:opened:{reviewer.pk}",
            recipient=reviewer,
            subject=f"Access review: {campaign}",
            lines=[
                f"Please review who still needs their access by {campaign.deadline:%Y-%m-%d} "
                "UTC. Certify what is still needed and revoke the rest.",
            ],
            path=reverse("my_reviews"),
        )


# --- Decisions ---------------------------------------------------------------------------------


def _lock_item(actor: User, item_id: int) -> ReviewItem:
    item = (
        ReviewItem.objects.select_for_update()
        .filter(pk=item_id, reviewer=actor)
        .select_related("campaign__template", "grant__entitlement__environment")
        .first()
    )
    if item is None:
        raise NotAllowed("No such review item.")
    if item.campaign.state != CampaignState.OPEN:
        raise WorkflowError(
            f"This campaign is {item.campaign.get_state_display().lower()}; "
            "decisions are no longer accepted."
        )
    if item.decision != ReviewDecision.PENDING:
        raise WorkflowError(f"This item was already decided: {item.get_decision_display()}.")
    if (
        item.grant.beneficiary_id == actor.pk
        or item.grant.beneficiary.owners.filter(pk=actor.pk).exists()
    ):
        raise NotAllowed("Nobody reviews their own access (or a service account they own).")
    return item


def item_needs_step_up(item: ReviewItem) -> bool:
    return item.tier in STEP_UP_TIERS


@transaction.atomic
def item_decide(
    *,
    actor: User,
    item_id: int,
    decision: str,
    comment: str = "",
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> ReviewItem:
    """Certify or revoke one item. Revoking needs a reason and ends the grant through the
    workflow (connector included); high and critical items need a fresh second factor."""
    mfa = mfa or MfaContext.from_request(http)
    item = _lock_item(actor, item_id)
    comment = comment.strip()
    if decision not in (ReviewDecision.CERTIFIED, ReviewDecision.REVOKED):
        raise WorkflowError("Choose certify or revoke.")
    if decision == ReviewDecision.REVOKED and not comment:
        raise WorkflowError("Say why the access should be revoked; the holder will see it.")
    if item_needs_step_up(item) and not mfa.fresh:
        raise StepUpRequired(
            "High and critical access needs a fresh second factor: enter a code from your app."
        )
    transition = check_item_transition(item.decision, decision)
    clock = now()
    item.decision = decision
    item.decided_by = actor
    item.decided_at = clock
    item.comment = comment
    item.mfa_method = mfa.method
    item.mfa_age_seconds = mfa.age_seconds
    item.save()
    record(
        actor=actor,
        action=transition.action,
        target=item,
        data={
            "campaign": str(item.campaign),
            "campaign_id": item.campaign_id,
            "grant_id": item.grant_id,
            "holder": item.snapshot.get("holder"),
            "entitlement": item.snapshot.get("entitlement"),
            "comment": comment,
            **mfa.as_data(),
        },
        request=http,
    )
    if decision == ReviewDecision.REVOKED:
        grant = Grant.objects.select_for_update().get(pk=item.grant_id)
        if grant.state in (GrantState.ACTIVE, GrantState.SCHEDULED) and grant.expires_at > clock:
            grant_end(
                grant,
                GrantState.REVOKED,
                actor=actor,
                at=clock,
                reason=f"Access review {item.campaign}: {comment}",
                http=http,
            )
    return item


def items_bulk_certify(
    *, actor: User, item_ids: Iterable[int], mfa: MfaContext | None = None, http: Any = None
) -> tuple[list[ReviewItem], list[str]]:
    """Certify several items, each in its own transaction; critical items of a template that
    wants per-item decisions are refused by name. Returns (certified, refusals)."""
    done: list[ReviewItem] = []
    refused: list[str] = []
    for item_id in item_ids:
        item = (
            ReviewItem.objects.filter(pk=item_id, reviewer=actor)
            .select_related("campaign__template")
            .first()
        )
        if item is None:
            refused.append(f"Item #{item_id} is not yours to review.")
            continue
        if item.tier == RiskTier.CRITICAL and item.campaign.template.critical_per_item:
            refused.append(
                f"{item.snapshot.get('holder')} / {item.snapshot.get('entitlement')} is critical "
                "tier: decide it on its own."
            )
            continue
        try:
            done.append(
                item_decide(
                    actor=actor,
                    item_id=item_id,
                    decision=ReviewDecision.CERTIFIED,
                    mfa=mfa,
                    http=http,
                )
            )
        except WorkflowError as error:
            refused.append(f"{item.snapshot.get('holder')}: {error}")
    return done, refused


@transaction.atomic
def item_reassign(
    *,
    actor: User,
    item_id: int,
    to: User,
    reason: str,
    http: HttpRequest | None = None,
) -> ReviewItem:
    """Hand an item to another reviewer (never the holder) with a reason; the old item ends
    ``reassigned`` and a new pending one is created for the new reviewer."""
    item = _lock_item(actor, item_id)
    reason = reason.strip()
    if not reason:
        raise WorkflowError("Say why you hand this item on.")
    if to.pk in (actor.pk, item.grant.beneficiary_id):
        raise WorkflowError("Choose someone else: not yourself and not the person who holds it.")
    if not to.is_active or to.kind != User.Kind.HUMAN:
        raise WorkflowError(f"{to} can't review: the account is not an active person.")
    return _hand_on(item, to=to, actor=actor, reason=reason, http=http)


def _hand_on(
    item: ReviewItem, *, to: User, actor: User, reason: str, http: HttpRequest | None = None
) -> ReviewItem:
    """End the locked pending ``item`` as reassigned and open its copy for ``to``."""
    transition = check_item_transition(item.decision, ReviewDecision.REASSIGNED)
    clock = now()
    item.decision = ReviewDecision.REASSIGNED
    item.decided_by = actor
    item.decided_at = clock
    item.comment = reason
    item.save()
    new = ReviewItem.objects.create(
        campaign=item.campaign,
        grant=item.grant,
        reviewer=to,
        reviewer_reason="reassigned",
        snapshot=item.snapshot,
        tier=item.tier,
        system_id=item.system_id,
        team_name=item.team_name,
        reassigned_from=item,
        created_at=clock,
    )
    record(
        actor=actor,
        action=transition.action,
        target=item,
        data={
            "campaign_id": item.campaign_id,
            "grant_id": item.grant_id,
            "to": str(to),
            "to_id": to.pk,
            "new_item_id": new.pk,
            "reason": reason,
        },
        request=http,
    )
    notify(
        key=f"review:{new.pk}:assigned",
        recipient=to,
        subject=f"Access review handed to you: {item.campaign}",
        lines=[f"{actor} asked you to review {item.snapshot.get('holder')}'s access.", reason],
        path=reverse("my_reviews"),
    )
    return new


def items_reassign_from(*, person: User, actor: User, reason: str) -> int:
    """Hand every pending item ``person`` reviews in an open campaign to someone who can still
    review it (offboarding): their manager, else the template's fallback reviewer, else its
    owner, else a security admin; never the holder or an owner of the account it is. Items
    nobody could take stay where they are (the deadline action still applies). Returns how many
    moved."""
    from accessreq.policy import security_admins

    items = (
        ReviewItem.objects.select_for_update(of=("self",))
        .filter(
            reviewer=person, decision=ReviewDecision.PENDING, campaign__state=CampaignState.OPEN
        )
        .select_related(
            "campaign__template__fallback_reviewer",
            "campaign__template__owner",
            "grant__beneficiary",
        )
        .order_by("pk")
    )
    admins = security_admins()
    manager = person.manager
    moved = 0
    for item in items:
        template = item.campaign.template
        holder = item.grant.beneficiary
        conflicted = {person.pk, holder.pk}
        if holder.kind == User.Kind.SERVICE:  # its owners act through it, so never review it
            conflicted |= set(holder.owners.values_list("pk", flat=True))
        candidates = [manager, template.fallback_reviewer, template.owner, *admins]
        to = next(
            (
                c
                for c in candidates
                if c is not None
                and c.pk not in conflicted
                and c.is_active
                and c.kind == User.Kind.HUMAN
            ),
            None,
        )
        if to is None:
            continue
        _hand_on(item, to=to, actor=actor, reason=reason)
        moved += 1
    return moved


# --- Reminders, escalation, deadline -----------------------------------------------------------


def reminders_send(*, today: date | None = None) -> int:
    """Remind reviewers with pending items on the template's days; once per reviewer and day.
    Escalate items still pending N days after the deadline to the reviewer's manager, once."""
    clock = now()
    today = today or clock.date()
    sent = 0
    for campaign in Campaign.objects.filter(state=CampaignState.OPEN).select_related("template"):
        template = campaign.template
        days_left = (campaign.deadline.date() - today).days
        due = days_left in set(template.reminder_days or []) or days_left == 0
        due = due or (days_left < 0 and template.remind_daily_after)
        if due:
            pending = (
                User.objects.filter(
                    review_items__campaign=campaign,
                    review_items__decision=ReviewDecision.PENDING,
                )
                .distinct()
                .order_by("pk")
            )
            for reviewer in pending:
                made = notify(
                    key=f"campaign:{campaign.pk}:remind:{reviewer.pk}:{today.isoformat()}",
                    recipient=reviewer,
                    subject=f"Reminder: access review {campaign}",
                    lines=[
                        f"You have access to review in {campaign}; the deadline is "
                        f"{campaign.deadline:%Y-%m-%d %H:%M} UTC"
                        + (" (passed)." if days_left < 0 else "."),
                    ],
                    path=reverse("my_reviews"),
                )
                sent += made is not None
        if days_left <= -template.escalate_after_days:
            sent += _escalate(campaign, at=clock)
    return sent


def _escalate(campaign: Campaign, *, at: datetime) -> int:
    system = User.objects.system_actor()
    done = 0
    with transaction.atomic():
        # of=("self",): the manager join is an outer join, which PostgreSQL can't lock.
        items = (
            ReviewItem.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(campaign=campaign, decision=ReviewDecision.PENDING, escalated_at__isnull=True)
            .select_related("reviewer__manager")
        )
        by_reviewer: dict[int, list[ReviewItem]] = {}
        for item in items:
            item.escalated_at = at
            item.save(update_fields=["escalated_at"])
            by_reviewer.setdefault(item.reviewer_id, []).append(item)
        for reviewer_items in by_reviewer.values():
            reviewer = reviewer_items[0].reviewer
            record(
                actor=system,
                action="review.escalated",
                target=campaign,
                data={
                    "reviewer": str(reviewer),
                    "reviewer_id": reviewer.pk,
                    "manager": str(reviewer.manager) if reviewer.manager_id else None,
                    "items": [i.pk for i in reviewer_items],
                },
            )
            recipient = reviewer.manager or campaign.template.owner
            notify(
                key=f"campaign:{campaign.pk}:escalate:{reviewer.pk}",
                recipient=recipient,
                subject=f"Overdue access review: {reviewer} in {campaign}",
                lines=[
                    f"{reviewer} has {len(reviewer_items)} review item(s) in {campaign} still "
                    "undecided after the deadline. Please follow up.",
                ],
                path=reverse("campaign_detail", args=[campaign.pk]),
            )
            done += 1
    return done


def campaigns_close_due() -> int:
    """Close campaigns whose deadline has passed, and finish closes that stopped midway (an
    early close too): apply the deadline action to each pending item once, then close and send
    the owner a summary. Safe to run twice or from two workers."""
    closed = 0
    system = User.objects.system_actor()
    clock = now()
    due = [
        campaign.pk
        for campaign in Campaign.objects.filter(
            Q(state=CampaignState.OPEN, deadline__lte=clock) | Q(state=CampaignState.CLOSING)
        ).select_related("template")
        # Between the deadline and the end of the grace period, reviewers are reminded daily
        # and escalated; the deadline action comes after it.
        if campaign.state == CampaignState.CLOSING
        or campaign.deadline + timedelta(days=campaign.template.grace_days) <= clock
    ]
    for campaign_id in due:
        if campaign_close(campaign_id=campaign_id, actor=system, early=False):
            closed += 1
    return closed


def campaign_close(*, campaign_id: int, actor: User, early: bool, http: Any = None) -> bool:
    """Apply the deadline action to pending items (in batches) and close the campaign. Returns
    False if another run already closed it."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.state == CampaignState.OPEN:
            transition = check_campaign_transition(campaign.state, CampaignState.CLOSING)
            action = "campaign.closed_early" if early else transition.action
            campaign.state = CampaignState.CLOSING
            campaign.save(update_fields=["state"])
            record(
                actor=actor,
                action=action,
                target=campaign,
                data={"deadline": campaign.deadline.isoformat()},
                request=http,
            )
        elif campaign.state != CampaignState.CLOSING:
            return False
    template = CampaignTemplate.objects.get(pk=campaign.template_id)
    while True:
        with transaction.atomic():
            clock = now()
            batch = list(
                ReviewItem.objects.select_for_update(skip_locked=True)
                .filter(campaign_id=campaign_id, decision=ReviewDecision.PENDING)
                .order_by("pk")[:500]
            )
            if not batch:
                break
            for item in batch:
                transition = check_item_transition(item.decision, ReviewDecision.EXPIRED)
                item.decision = ReviewDecision.EXPIRED
                item.decided_at = clock
                item.deadline_action = template.deadline_action
                item.save()
                record(
                    actor=actor,
                    action=transition.action,
                    target=item,
                    data={
                        "campaign_id": campaign_id,
                        "grant_id": item.grant_id,
                        "deadline_action": template.deadline_action,
                    },
                )
                if template.deadline_action == DeadlineAction.REVOKE:
                    grant = Grant.objects.select_for_update().get(pk=item.grant_id)
                    if (
                        grant.state in (GrantState.ACTIVE, GrantState.SCHEDULED)
                        and grant.expires_at > clock
                    ):
                        grant_end(
                            grant,
                            GrantState.REVOKED,
                            actor=actor,
                            at=clock,
                            reason=f"Access review {campaign} not answered by its deadline",
                        )
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
        if campaign.state != CampaignState.CLOSING:
            return False
        if ReviewItem.objects.filter(
            campaign_id=campaign_id, decision=ReviewDecision.PENDING
        ).exists():
            return False  # another worker still holds some; it closes the campaign
        transition = check_campaign_transition(campaign.state, CampaignState.CLOSED)
        counts = dict.fromkeys(ReviewDecision.values, 0)
        for decision in campaign.items.values_list("decision", flat=True):
            counts[decision] += 1
        campaign.state = CampaignState.CLOSED
        campaign.closed_at = now()
        campaign.summary = counts
        campaign.save(update_fields=["state", "closed_at", "summary"])
        record(actor=actor, action=transition.action, target=campaign, data={"counts": counts})
        notify(
            key=f"campaign:{campaign.pk}:closed",
            recipient=template.owner,
            subject=f"Access review closed: {campaign}",
            lines=[
                f"{campaign} is closed.",
                *(f"{ReviewDecision(k).label}: {v}" for k, v in counts.items() if v),
                f"Deadline action for unanswered items: {template.get_deadline_action_display()}.",
            ],
            path=reverse("campaign_detail", args=[campaign.pk]),
        )
    return True


@transaction.atomic
def campaign_cancel(*, campaign_id: int, actor: User, reason: str, http: Any = None) -> Campaign:
    """Cancel a campaign: pending items stay undecided and nothing is revoked."""
    campaign = Campaign.objects.select_for_update().get(pk=campaign_id)
    if not reason.strip():
        raise WorkflowError("Say why the campaign is cancelled.")
    transition = check_campaign_transition(campaign.state, CampaignState.CANCELLED)
    campaign.state = CampaignState.CANCELLED
    campaign.closed_at = now()
    campaign.save(update_fields=["state", "closed_at"])
    record(
        actor=actor,
        action=transition.action,
        target=campaign,
        data={"reason": reason.strip()},
        request=http,
    )
    return campaign
