"""Separation of duties beyond "not your own request": service-account owners, conflicts that
appear while a request waits, and step-up that follows the tier whatever the policy says."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import ApproverRule, ConflictRule, RiskTier, StageAssignment
from accessreq.selectors import inbox
from accessreq.services.common import now
from accessreq.states import RequestState
from portal.models import User
from tests.accessreq.workflow_helpers import (
    FRESH,
    STALE,
    approve,
    make_entitlement,
    make_policy,
    submit,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def bot(requester: User, outsider: User) -> User:
    """A service account co-owned by the requester and the outsider."""
    account = UserFactory(display_name="ci-bot", email="ci-bot@example.com", kind="service")
    account.owners.add(requester, outsider)
    return account


def test_a_co_owner_of_a_service_account_never_approves_its_access(
    requester, outsider, owner, bot
) -> None:
    entitlement = make_entitlement(tier=RiskTier.LOW, owners=[outsider, owner])
    access_request = submit(requester, entitlement, beneficiary=bot)
    asked = set(
        StageAssignment.objects.filter(request=access_request).values_list("principal", flat=True)
    )
    assert asked == {owner.pk}  # the other co-owner is not asked
    assert list(inbox(user=outsider, at=now())) == []
    with pytest.raises(NotAllowed):
        approve(outsider, access_request)
    approve(owner, access_request)
    access_request.refresh_from_db()
    assert access_request.state == RequestState.ACTIVE


def test_service_account_mail_goes_to_its_owners(
    requester, outsider, owner, bot, django_capture_on_commit_callbacks
) -> None:
    entitlement = make_entitlement(tier=RiskTier.LOW, owners=[owner])
    with django_capture_on_commit_callbacks(execute=True):
        access_request = submit(requester, entitlement, beneficiary=bot)
        approve(owner, access_request)
    to_owner = [m for m in mail.outbox if m.to == [outsider.email]]
    assert [m.subject for m in to_owner] == [f"[Gatehouse] ci-bot: Approved: {entitlement}"]
    assert "About the service account ci-bot" in to_owner[0].body


def test_a_conflict_that_appears_while_waiting_blocks_the_approval(
    requester, manager, owner
) -> None:
    deploy = make_entitlement(tier=RiskTier.LOW, owners=[owner])
    release = make_entitlement(tier=RiskTier.LOW, owners=[owner], system=deploy.system)
    waiting = submit(requester, deploy)
    ConflictRule.objects.create(first=deploy, second=release, reason="Deployers don't release")
    # The conflicting access is granted after the first request was submitted.
    ConflictRule.objects.all().delete()
    approve(owner, submit(requester, release))
    ConflictRule.objects.create(first=deploy, second=release, reason="Deployers don't release")
    with pytest.raises(WorkflowError, match="Deployers don't release"):
        approve(manager, waiting)
    waiting.refresh_from_db()
    assert waiting.state == RequestState.PENDING and waiting.grant is None


def test_critical_tier_needs_step_up_even_if_its_policy_forgets_it(requester, manager) -> None:
    lax = make_policy("No step-up", (ApproverRule.MANAGER, 1, False))
    entitlement = make_entitlement(tier=RiskTier.CRITICAL, policy=lax)
    access_request = submit(requester, entitlement, duration=timedelta(hours=1))
    with pytest.raises(StepUpRequired):
        approve(manager, access_request, mfa=STALE)
    approve(manager, access_request, mfa=FRESH)
    access_request.refresh_from_db()
    assert access_request.state == RequestState.ACTIVE


def test_stage_assignments_keep_field_history(requester, owner) -> None:
    access_request = submit(requester, make_entitlement(tier=RiskTier.LOW, owners=[owner]))
    assignments = StageAssignment.objects.filter(request=access_request)
    assert assignments.count() == StageAssignment.history.filter(request=access_request).count()
    assert assignments.count() >= 1
