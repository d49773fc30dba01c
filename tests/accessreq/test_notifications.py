"""The outbox: emails leave only after the change commits, never for a rolled-back change,
never twice for one notification, and always link to the page in Gatehouse."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.db import transaction

from accessreq.models import AccessRequest, Notification, RiskTier
from accessreq.services.notifications import notification_send
from accessreq.tasks import send_notification
from audit.models import AuditEvent
from tests.accessreq.workflow_helpers import approve, make_entitlement, submit

SITE = "https://gatehouse.example.org"


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = SITE + "/"


@pytest.fixture
def deploy(owner):
    return make_entitlement(tier=RiskTier.LOW, owners=[owner])


class Boom(Exception):
    pass


@pytest.mark.django_db
def test_emails_leave_only_after_the_transaction_commits(
    requester, manager, owner, deploy, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        submit(requester, deploy)
    # Queued in the outbox table with the change, but nothing sent before commit.
    assert Notification.objects.filter(sent_at__isnull=True).count() == 2
    assert mail.outbox == [] and len(callbacks) == 2
    for callback in callbacks:  # what the commit runs
        callback()
    assert sorted(m.to[0] for m in mail.outbox) == sorted([manager.email, owner.email])
    assert not Notification.objects.filter(sent_at__isnull=True).exists()


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_submit_sends_no_email_and_leaves_no_notification(requester, owner, deploy):
    with pytest.raises(Boom), transaction.atomic():
        submit(requester, deploy)
        assert Notification.objects.count() == 2  # queued inside the transaction...
        raise Boom  # ...which the caller then rolls back
    assert mail.outbox == []
    assert not Notification.objects.exists()
    assert not AccessRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="request.submitted").exists()

    # The same call that commits does send.
    submit(requester, deploy)
    assert len(mail.outbox) == 2 and Notification.objects.filter(sent_at__isnull=False).count() == 2


@pytest.mark.django_db
def test_a_retried_send_never_sends_twice(requester, owner, deploy):
    submit(requester, deploy)
    notification = Notification.objects.get(recipient=owner)
    assert send_notification.apply(args=[notification.pk]).get() is True
    assert send_notification.apply(args=[notification.pk]).get() is False  # the retry
    assert notification_send(notification.pk) is False
    assert [m.to for m in mail.outbox] == [[owner.email]]
    notification.refresh_from_db()
    assert notification.attempts == 1 and notification.sent_at is not None


@pytest.mark.django_db
def test_emails_link_to_the_page_they_are_about(
    requester, owner, deploy, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        req = approve(owner, submit(requester, deploy))
    to_owner = next(m for m in mail.outbox if m.to == [owner.email])
    assert to_owner.subject == f"[Gatehouse] Approval needed: {deploy}"
    assert f"Open it in Gatehouse: {SITE}/approvals/" in to_owner.body
    assert "Deploy the hotfix for the payments outage" in to_owner.body
    to_requester = next(m for m in mail.outbox if m.to == [requester.email])
    assert to_requester.subject == f"[Gatehouse] Approved: {deploy}"
    assert f"Open it in Gatehouse: {SITE}/requests/{req.pk}/" in to_requester.body
    assert "UTC" in to_requester.body


@pytest.mark.django_db
def test_one_event_queues_one_notification_per_person(
    requester, owner, deploy, django_capture_on_commit_callbacks
):
    """The outbox key makes a repeated notification a no-op, e.g. a job that runs twice."""
    from accessreq.services.notifications import notify

    def queue():
        return notify(
            key="test:once", recipient=owner, subject="Hello", lines=["Once"], path="/access/"
        )

    with django_capture_on_commit_callbacks(execute=True):
        assert queue() is not None
        assert queue() is None
    assert len(mail.outbox) == 1 and Notification.objects.filter(key="test:once").count() == 1


@pytest.mark.django_db
def test_a_failed_send_is_counted_and_the_resend_job_gives_up_after_five(
    requester, manager, owner, deploy, settings
):
    import socket

    from django.utils import timezone

    from accessreq.tasks import notifications_resend

    submit(requester, deploy)  # queues two emails; nothing commits, so nothing is sent yet
    failing = Notification.objects.get(recipient=owner)
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 2
    with pytest.raises(OSError):
        notification_send(failing.pk)
    failing.refresh_from_db()
    assert failing.attempts == 1 and failing.sent_at is None

    # The mail server is back; the resend job picks up what is unsent, but not an email that
    # already failed five times.
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    Notification.objects.filter(pk=failing.pk).update(attempts=5)
    Notification.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    assert notifications_resend.apply().get() == 1
    assert [m.to for m in mail.outbox] == [[manager.email]]
