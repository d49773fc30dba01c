"""The request workflow end to end through its services: submit, stages, grant, revoke."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import AccessRequest, Grant, GrantState, RequestKind, RiskTier
from accessreq.selectors import holds_scope, inbox
from accessreq.services.common import MfaContext, now
from accessreq.services.grants import grant_revoke
from accessreq.services.requests import request_approve, request_deny, request_submit
from accessreq.states import RequestState
from audit.models import AuditEvent
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory

FRESH = MfaContext("totp", 10)
STALE = MfaContext("totp", 3600)
REASON = "Deploy the hotfix for the payments outage"


@pytest.fixture
def prod_deploy(owner):
    system = SystemFactory(name="payments", slug="payments")
    system.owners.add(owner)
    env = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    return EntitlementFactory(system=system, environment=env, scopes=["deploy"])


@pytest.mark.django_db(transaction=True)
def test_high_tier_needs_manager_then_owner_with_step_up(requester, manager, owner, prod_deploy):
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=8)
    )
    assert req.state == RequestState.PENDING and req.current_stage == 1
    assert list(inbox(user=manager, at=now())) == [req]
    assert list(inbox(user=owner, at=now())) == []

    with pytest.raises(StepUpRequired):
        request_approve(actor=manager, request_id=req.pk, mfa=STALE)
    with pytest.raises(NotAllowed):
        request_approve(actor=owner, request_id=req.pk, mfa=FRESH)

    request_approve(actor=manager, request_id=req.pk, mfa=FRESH, comment="ok")
    req.refresh_from_db()
    assert req.state == RequestState.PENDING and req.current_stage == 2
    assert list(inbox(user=owner, at=now())) == [req]
    assert not holds_scope(user=requester, scope="deploy", system="payments", environment="prod")

    request_approve(actor=owner, request_id=req.pk, mfa=FRESH)
    req.refresh_from_db()
    assert req.state == RequestState.ACTIVE
    grant = req.grant
    assert grant is not None and grant.state == GrantState.ACTIVE
    # The duration starts at approval, not at submission.
    assert abs((grant.expires_at - grant.starts_at) - timedelta(hours=8)) < timedelta(seconds=1)
    assert holds_scope(user=requester, scope="deploy", system="payments", environment="prod")
    assert not holds_scope(user=requester, scope="rollback", system="payments", environment="prod")

    actions = list(
        AuditEvent.objects.filter(target_id=str(req.pk)).values_list("action", flat=True)
    )
    assert actions == [
        "request.submitted",
        "request.approval_given",
        "request.approval_given",
        "request.approved",
        "grant.activated",
    ]
    subjects = [m.subject for m in mail.outbox]
    assert any("Approval needed" in s for s in subjects)
    assert any("Approved" in s for s in subjects)

    grant_revoke(actor=owner, grant_id=grant.pk, reason="Incident over")
    req.refresh_from_db()
    assert req.state == RequestState.REVOKED
    assert not holds_scope(user=requester, scope="deploy", system="payments", environment="prod")


@pytest.mark.django_db
def test_second_request_for_held_access_is_an_extension(requester, manager, owner, prod_deploy):
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    request_approve(actor=manager, request_id=req.pk, mfa=FRESH)
    request_approve(actor=owner, request_id=req.pk, mfa=FRESH)
    grant = Grant.objects.get()
    before = grant.expires_at
    ext = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=4)
    )
    assert ext.kind == RequestKind.EXTENSION and ext.grant_id == grant.pk
    request_approve(actor=manager, request_id=ext.pk, mfa=FRESH)
    request_approve(actor=owner, request_id=ext.pk, mfa=FRESH)
    grant.refresh_from_db()
    assert Grant.objects.count() == 1
    assert grant.expires_at - before > timedelta(hours=3, minutes=59)


@pytest.mark.django_db
def test_deny_needs_a_comment_and_ends_the_request(requester, manager, prod_deploy):
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    with pytest.raises(WorkflowError, match="Say why"):
        request_deny(actor=manager, request_id=req.pk, comment="  ")
    request_deny(actor=manager, request_id=req.pk, comment="Use staging first")
    assert AccessRequest.objects.get().state == RequestState.DENIED
    with pytest.raises(WorkflowError, match="no longer pending"):
        request_approve(actor=manager, request_id=req.pk, mfa=FRESH)
