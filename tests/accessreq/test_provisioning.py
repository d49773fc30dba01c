"""The manual connector and the provisioning task list: security admins see the work, mark it
done, and only then is the grant confirmed set up (or removed)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core import mail

from accessreq.models import (
    Connector,
    ConnectorKind,
    Entitlement,
    Grant,
    GrantState,
    Operation,
    ProvisioningTask,
    RiskTier,
    TaskStatus,
)
from accessreq.services.common import MfaContext
from accessreq.services.grants import grant_revoke
from accessreq.services.requests import request_approve, request_submit
from audit.models import AuditEvent
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

FRESH = MfaContext("totp", 10)
REASON = "Deploy the hotfix for the payments outage"


@pytest.fixture
def ops_desk(db) -> Connector:
    return Connector.objects.create(name="ops desk", kind=ConnectorKind.MANUAL)


@pytest.fixture
def manual_entitlement(db, owner, ops_desk) -> Entitlement:
    system = SystemFactory(name="payments", slug="payments")
    env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    item = EntitlementFactory(
        system=system, environment=env, name="Deployer", slug="deployer", connector=ops_desk
    )
    item.owners.add(owner)
    return item


def activate(person, item, approver, capture) -> Grant:
    with capture(execute=True):
        req = request_submit(
            actor=person, entitlement=item, justification=REASON, duration=timedelta(hours=8)
        )
        request_approve(actor=approver, request_id=req.pk, mfa=FRESH)
    req.refresh_from_db()
    assert req.grant is not None
    return req.grant


@pytest.fixture
def manual_grant(
    requester, owner, security_admin, manual_entitlement, django_capture_on_commit_callbacks
) -> Grant:
    return activate(requester, manual_entitlement, owner, django_capture_on_commit_callbacks)


@pytest.mark.django_db
def test_activation_creates_a_pending_task_and_emails_security_admins(
    manual_grant, security_admin
) -> None:
    task = ProvisioningTask.objects.get(grant=manual_grant)
    assert task.operation == Operation.PROVISION and task.status == TaskStatus.PENDING
    assert task.cause == "activated" and task.attempts == 0
    manual_grant.refresh_from_db()
    assert manual_grant.state == GrantState.ACTIVE and manual_grant.provisioned_at is None
    to_do = [m for m in mail.outbox if m.to == [security_admin.email]]
    assert len(to_do) == 1
    assert "To do: set up access for payments / dev / Deployer" in to_do[0].subject
    assert "/provisioning/" in to_do[0].body
    assert not AuditEvent.objects.filter(action="provisioning.confirmed").exists()


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client, manual_grant) -> None:
    task = ProvisioningTask.objects.get()
    assert client.get("/provisioning/")["Location"].startswith("/accounts/login/")
    response = client.post(f"/provisioning/{task.pk}/confirm/")
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_task_list_is_for_security_admins_only(
    verified_client, security_admin, owner, outsider, auditor, manual_grant
) -> None:
    for person in (owner, outsider, auditor):
        assert verified_client(person).get("/provisioning/").status_code == 404
    response = verified_client(security_admin).get("/provisioning/")
    assert response.status_code == 200
    task = ProvisioningTask.objects.get()
    assert response.context["needs_person"] == [task]
    html = response.content.decode()
    assert "Set up" in html and "Dev Requester" in html and "grant activated" in html
    assert "ops desk" in html and f'action="/provisioning/{task.pk}/confirm/"' in html


@pytest.mark.django_db
def test_confirming_sets_provisioned_at_and_writes_the_event(
    verified_client, security_admin, requester, manual_grant
) -> None:
    task = ProvisioningTask.objects.get()
    response = verified_client(security_admin).post(
        f"/provisioning/{task.pk}/confirm/", {"note": "Added to the deploy group"}
    )
    assert response.status_code == 302 and response["Location"] == "/provisioning/"
    task.refresh_from_db()
    manual_grant.refresh_from_db()
    assert task.status == TaskStatus.CONFIRMED and task.confirmed_by == security_admin
    assert task.note == "Added to the deploy group"
    assert manual_grant.provisioned_at == task.confirmed_at
    event = AuditEvent.objects.get(action="provisioning.confirmed")
    assert event.actor_id == security_admin.pk
    assert event.data["by_hand"] is True and event.data["grant_id"] == manual_grant.pk
    assert event.data["note"] == "Added to the deploy group"

    mine = verified_client(requester).get("/access/")
    assert str(mine.context["active"][0].status).startswith("Set up, confirmed")

    listed = verified_client(security_admin).get("/provisioning/")
    assert listed.context["needs_person"] == [] and listed.context["confirmed"] == [task]
    again = verified_client(security_admin).post(f"/provisioning/{task.pk}/confirm/")
    assert any("already marked done" in str(m) for m in get_messages(again.wsgi_request))
    assert AuditEvent.objects.filter(action="provisioning.confirmed").count() == 1


@pytest.mark.django_db
def test_outsider_posting_confirm_or_retry_gets_404(
    verified_client, outsider, owner, manual_grant
) -> None:
    task = ProvisioningTask.objects.get()
    for person in (outsider, owner):
        client = verified_client(person)
        assert client.post(f"/provisioning/{task.pk}/confirm/", {"note": "x"}).status_code == 404
        assert client.post(f"/provisioning/{task.pk}/retry/").status_code == 404
    task.refresh_from_db()
    manual_grant.refresh_from_db()
    assert task.status == TaskStatus.PENDING and manual_grant.provisioned_at is None
    assert not AuditEvent.objects.filter(action__startswith="provisioning.").exists()


@pytest.mark.django_db
def test_unknown_task_is_404_and_confirm_is_post_only(verified_client, security_admin) -> None:
    client = verified_client(security_admin)
    assert client.post("/provisioning/999999/confirm/").status_code == 404
    assert client.get("/provisioning/999999/confirm/").status_code == 405


@pytest.mark.django_db
def test_a_revoke_is_confirmed_only_when_the_removal_is_marked_done(
    verified_client,
    security_admin,
    owner,
    requester,
    manual_grant,
    django_capture_on_commit_callbacks,
) -> None:
    first = ProvisioningTask.objects.get()
    verified_client(security_admin).post(f"/provisioning/{first.pk}/confirm/")
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(actor=owner, grant_id=manual_grant.pk, reason="Moved to another team")
    removal = ProvisioningTask.objects.get(operation=Operation.DEPROVISION)
    assert removal.cause == "revoked" and removal.status == TaskStatus.PENDING
    manual_grant.refresh_from_db()
    assert manual_grant.state == GrantState.REVOKED and manual_grant.deprovisioned_at is None
    ended = verified_client(requester).get("/access/").context["ended"]
    assert str(ended[0].status) == "Removal pending, waiting for connector"

    listed = verified_client(security_admin).get("/provisioning/")
    assert listed.context["needs_person"] == [removal]
    assert "Remove" in listed.content.decode()
    verified_client(security_admin).post(f"/provisioning/{removal.pk}/confirm/")
    manual_grant.refresh_from_db()
    assert manual_grant.deprovisioned_at is not None
    ended = verified_client(requester).get("/access/").context["ended"]
    assert str(ended[0].status).startswith("Removed, confirmed")


@pytest.mark.django_db
def test_retry_refuses_a_task_that_has_not_failed(
    verified_client, security_admin, manual_grant
) -> None:
    task = ProvisioningTask.objects.get()
    response = verified_client(security_admin).post(f"/provisioning/{task.pk}/retry/")
    assert response.status_code == 302
    assert any("Only a failed task" in str(m) for m in get_messages(response.wsgi_request))
    assert not AuditEvent.objects.filter(action="provisioning.retried").exists()


@pytest.mark.django_db
def test_task_list_query_count_does_not_grow(
    verified_client,
    security_admin,
    owner,
    manual_entitlement,
    ops_desk,
    django_capture_on_commit_callbacks,
    django_assert_max_num_queries,
) -> None:
    client = verified_client(security_admin)
    env = manual_entitlement.environment

    def add(count: int) -> None:
        for _ in range(count):
            person = UserFactory(manager=owner)
            item = EntitlementFactory(system=manual_entitlement.system, environment=env)
            item.connector = ops_desk
            item.save()
            activate(person, item, owner, django_capture_on_commit_callbacks)
        # Some of each section.
        tasks = list(ProvisioningTask.objects.order_by("pk"))
        ProvisioningTask.objects.filter(pk__in=[t.pk for t in tasks[::3]]).update(
            status=TaskStatus.FAILED
        )

    add(3)
    client.get("/provisioning/")
    with django_assert_max_num_queries(20) as few:
        client.get("/provisioning/")
    add(30)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get("/provisioning/")
    assert len(response.context["needs_person"]) == 33
