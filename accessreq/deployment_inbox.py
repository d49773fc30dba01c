"""Deployment approvals waiting for a person, with what the inbox shows beside each one, in a
fixed number of queries whatever the number of deployments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, Q
from django.utils import timezone

from accessreq.deployment_states import DeploymentState
from accessreq.models import (
    Delegation,
    DeploymentApproval,
    DeploymentAssignment,
    DeploymentDecision,
)
from accessreq.models.deployments import DeploymentQuerySet
from accessreq.services.deployments import deployment_requires_step_up
from portal.models import User

SHOWN = 50


def _delegators(user: Any) -> Any:
    return Delegation.objects.in_force(timezone.now()).filter(delegate=user).values("delegator")


def deployments_waiting(*, user: Any) -> DeploymentQuerySet:
    """Pending deployments whose current stage is assigned to ``user`` or to someone they stand
    in for by a delegation in force, oldest first; never one of a service account they own,
    never one they (or the person they would stand in for) already decided."""
    # As in deciding_principal: nobody acts for someone who decided or was stood in for.
    principal_used = DeploymentDecision.objects.filter(deployment=OuterRef("deployment")).filter(
        Q(approver=OuterRef("principal")) | Q(on_behalf_of=OuterRef("principal"))
    )
    assigned = (
        DeploymentAssignment.objects.filter(
            deployment=OuterRef("pk"), stage=OuterRef("current_stage")
        )
        .filter(Q(principal=user) | Q(principal__in=_delegators(user)))
        .exclude(Exists(principal_used))
    )
    decided = DeploymentDecision.objects.filter(deployment=OuterRef("pk")).filter(
        Q(approver=user) | Q(on_behalf_of=user)
    )
    return (
        DeploymentApproval.objects.filter(state=DeploymentState.PENDING)
        .exclude(service_account=user)
        .exclude(service_account__owners=user)
        .filter(Exists(assigned))
        .exclude(Exists(decided))
        .for_listing()
        .order_by("created_at", "pk")
    )


@dataclass
class DeploymentRow:
    deployment: DeploymentApproval
    stage: dict[str, Any]
    approvals_at_stage: int
    owners: list[User]
    needs_step_up: bool
    show_code: bool
    on_behalf_of: User | None = None  # the assigned approver ``user`` stands in for

    @property
    def checks(self) -> list[tuple[str, str, bool]]:
        """(name, status, required) of each check, required ones first."""
        required = self.deployment.environment.deployment_checks
        names = [*required, *sorted(set(self.deployment.checks) - set(required))]
        return [(n, self.deployment.checks.get(n, "missing"), n in required) for n in names]


def deployment_rows(*, user: User, fresh: bool) -> list[DeploymentRow]:
    """The inbox rows for ``user``; ``fresh`` says whether their code is recent enough."""
    waiting = list(
        deployments_waiting(user=user).prefetch_related(
            Prefetch(
                "service_account__owners",
                queryset=User.objects.filter(is_active=True).order_by("display_name"),
            ),
            "decisions",
        )[:SHOWN]
    )
    # Where the stage is not assigned to the user, whom they stand in for (one query).
    current = {d.pk: d.current_stage for d in waiting}
    stood_in: dict[int, User] = {}
    for assignment in (
        DeploymentAssignment.objects.filter(deployment__in=current, principal__in=_delegators(user))
        .select_related("principal")
        .order_by("principal__display_name")
    ):
        if assignment.stage == current[assignment.deployment_id]:
            stood_in.setdefault(assignment.deployment_id, assignment.principal)
    direct = set(
        DeploymentAssignment.objects.filter(deployment__in=current, principal=user).values_list(
            "deployment", "stage"
        )
    )
    rows = []
    for deployment in waiting:
        stage = deployment.stage(deployment.current_stage) or {"rule_label": "", "quorum": 1}
        step_up = deployment_requires_step_up(deployment)
        rows.append(
            DeploymentRow(
                deployment=deployment,
                stage=stage,
                approvals_at_stage=sum(
                    1
                    for d in deployment.decisions.all()
                    if d.stage == deployment.current_stage and d.decision == "approve"
                ),
                owners=list(deployment.service_account.owners.all()),
                needs_step_up=step_up,
                show_code=step_up and not fresh,
                on_behalf_of=None
                if (deployment.pk, deployment.current_stage) in direct
                else stood_in.get(deployment.pk),
            )
        )
    return rows
