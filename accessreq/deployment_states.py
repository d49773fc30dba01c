"""The deployment approval state machine: one table of allowed transitions, used by every
deployment service (as :mod:`accessreq.states` is for access requests).

``pending`` waits for the environment's approval stages; ``approved`` is valid for one commit
until ``expires_at`` (database clock); the first authorization check that relies on it moves it
to ``used`` and ties it to that token. A pending approval nobody decided in time, or an approved
one nobody used in time, becomes ``expired``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from accessreq.errors import WorkflowError


class DeploymentState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    USED = "used", "Used"
    EXPIRED = "expired", "Expired"


START = ""


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    action: str  # the audit action recorded when the transition happens
    label: str


TRANSITIONS: tuple[Transition, ...] = (
    Transition(START, DeploymentState.PENDING, "deployment.requested", "pipeline asks"),
    Transition(
        DeploymentState.PENDING, DeploymentState.APPROVED, "deployment.approved", "all stages"
    ),
    Transition(
        DeploymentState.PENDING, DeploymentState.DENIED, "deployment.denied", "an approver denies"
    ),
    Transition(
        DeploymentState.PENDING, DeploymentState.EXPIRED, "deployment.expired", "no decision"
    ),
    Transition(
        DeploymentState.APPROVED, DeploymentState.USED, "deployment.used", "authorize allowed"
    ),
    Transition(
        DeploymentState.APPROVED, DeploymentState.EXPIRED, "deployment.expired", "not used in time"
    ),
)

_ALLOWED = {(t.source, t.target): t for t in TRANSITIONS}

DECIDED_STATES = frozenset({DeploymentState.APPROVED, DeploymentState.DENIED, DeploymentState.USED})


class IllegalDeploymentTransition(WorkflowError):
    """A service tried an edge the table does not have."""


def check_transition(source: str, target: str) -> Transition:
    """The transition from ``source`` to ``target``; :class:`IllegalDeploymentTransition` if
    none."""
    try:
        return _ALLOWED[(source, target)]
    except KeyError:
        raise IllegalDeploymentTransition(
            f"A {source or 'new'} deployment approval cannot become {target}."
        ) from None
