"""Delegation: an approver names a delegate for whole UTC days; the delegate decides what waits
for them, the record names both, and nobody decides their own request through a delegation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from accessreq.models import AccessRequest, Approval, Delegation, RiskTier
from accessreq.services.common import now
from accessreq.services.delegation import delegation_create
from accessreq.services.requests import request_submit
from accessreq.states import RequestState
from audit.models import AuditEvent
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

REASON = "Deploy the hotfix for the payments outage"


@pytest.fixture
def dev_deploy(db):
    env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    return EntitlementFactory(system=SystemFactory(name="payments"), environment=env)


@pytest.fixture
def deputy(db, manager):
    """Dee reports to Mina too, so Mina is also the approver of Dee's own requests."""
    return UserFactory(display_name="Dee Deputy", email="dee@example.com", manager=manager)


def delegate_now(delegator, delegate) -> Delegation:
    clock = now()
    return delegation_create(
        actor=delegator,
        delegate=delegate,
        starts_at=clock - timedelta(hours=1),
        ends_at=clock + timedelta(days=2),
        reason="Holiday",
    )


def submit(actor, entitlement) -> AccessRequest:
    return request_submit(
        actor=actor, entitlement=entitlement, justification=REASON, duration=timedelta(hours=4)
    )


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client) -> None:
    for response in (
        client.get("/approvals/delegation/"),
        client.post("/approvals/delegation/", {}),
        client.post("/approvals/delegation/1/cancel/"),
    ):
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_page_lists_given_and_received(verified_client, manager, deputy, outsider) -> None:
    delegate_now(manager, deputy)
    html = verified_client(manager).get("/approvals/delegation/").content.decode()
    assert "Dee Deputy" in html and "Holiday" in html and "In force" in html
    assert "Cancel" in html
    html = verified_client(deputy).get("/approvals/delegation/").content.decode()
    assert "Mina Manager" in html and "Nobody has named you" not in html
    html = verified_client(outsider).get("/approvals/delegation/").content.decode()
    assert "You have not named a delegate" in html
    assert "Nobody has named you as their delegate" in html
    assert "Holiday" not in html


@pytest.mark.django_db
def test_create_covers_whole_utc_days(verified_client, manager, deputy) -> None:
    today = now().date()
    response = verified_client(manager).post(
        "/approvals/delegation/",
        {
            "delegate": deputy.pk,
            "starts_on": (today + timedelta(days=1)).isoformat(),
            "ends_on": (today + timedelta(days=3)).isoformat(),
            "reason": "Conference",
        },
    )
    assert response.status_code == 302
    delegation = Delegation.objects.get()
    assert delegation.delegator == manager and delegation.delegate == deputy
    start = datetime.combine(today + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert delegation.starts_at == start
    assert delegation.ends_at == start + timedelta(days=3)
    event = AuditEvent.objects.get(action="delegation.created")
    assert event.actor_id == manager.pk
    assert event.data["delegate"] == "Dee Deputy" and event.data["reason"] == "Conference"
    html = verified_client(manager).get("/approvals/delegation/").content.decode()
    assert "Upcoming" in html


@pytest.mark.django_db
def test_bad_input_is_refused_with_a_message(verified_client, manager, deputy) -> None:
    client = verified_client(manager)
    today = now().date()
    cases = [
        ({"delegate": manager.pk}, "Select a valid choice"),  # not myself
        ({"ends_on": (today - timedelta(days=1)).isoformat()}, "on or after the first day"),
        ({"ends_on": (today + timedelta(days=120)).isoformat()}, "at most 90 days"),
    ]
    for change, error in cases:
        data = {
            "delegate": deputy.pk,
            "starts_on": today.isoformat(),
            "ends_on": today.isoformat(),
            **change,
        }
        response = client.post("/approvals/delegation/", data)
        assert response.status_code == 400, change
        assert error in response.content.decode(), change
    assert not Delegation.objects.exists()


@pytest.mark.django_db
def test_inactive_people_are_not_offered(verified_client, manager, deputy) -> None:
    gone = UserFactory(display_name="Gone Person", is_active=False)
    response = verified_client(manager).get("/approvals/delegation/")
    choices = [str(c[1]) for c in response.context["form"].fields["delegate"].choices]
    assert any("Dee Deputy" in c for c in choices)
    assert not any("Gone Person" in c or "Mina Manager" in c for c in choices)
    response = verified_client(manager).post(
        "/approvals/delegation/",
        {"delegate": gone.pk, "starts_on": now().date(), "ends_on": now().date()},
    )
    assert response.status_code == 400


@pytest.mark.django_db
def test_cancel_own_and_404_for_someone_elses(verified_client, manager, deputy, outsider) -> None:
    delegation = delegate_now(manager, deputy)
    # Neither the delegate nor an outsider may cancel it.
    for person in (deputy, outsider):
        response = verified_client(person).post(f"/approvals/delegation/{delegation.pk}/cancel/")
        assert response.status_code == 404
    delegation.refresh_from_db()
    assert delegation.cancelled_at is None
    response = verified_client(manager).post(f"/approvals/delegation/{delegation.pk}/cancel/")
    assert response.status_code == 302
    delegation.refresh_from_db()
    assert delegation.cancelled_at is not None
    assert AuditEvent.objects.filter(action="delegation.cancelled", actor_id=manager.pk).exists()
    assert (
        verified_client(manager).get(f"/approvals/delegation/{delegation.pk}/cancel/").status_code
        == 405
    )


@pytest.mark.django_db
def test_delegate_sees_and_approves_for_the_delegator(
    verified_client, requester, manager, deputy, dev_deploy
) -> None:
    req = submit(requester, dev_deploy)
    client = verified_client(deputy)
    assert REASON not in client.get("/approvals/").content.decode()
    delegate_now(manager, deputy)
    response = client.get("/approvals/")
    html = response.content.decode()
    assert REASON in html and "As delegate for Mina Manager" in html
    (item,) = response.context["rows"]
    assert item.row.on_behalf_of == manager

    response = client.post(f"/approvals/{req.pk}/decide/", {"action": "approve", "comment": "ok"})
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.state == RequestState.ACTIVE
    approval = Approval.objects.get()
    assert approval.approver == deputy and approval.on_behalf_of == manager
    event = AuditEvent.objects.get(action="request.approval_given", target_id=str(req.pk))
    assert event.actor_id == deputy.pk
    assert event.data["on_behalf_of"] == "Mina Manager"
    assert event.data["delegate"] == "Dee Deputy"


@pytest.mark.django_db
def test_delegate_never_sees_or_decides_their_own_request(
    verified_client, manager, deputy, dev_deploy
) -> None:
    """Mina approves Dee's requests; while Dee stands in for Mina, Dee's own request is not Dee's
    to decide."""
    own = submit(deputy, dev_deploy)
    delegate_now(manager, deputy)
    client = verified_client(deputy)
    response = client.get("/approvals/")
    assert response.context["rows"] == []
    assert "Nothing is waiting for you" in response.content.decode()
    for action in ("approve", "deny"):
        response = client.post(
            f"/approvals/{own.pk}/decide/", {"action": action, "comment": "Looks fine"}
        )
        assert response.status_code == 404
    response = client.post("/approvals/bulk/", {"requests": [str(own.pk)]}, follow=True)
    assert not any(str(m).startswith("Approved") for m in response.context["messages"])
    own.refresh_from_db()
    assert own.state == RequestState.PENDING and not Approval.objects.exists()


@pytest.mark.django_db
def test_a_day_far_in_the_future_is_a_form_error_not_a_crash(
    verified_client, manager, deputy
) -> None:
    response = verified_client(manager).post(
        "/approvals/delegation/",
        {"delegate": deputy.pk, "starts_on": now().date().isoformat(), "ends_on": "9999-12-31"},
    )
    assert response.status_code == 400 or response.status_code == 200
    assert "within a year from today" in response.content.decode()
    assert not Delegation.objects.exists()
