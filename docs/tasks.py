"""Celery tasks of the docs: the beat job that reminds owners of runbooks due for review."""

from __future__ import annotations

from celery import shared_task

from portal.history import acting_as
from portal.models import User


@shared_task(acks_late=True)
def runbook_review_reminders() -> int:
    """Email each owner whose runbook is due for review, once per due date."""
    from docs.services import runbook_review_reminders_send

    with acting_as(User.objects.system_actor()):
        return runbook_review_reminders_send()
