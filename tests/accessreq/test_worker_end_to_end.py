"""A submitted request reaches its approver through the real broker and a real Celery worker:
the filesystem transport under SQLite, Redis under PostgreSQL in CI."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core import mail

from accessreq.models import Notification, RiskTier
from portal.celery import app
from tests.accessreq.workflow_helpers import make_entitlement, submit


@pytest.mark.django_db(transaction=True)
def test_a_worker_emails_the_approver_of_a_new_request(
    monkeypatch: pytest.MonkeyPatch, requester, owner
) -> None:
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    ent = make_entitlement(tier=RiskTier.LOW, owners=[owner])

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        req = submit(requester, ent)
        deadline = time.monotonic() + 30
        while not any(m.to == [owner.email] for m in mail.outbox):
            assert time.monotonic() < deadline, "the worker never sent the approver's email"
            time.sleep(0.1)

    [email] = [m for m in mail.outbox if m.to == [owner.email]]
    assert email.subject == f"[Gatehouse] Approval needed: {ent}"
    assert req.justification in email.body
    sent = Notification.objects.get(recipient=owner)
    assert sent.sent_at is not None and sent.attempts == 1
