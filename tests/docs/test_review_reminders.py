"""The beat job that reminds owners of runbooks due for review: once per due date, only the
owner, and nothing written when nothing is due."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.core import mail
from django.utils import timezone

from accessreq.models import Notification
from audit.models import AuditEvent
from docs.models import Runbook
from docs.services import runbook_review_reminders_send
from docs.tasks import runbook_review_reminders
from tests.docs.helpers import make_runbook


def days_ago(days: int):
    return timezone.localdate() - timedelta(days=days)


@pytest.fixture
def due_runbook(db, owner) -> Runbook:
    return make_runbook(
        "break-glass",
        title="Break-glass",
        owner=owner,
        owner_email=owner.email,
        review_every_days=90,
        last_reviewed_at=days_ago(91),
    )


def run_job(capture) -> int:
    with capture(execute=True):
        return runbook_review_reminders.delay().get()


@pytest.mark.django_db
def test_owner_is_emailed_once_per_due_date(
    due_runbook, owner, django_capture_on_commit_callbacks
) -> None:
    assert run_job(django_capture_on_commit_callbacks) == 1
    assert run_job(django_capture_on_commit_callbacks) == 0

    (email,) = mail.outbox
    assert email.to == [owner.email]
    assert email.subject.endswith("Runbook due for review: Break-glass")
    assert "/docs/runbooks/break-glass/" in email.body
    assert "reviewed every 90 days" in email.body
    (event,) = AuditEvent.objects.filter(action="runbook.review_reminded")
    assert event.data["due"] == days_ago(1).isoformat()
    assert event.actor_kind == "system"
    assert Notification.objects.get().key == f"runbook:{due_runbook.pk}:due:{days_ago(1)}"


@pytest.mark.django_db
def test_a_new_due_date_gets_a_new_reminder(
    due_runbook, django_capture_on_commit_callbacks
) -> None:
    run_job(django_capture_on_commit_callbacks)
    # Another review date, so another due date (six days ago instead of yesterday).
    Runbook.objects.filter(pk=due_runbook.pk).update(last_reviewed_at=days_ago(96))
    due_runbook.refresh_from_db()
    assert due_runbook.is_overdue
    assert run_job(django_capture_on_commit_callbacks) == 1
    assert len(mail.outbox) == 2


@pytest.mark.django_db
def test_nothing_due_writes_nothing(db, owner, django_capture_on_commit_callbacks) -> None:
    make_runbook("fresh", owner=owner, owner_email=owner.email, last_reviewed_at=days_ago(10))
    make_runbook(
        "orphan", owner=None, owner_email="gone@example.com", last_reviewed_at=days_ago(999)
    )
    assert run_job(django_capture_on_commit_callbacks) == 0
    assert mail.outbox == []
    assert not Notification.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.django_db
def test_due_on_the_day_itself(db, owner) -> None:
    runbook = make_runbook(owner=owner, review_every_days=30, last_reviewed_at=days_ago(30))
    assert runbook.next_review_due == timezone.localdate()
    assert runbook.is_overdue
    assert runbook_review_reminders_send(today=days_ago(1)) == 0
    assert runbook_review_reminders_send() == 1


@pytest.mark.django_db
def test_inactive_owner_gets_nothing(
    due_runbook, owner, django_capture_on_commit_callbacks
) -> None:
    owner.is_active = False
    owner.save()
    assert run_job(django_capture_on_commit_callbacks) == 0
    assert mail.outbox == []


def test_job_is_on_the_beat_schedule() -> None:
    entries = [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()]
    assert "docs.tasks.runbook_review_reminders" in entries
