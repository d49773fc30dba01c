"""The request state machine: one table of allowed transitions, used by every service.

Services call :func:`check_transition` before they change a request's state, so no code path can
move a request along an edge that is not in :data:`TRANSITIONS`. The docs draw the lifecycle
diagram from this same table.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import models

from accessreq.errors import WorkflowError


class RequestState(models.TextChoices):
    PENDING = "pending", "Pending"
    APPROVED = "approved", "Approved"
    ACTIVE = "active", "Active"
    EXPIRED = "expired", "Expired"
    REVOKED = "revoked", "Revoked"
    DENIED = "denied", "Denied"
    WITHDRAWN = "withdrawn", "Withdrawn"
    TIMED_OUT = "timed_out", "Timed out"


# The pseudo-state a request is in before it exists.
START = ""


@dataclass(frozen=True)
class Transition:
    source: str
    target: str
    action: str  # the audit action recorded when the transition happens
    label: str  # what causes it, in words


TRANSITIONS: tuple[Transition, ...] = (
    Transition(START, RequestState.PENDING, "request.submitted", "submitted"),
    Transition(START, RequestState.ACTIVE, "request.break_glass", "break-glass"),
    Transition(START, RequestState.APPROVED, "request.birthright", "birthright access of a team"),
    Transition(
        RequestState.PENDING, RequestState.APPROVED, "request.approved", "all stages approved"
    ),
    Transition(RequestState.PENDING, RequestState.DENIED, "request.denied", "an approver denies"),
    Transition(
        RequestState.PENDING, RequestState.WITHDRAWN, "request.withdrawn", "requester withdraws"
    ),
    Transition(
        RequestState.PENDING, RequestState.TIMED_OUT, "request.timed_out", "no decision in time"
    ),
    Transition(RequestState.APPROVED, RequestState.ACTIVE, "grant.activated", "start time reached"),
    Transition(
        RequestState.APPROVED, RequestState.REVOKED, "grant.revoked", "revoked before start"
    ),
    Transition(RequestState.ACTIVE, RequestState.EXPIRED, "grant.expired", "end time reached"),
    Transition(RequestState.ACTIVE, RequestState.REVOKED, "grant.revoked", "revoked"),
)

_ALLOWED = {(t.source, t.target): t for t in TRANSITIONS}

OPEN_STATES = frozenset({RequestState.PENDING, RequestState.APPROVED, RequestState.ACTIVE})
# Not yet giving access: waiting for a decision, or approved and waiting for its start time.
WAITING_STATES = frozenset({RequestState.PENDING, RequestState.APPROVED})
FINAL_STATES = frozenset(
    {
        RequestState.EXPIRED,
        RequestState.REVOKED,
        RequestState.DENIED,
        RequestState.WITHDRAWN,
        RequestState.TIMED_OUT,
    }
)


class IllegalTransition(WorkflowError):
    """A service was asked to move a request along an edge the table does not have; a
    WorkflowError, so a view shows the message instead of failing."""


def _label(state: str) -> str:
    return RequestState(state).label.lower() if state in RequestState.values else state or "new"


def check_transition(source: str, target: str) -> Transition:
    """The transition from ``source`` to ``target``; :class:`IllegalTransition` if none."""
    try:
        return _ALLOWED[(source, target)]
    except KeyError:
        source_label, target_label = _label(source), _label(target)
        raise IllegalTransition(f"A {source_label} request cannot become {target_label}.") from None
