"""Delegation: a delegate decides for an approver only while the delegation is in force, the
record names both, and a delegate never decides a request they made or benefit from."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import AccessRequest, Approval, ApproverRule, Delegation, RiskTier
from accessreq.selectors import inbox
from accessreq.services.common import now
from accessreq.services.delegation import delegation_cancel, delegation_create
from accessreq.services.requests import request_deny
from accessreq.states import RequestState
from audit.models import AuditEvent
from tests.accessreq.workflow_helpers import (
    approve,
    make_entitlement,
    make_policy,
    people,
    submit,
)
from tests.factories import UserFactory

HOUR = timedelta(hours=1)


@pytest.fixture
def deputy(db):
    return UserFactory(display_name="Dana Deputy", email="dana@example.com")


@pytest.fixture
def prod(owner):
    return make_entitlement(tier=RiskTier.HIGH, system_owners=[owner])


def _delegate(delegator, delegate, *, starts=-HOUR, ends=timedelta(days=2)):
    clock = now()
    return delegation_create(
        actor=delegator, delegate=delegate, starts_at=clock + starts, ends_at=clock + ends
    )


def _shift(delegation, **fields):
    Delegation.objects.filter(pk=delegation.pk).update(**fields)


def _waiting(user):
    return list(inbox(user=user, at=now()))


@pytest.mark.django_db
def test_a_delegate_decides_only_while_the_delegation_is_in_force(requester, manager, deputy, prod):
    delegation = _delegate(manager, deputy, starts=HOUR)  # starts in an hour
    req = submit(requester, prod)
    assert _waiting(deputy) == []
    with pytest.raises(NotAllowed):
        approve(deputy, req)

    _shift(delegation, ends_at=now() - timedelta(minutes=1), starts_at=now() - HOUR)  # over
    assert _waiting(deputy) == []
    with pytest.raises(NotAllowed):
        approve(deputy, req)

    _shift(delegation, starts_at=now() - HOUR, ends_at=now() + HOUR)  # in force
    assert _waiting(deputy) == [req]
    delegation_cancel(actor=manager, delegation_id=delegation.pk)
    assert _waiting(deputy) == []
    with pytest.raises(NotAllowed):
        approve(deputy, req)
    assert not Approval.objects.exists()
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.PENDING


@pytest.mark.django_db
def test_a_delegates_decision_records_both_names(requester, manager, owner, deputy, prod):
    created = _delegate(manager, deputy)
    event = AuditEvent.objects.get(action="delegation.created")
    assert event.target_id == str(created.pk)
    assert event.data["delegator"] == "Mina Manager" and event.data["delegate"] == "Dana Deputy"

    req = submit(requester, prod)
    approve(deputy, req, comment="Covering for Mina")
    approval = Approval.objects.get()
    assert approval.approver == deputy and approval.on_behalf_of == manager
    event = AuditEvent.objects.get(action="request.approval_given")
    assert event.actor_id == deputy.pk
    assert event.data["delegate"] == "Dana Deputy"
    assert event.data["on_behalf_of"] == "Mina Manager"
    assert event.data["on_behalf_of_id"] == manager.pk
    # The manager was stood in for, so they don't decide this request as well.
    assert _waiting(manager) == []
    with pytest.raises(WorkflowError):
        approve(manager, req)
    approve(owner, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.ACTIVE


@pytest.mark.django_db
def test_a_delegates_denial_records_both_names(requester, manager, deputy, prod):
    _delegate(manager, deputy)
    req = submit(requester, prod)
    request_deny(actor=deputy, request_id=req.pk, comment="Not during the freeze")
    event = AuditEvent.objects.get(action="request.denied")
    assert event.actor_id == deputy.pk
    assert (event.data["delegate"], event.data["on_behalf_of"]) == ("Dana Deputy", "Mina Manager")


@pytest.mark.django_db
def test_a_delegate_never_approves_a_request_they_made(manager, owner, prod):
    report = UserFactory(display_name="Rita Report", manager=manager)
    _delegate(manager, report)  # the manager is away and names their own report
    req = submit(report, prod)  # ...who then asks for access the manager must approve
    assert _waiting(report) == []
    with pytest.raises(NotAllowed):
        approve(report, req)
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_a_delegate_never_approves_a_request_they_benefit_from(
    manager, owner, security_admin, prod
):
    report = UserFactory(display_name="Rita Report", manager=manager)
    # The manager asks for their report; stage 1 (manager) falls back to the security admin...
    req = submit(manager, prod, beneficiary=report)
    assert {a.principal for a in req.assignments.all()} == {security_admin}
    # ...who names the report as delegate.
    _delegate(security_admin, report)
    assert _waiting(report) == []
    with pytest.raises(NotAllowed):
        approve(report, req)
    with pytest.raises(NotAllowed):
        request_deny(actor=report, request_id=req.pk, comment="I decline my own access")
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_delegates_are_told_about_requests_waiting_for_the_person_they_stand_in_for(
    requester, manager, deputy, prod, django_capture_on_commit_callbacks
):
    _delegate(manager, deputy)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        submit(requester, prod)
    to_deputy = [m for m in mail.outbox if m.to == [deputy.email]]
    assert len(to_deputy) == 1
    assert "You receive this as the delegate of Mina Manager." in to_deputy[0].body


@pytest.mark.django_db
def test_the_inbox_drops_a_request_once_the_person_or_their_delegate_decided(requester, deputy):
    """A stage with a quorum stays open after one decision: it must leave the inbox of the
    approver whose delegate decided, and of the delegate of an approver who decided, since
    neither may decide it any more."""
    first, second, third, fourth = people(4, "Owner")
    policy = make_policy("Three owners", (ApproverRule.ENTITLEMENT_OWNER, 3, False))
    ent = make_entitlement(
        tier=RiskTier.MEDIUM, owners=[first, second, third, fourth], policy=policy
    )
    stand_in = UserFactory(display_name="Sid Stand-in")
    _delegate(first, deputy)
    _delegate(second, stand_in)
    req = submit(requester, ent)
    for person in (first, second, third, deputy, stand_in):
        assert _waiting(person) == [req], person

    approve(deputy, req)  # for the first owner
    assert _waiting(deputy) == []
    assert _waiting(first) == []
    with pytest.raises(NotAllowed):
        approve(first, req)

    approve(second, req)  # in person: their stand-in has nothing left to decide
    assert _waiting(stand_in) == []
    with pytest.raises(NotAllowed):
        approve(stand_in, req)

    assert _waiting(third) == [req]
    approve(third, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.ACTIVE
    assert _waiting(fourth) == []
