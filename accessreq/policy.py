"""Which approval stages a request needs and who may decide each one.

Reads only; the services freeze the result into the request when it is submitted and write the
people asked for each stage as :class:`StageAssignment` rows when the stage opens.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import QuerySet

from accessreq.models import (
    ApprovalPolicy,
    ApproverRule,
    AssignmentReason,
    Delegation,
    Entitlement,
    RiskTier,
)
from portal.models import User
from portal.roles import SECURITY_ADMIN

# (approver rule, quorum, step-up) per stage, used to create a tier's policy when it has none.
DEFAULT_STAGES: dict[str, list[tuple[str, int, bool]]] = {
    RiskTier.LOW: [(ApproverRule.OWNER_OR_MANAGER, 1, False)],
    RiskTier.MEDIUM: [(ApproverRule.OWNER_OR_MANAGER, 1, False)],
    RiskTier.HIGH: [(ApproverRule.MANAGER, 1, True), (ApproverRule.SYSTEM_OWNER, 1, True)],
    RiskTier.CRITICAL: [
        (ApproverRule.MANAGER, 1, True),
        (ApproverRule.SYSTEM_OWNER, 1, True),
        (ApproverRule.SECURITY_ADMIN, 1, True),
    ],
}

# Tiers whose requests can't be approved in bulk.
STEP_UP_TIERS = frozenset({RiskTier.HIGH, RiskTier.CRITICAL})


def ensure_default_policies() -> None:
    """Give every tier a policy (the defaults above) if it has none; never changes existing ones."""
    for tier, stages in DEFAULT_STAGES.items():
        if ApprovalPolicy.objects.filter(tier=tier).exists():
            continue
        label = RiskTier(tier).label
        policy = ApprovalPolicy.objects.create(
            name=f"{label} tier", tier=tier, description=f"Default policy for {label.lower()} tier."
        )
        for position, (rule, quorum, step_up) in enumerate(stages, start=1):
            policy.stages.create(
                position=position, approver_rule=rule, quorum=quorum, step_up=step_up
            )


def policy_for(entitlement: Entitlement) -> ApprovalPolicy | None:
    if entitlement.policy_id:
        return entitlement.policy
    return ApprovalPolicy.objects.filter(tier=entitlement.environment.risk_tier).first()


def stages_for(entitlement: Entitlement) -> list[dict[str, Any]]:
    """The stages a new request for ``entitlement`` must pass, as frozen into the request."""
    policy = policy_for(entitlement)
    if policy is not None:
        rows = [(s.approver_rule, s.quorum, s.step_up) for s in policy.stages.all()]
    else:
        rows = []
    if not rows:
        rows = DEFAULT_STAGES[entitlement.environment.risk_tier]
    return [
        {
            "position": position,
            "rule": rule,
            "rule_label": ApproverRule(rule).label,
            "quorum": quorum,
            "step_up": step_up,
            "policy": policy.name if policy else "built-in default",
        }
        for position, (rule, quorum, step_up) in enumerate(rows, start=1)
    ]


def _active_humans() -> QuerySet[User]:
    return User.objects.filter(is_active=True, kind=User.Kind.HUMAN)


def rule_people(rule: str, *, beneficiary: User, entitlement: Entitlement) -> list[User]:
    """Everyone ``rule`` names for this beneficiary and entitlement, before any exclusion."""
    people = _active_humans()
    if rule == ApproverRule.MANAGER:
        return list(people.filter(pk=beneficiary.manager_id)) if beneficiary.manager_id else []
    if rule == ApproverRule.ENTITLEMENT_OWNER:
        return list(people.filter(owned_entitlements=entitlement))
    if rule == ApproverRule.SYSTEM_OWNER:
        return list(people.filter(owned_systems=entitlement.system_id))
    if rule == ApproverRule.OWNER_OR_MANAGER:
        owners = list(people.filter(owned_entitlements=entitlement))
        manager = rule_people(
            ApproverRule.MANAGER, beneficiary=beneficiary, entitlement=entitlement
        )
        return list({p.pk: p for p in owners + manager}.values())
    if rule == ApproverRule.SECURITY_ADMIN:
        return list(people.filter(groups__name=SECURITY_ADMIN).distinct())
    raise ValueError(f"Unknown approver rule {rule!r}")


def security_admins() -> list[User]:
    return list(_active_humans().filter(groups__name=SECURITY_ADMIN).distinct())


def conflicted(requester: User, beneficiary: User) -> set[int]:
    """People who may never decide this request: whoever asked, whoever benefits, and, for a
    service account, everyone who owns it (they act through it)."""
    people = {requester.pk, beneficiary.pk}
    if beneficiary.kind == User.Kind.SERVICE:
        people |= set(beneficiary.owners.values_list("pk", flat=True))
    return people


@dataclass(frozen=True)
class StageApprovers:
    """The people a stage would be assigned to, and why."""

    people: list[User]
    reason: str  # AssignmentReason


def stage_approvers(
    rule: str, *, requester: User, beneficiary: User, entitlement: Entitlement
) -> StageApprovers:
    """Who the stage goes to: the rule's people minus the requester and the beneficiary; when
    that leaves nobody, the security admins (minus the same two), so no request is stranded."""
    excluded = conflicted(requester, beneficiary)
    people = [
        p
        for p in rule_people(rule, beneficiary=beneficiary, entitlement=entitlement)
        if p.pk not in excluded
    ]
    if people:
        return StageApprovers(sorted(people, key=str), AssignmentReason.RULE)
    fallback = [p for p in security_admins() if p.pk not in excluded]
    return StageApprovers(sorted(fallback, key=str), AssignmentReason.FALLBACK)


def approval_preview(
    entitlement: Entitlement, *, requester: User, beneficiary: User
) -> list[dict[str, Any]]:
    """What the request form shows before submitting: each stage and who would decide it.

    One person decides at most one stage, so someone who is the only approver of an earlier stage
    is not offered for a later one; a stage left with nobody shows its security-admin fallback.
    """
    preview = []
    taken: set[int] = set()
    for stage in stages_for(entitlement):
        approvers = stage_approvers(
            stage["rule"], requester=requester, beneficiary=beneficiary, entitlement=entitlement
        )
        people = [p for p in approvers.people if p.pk not in taken]
        fallback = approvers.reason != AssignmentReason.RULE
        if not people and approvers.people:
            excluded = conflicted(requester, beneficiary) | taken
            people = [p for p in security_admins() if p.pk not in excluded]
            fallback = True
        if len(people) == 1:
            taken.add(people[0].pk)
        preview.append({**stage, "people": people, "fallback": fallback})
    return preview


def decides_for(
    actor: User, *, assigned: set[int], used: set[int], excluded: set[int], at: datetime
) -> User | None:
    """Whom ``actor`` decides a stage for, the one rule for requests and deployments: themself
    if assigned, else an assigned approver they stand in for by a delegation in force at ``at``
    (the first by name); ``None`` if neither. Nobody in ``excluded`` (conflicted) or ``used``
    (already decided, or stood in for) decides, for themself or for anyone else."""
    if not actor.is_active or actor.kind != User.Kind.HUMAN:
        return None
    if actor.pk in excluded or actor.pk in used:
        return None
    if actor.pk in assigned:
        return actor
    delegation = (
        Delegation.objects.in_force(at)
        .filter(delegate=actor, delegator__in=assigned - used - excluded)
        .select_related("delegator")
        .order_by("delegator__display_name")
        .first()
    )
    return delegation.delegator if delegation else None
