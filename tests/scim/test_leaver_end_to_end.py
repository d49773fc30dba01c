"""A leaver pushed by SCIM loses every access within a minute, end to end: the directory's PATCH
over HTTP, a real Celery worker on the real broker (the filesystem transport under SQLite, Redis
under PostgreSQL in CI), and the system's webhook receiver, a real HTTP server, told to remove
each grant and confirming it."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from celery.contrib.testing.worker import start_worker

from accessreq.models import Grant, Operation, ProvisioningTask, TaskStatus
from accessreq.selectors import holds_scope
from accessreq.services.requests import request_approve, request_submit
from audit.models import AuditEvent
from portal.celery import app
from portal.models import Session, User
from tests.accessreq.test_webhook_connector import (  # noqa: F401 - the receiver fixture
    Receiver,
    entitlement_for,
    make_connector,
    receiver,
)
from tests.accessreq.workflow_helpers import FRESH, REASON
from tests.conftest import enrol_totp
from tests.scim.conftest import PATCH, Scim, okta_user

MINUTE = 60.0


@pytest.mark.django_db(transaction=True)
def test_a_leaver_pushed_by_scim_loses_every_access_within_a_minute(
    monkeypatch: pytest.MonkeyPatch,
    scim: Scim,
    receiver: Receiver,  # noqa: F811
    entitlement_for,  # noqa: F811
    owner,
    verified_client,
) -> None:
    created = scim.post("Users", okta_user("ada@example.com"))
    assert created.status_code == 201, created.content
    person = User.objects.get(pk=created.json()["id"])
    entitlement = entitlement_for(make_connector(receiver.url))
    # Access granted the usual way and set up by the connector (tasks run eagerly here).
    request = request_submit(
        actor=person, entitlement=entitlement, justification=REASON, duration=timedelta(hours=8)
    )
    request_approve(actor=owner, request_id=request.pk, mfa=FRESH)
    grant = Grant.objects.get(beneficiary=person)
    assert grant.provisioned_at is not None
    assert [d.headers["X-Gatehouse-Event"] for d in receiver.deliveries] == ["grant.activated"]
    enrol_totp(person)
    browser = verified_client(person)
    assert browser.get("/").status_code == 200

    monkeypatch.setitem(app.conf, "task_always_eager", False)
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        pushed = time.monotonic()
        answer = scim.patch(
            f"Users/{person.pk}",
            {"schemas": [PATCH], "Operations": [{"op": "replace", "value": {"active": False}}]},
        )
        assert answer.status_code == 200, answer.content
        assert answer.json()["active"] is False
        # At once: no session, no access by Gatehouse's own check.
        assert not Session.objects.filter(user_id=person.pk).exists()
        assert browser.get("/").status_code == 302
        assert not holds_scope(
            user=person,
            scope="deploy",
            system=entitlement.system.slug,
            environment=entitlement.environment.slug,
        )
        # Within the minute: the system itself is told, and confirms.
        while True:
            removal = ProvisioningTask.objects.filter(
                grant=grant, operation=Operation.DEPROVISION
            ).first()
            if removal is not None and removal.status == TaskStatus.CONFIRMED:
                break
            assert time.monotonic() - pushed < MINUTE, "the connector was not told within a minute"
            time.sleep(0.2)
        took = time.monotonic() - pushed

    assert took < MINUTE
    assert [d.headers["X-Gatehouse-Event"] for d in receiver.deliveries] == [
        "grant.activated",
        "grant.revoked",
    ]
    grant.refresh_from_db()
    assert grant.state == "revoked" and grant.deprovisioned_at is not None
    left = AuditEvent.objects.get(action="person.left")
    assert left.data["source"] == "scim:okta-prod" and left.data["grants_revoked"] == 1
