"""Refusals the workflow services raise; each message tells a person what to do next."""

from __future__ import annotations


class WorkflowError(Exception):
    """The action is refused and nothing changed; ``str(error)`` is shown to the person."""


class NotAllowed(WorkflowError):
    """The person may not act on this object at all; views answer 404 so ids leak nothing."""


class StepUpRequired(WorkflowError):
    """The action needs an authenticator code verified in the last few minutes."""
