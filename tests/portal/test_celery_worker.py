"""A real Celery worker consumes tasks from the configured broker (filesystem or Redis)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker
from django.utils import timezone

from portal.celery import app
from portal.models import Session
from portal.tasks import clear_expired_sessions


@pytest.mark.django_db(transaction=True)
def test_worker_runs_session_cleanup_from_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    now = timezone.now()
    Session.objects.create(session_key="e" * 32, session_data="x", expire_date=now - timedelta(1))
    Session.objects.create(session_key="l" * 32, session_data="x", expire_date=now + timedelta(1))

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        clear_expired_sessions.delay()
        deadline = time.monotonic() + 20
        while Session.objects.filter(session_key="e" * 32).exists():
            assert time.monotonic() < deadline, "the worker never ran the task"
            time.sleep(0.1)

    assert list(Session.objects.values_list("session_key", flat=True)) == ["l" * 32]
