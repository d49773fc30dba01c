"""Portal housekeeping tasks."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from portal.models import Session


@shared_task(acks_late=True)
def clear_expired_sessions() -> int:
    """Delete expired session rows; safe to run twice. Returns how many were removed."""
    deleted, _ = Session.objects.filter(expire_date__lt=timezone.now()).delete()
    return deleted
