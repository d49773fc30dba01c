"""The recertification state machines: one table for campaigns, one for their review items.

The campaign services (``accessreq/services/campaigns.py``) call :func:`check_campaign_transition`
and :func:`check_item_transition` before changing a state, exactly as the request services use
:mod:`accessreq.states`, so no code path can take an edge these tables do not have. The docs draw
the campaign lifecycle diagram from these same tables. A reassigned item ends ``reassigned`` and a
new pending item is created for the new reviewer.
"""

from __future__ import annotations

from django.db import models

from accessreq.states import START, IllegalTransition, Transition

__all__ = [
    "CAMPAIGN_TRANSITIONS",
    "ITEM_TRANSITIONS",
    "START",
    "CampaignState",
    "ReviewDecision",
    "Transition",
    "check_campaign_transition",
    "check_item_transition",
]


class CampaignState(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    LAUNCHING = "launching", "Launching"
    OPEN = "open", "Open"
    CLOSING = "closing", "Closing"
    CLOSED = "closed", "Closed"
    CANCELLED = "cancelled", "Cancelled"


class ReviewDecision(models.TextChoices):
    """Where one review item (one grant, one reviewer) stands."""

    PENDING = "pending", "Pending"
    CERTIFIED = "certified", "Certified"
    REVOKED = "revoked", "Revoked"
    REASSIGNED = "reassigned", "Reassigned"
    EXPIRED = "expired", "Expired by deadline"


CAMPAIGN_TRANSITIONS: tuple[Transition, ...] = (
    Transition(START, CampaignState.SCHEDULED, "campaign.scheduled", "scheduled from a template"),
    Transition(
        CampaignState.SCHEDULED,
        CampaignState.LAUNCHING,
        "campaign.launched",
        "launched by beat or an admin",
    ),
    Transition(
        CampaignState.SCHEDULED,
        CampaignState.CANCELLED,
        "campaign.cancelled",
        "cancelled by an admin",
    ),
    Transition(CampaignState.LAUNCHING, CampaignState.OPEN, "campaign.opened", "items created"),
    Transition(CampaignState.OPEN, CampaignState.CLOSING, "campaign.deadline", "deadline reached"),
    Transition(
        CampaignState.OPEN,
        CampaignState.CLOSING,
        "campaign.closed_early",
        "closed early by an admin",
    ),
    Transition(
        CampaignState.OPEN, CampaignState.CANCELLED, "campaign.cancelled", "cancelled by an admin"
    ),
    Transition(
        CampaignState.CLOSING, CampaignState.CLOSED, "campaign.closed", "deadline action applied"
    ),
)

ITEM_TRANSITIONS: tuple[Transition, ...] = (
    Transition(START, ReviewDecision.PENDING, "review.created", "campaign launched"),
    Transition(
        ReviewDecision.PENDING, ReviewDecision.CERTIFIED, "review.certified", "reviewer certifies"
    ),
    Transition(
        ReviewDecision.PENDING, ReviewDecision.REVOKED, "review.revoked", "reviewer revokes"
    ),
    Transition(
        ReviewDecision.PENDING,
        ReviewDecision.REASSIGNED,
        "review.reassigned",
        "reviewer hands it to someone else",
    ),
    Transition(
        ReviewDecision.PENDING,
        ReviewDecision.EXPIRED,
        "review.expired",
        "deadline reached undecided",
    ),
)

FINAL_CAMPAIGN_STATES = frozenset({CampaignState.CLOSED, CampaignState.CANCELLED})
FINAL_DECISIONS = frozenset(
    {
        ReviewDecision.CERTIFIED,
        ReviewDecision.REVOKED,
        ReviewDecision.REASSIGNED,
        ReviewDecision.EXPIRED,
    }
)


def _label(choices: type[models.TextChoices], state: str) -> str:
    return choices(state).label.lower() if state in choices.values else state or "new"


def check_campaign_transition(source: str, target: str) -> Transition:
    """The first transition from ``source`` to ``target``; :class:`IllegalTransition` if none."""
    for transition in CAMPAIGN_TRANSITIONS:
        if (transition.source, transition.target) == (source, target):
            return transition
    raise IllegalTransition(
        f"A {_label(CampaignState, source)} campaign cannot become {_label(CampaignState, target)}."
    )


def check_item_transition(source: str, target: str) -> Transition:
    """The transition from ``source`` to ``target`` of a review item; IllegalTransition if none."""
    for transition in ITEM_TRANSITIONS:
        if (transition.source, transition.target) == (source, target):
            return transition
    raise IllegalTransition(
        f"A {_label(ReviewDecision, source)} review item cannot become "
        f"{_label(ReviewDecision, target)}."
    )
