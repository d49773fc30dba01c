"""Who must approve: tier policies and overrides, stages frozen at submission, quorum,
separation of duties between approvers and between entitlements, and the fallbacks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import (
    AccessRequest,
    ApprovalPolicy,
    ApproverRule,
    AssignmentReason,
    ConflictRule,
    Grant,
    PolicyStage,
    RiskTier,
    StageAssignment,
)
from accessreq.policy import DEFAULT_STAGES, approval_preview
from accessreq.selectors import inbox
from accessreq.services.common import now
from accessreq.services.grants import grant_revoke, grants_expire_due
from accessreq.states import RequestState
from audit.db import install_append_only, remove_append_only
from portal.roles import SECURITY_ADMIN
from tests.accessreq.workflow_helpers import (
    approve,
    grant_of,
    lapse,
    make_entitlement,
    make_policy,
    people,
    submit,
)
from tests.factories import UserFactory


def _assigned(access_request, stage=None):
    stage = stage or AccessRequest.objects.get(pk=access_request.pk).current_stage
    return {
        a.principal: a.reason
        for a in StageAssignment.objects.filter(request=access_request, stage=stage)
    }


def _tier_policies() -> dict[str, list[tuple[str, int, bool]]]:
    return {
        policy.tier: [(s.approver_rule, s.quorum, s.step_up) for s in policy.stages.all()]
        for policy in ApprovalPolicy.objects.filter(tier__isnull=False).prefetch_related("stages")
    }


# --- Default and overriding policies -----------------------------------------------------


@pytest.mark.django_db
def test_every_tier_has_its_default_policy_after_migrate() -> None:
    assert _tier_policies() == {str(tier): stages for tier, stages in DEFAULT_STAGES.items()}


@pytest.mark.django_db(transaction=True)
def test_default_policies_come_back_after_a_flush() -> None:
    """Transactional tests empty every table between cases; the post_migrate hook that the
    flush fires recreates the policies, so the next test (and a reset database) has them."""
    assert set(_tier_policies()) == set(RiskTier.values)
    PolicyStage.objects.all().delete()
    ApprovalPolicy.objects.all().delete()
    remove_append_only(connection)
    try:
        call_command("flush", interactive=False, verbosity=0)
    finally:
        install_append_only(connection)
    assert _tier_policies() == {str(tier): stages for tier, stages in DEFAULT_STAGES.items()}


@pytest.mark.django_db
def test_an_entitlements_own_policy_overrides_its_tiers(
    requester, manager, owner, security_admin
) -> None:
    override = make_policy("Security only", (ApproverRule.SECURITY_ADMIN, 1, False))
    prod = make_entitlement(tier=RiskTier.HIGH, system_owners=[owner], policy=override)
    req = submit(requester, prod)
    assert [(s["rule"], s["policy"]) for s in req.stages] == [
        (ApproverRule.SECURITY_ADMIN, "Security only")
    ]
    assert _assigned(req) == {security_admin: AssignmentReason.RULE}
    assert list(inbox(user=manager, at=now())) == []
    with pytest.raises(NotAllowed):
        approve(manager, req)
    approve(security_admin, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.ACTIVE


@pytest.mark.django_db
def test_stages_are_frozen_when_the_request_is_submitted(
    requester, manager, owner, security_admin
) -> None:
    prod = make_entitlement(tier=RiskTier.HIGH, system_owners=[owner])
    req = submit(requester, prod)
    frozen = list(req.stages)
    # An admin tightens the high-tier policy while the request waits.
    policy = ApprovalPolicy.objects.get(tier=RiskTier.HIGH)
    policy.stages.update(quorum=2)
    policy.stages.create(position=3, approver_rule=ApproverRule.SECURITY_ADMIN, quorum=1)

    approve(manager, req)
    approve(owner, req)
    req.refresh_from_db()
    assert req.stages == frozen and len(req.stages) == 2
    assert req.state == RequestState.ACTIVE
    # A request submitted now gets the new rules.
    other = make_entitlement(tier=RiskTier.HIGH, system_owners=[owner])
    assert [s["quorum"] for s in submit(requester, other).stages] == [2, 2, 1]


# --- Quorum and one stage per person ------------------------------------------------------


@pytest.mark.django_db
def test_a_quorum_of_two_needs_two_different_people(requester) -> None:
    first, second = people(2, "Owner")
    policy = make_policy("Two owners", (ApproverRule.ENTITLEMENT_OWNER, 2, False))
    ent = make_entitlement(tier=RiskTier.MEDIUM, owners=[first, second], policy=policy)
    req = submit(requester, ent)

    approve(first, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.PENDING
    with pytest.raises(WorkflowError, match="already decided"):
        approve(first, req)
    assert not Grant.objects.exists()
    approve(second, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.ACTIVE
    assert Grant.objects.count() == 1


@pytest.mark.django_db
def test_a_manager_who_is_also_system_owner_decides_one_stage_and_the_other_owner_the_next(
    requester, manager, owner
) -> None:
    prod = make_entitlement(tier=RiskTier.HIGH, system_owners=[manager, owner])
    req = submit(requester, prod)
    assert set(_assigned(req)) == {manager}
    approve(manager, req)

    assert _assigned(req) == {owner: AssignmentReason.RULE}
    assert list(inbox(user=manager, at=now())) == []
    with pytest.raises(WorkflowError, match="already decided"):
        approve(manager, req)
    approve(owner, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.ACTIVE


@pytest.mark.django_db
def test_when_the_only_system_owner_decided_stage_one_stage_two_falls_back_to_security_admins(
    requester, manager, security_admin
) -> None:
    prod = make_entitlement(tier=RiskTier.HIGH, system_owners=[manager])
    req = submit(requester, prod)
    approve(manager, req)

    req.refresh_from_db()
    assert req.current_stage == 2 and req.state == RequestState.PENDING
    assert _assigned(req) == {security_admin: AssignmentReason.FALLBACK}
    assert list(inbox(user=security_admin, at=now())) == [req]
    with pytest.raises(WorkflowError, match="already decided"):
        approve(manager, req)
    approve(security_admin, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.ACTIVE


# --- Nobody approves their own request ----------------------------------------------------


@pytest.mark.django_db
def test_a_security_admin_and_superuser_cannot_approve_their_own_request(security_admin) -> None:
    boss = UserFactory(
        display_name="Root Admin", is_superuser=True, is_staff=True, groups=[SECURITY_ADMIN]
    )
    ent = make_entitlement(tier=RiskTier.LOW, owners=[boss])
    req = submit(boss, ent)
    # Boss owns it and is a security admin, but the stage goes to the other admin.
    assert _assigned(req) == {security_admin: AssignmentReason.FALLBACK}
    assert list(inbox(user=boss, at=now())) == []
    with pytest.raises(NotAllowed):
        approve(boss, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.PENDING
    approve(security_admin, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.ACTIVE


@pytest.mark.django_db
def test_the_beneficiary_of_a_request_made_for_them_cannot_approve_it(
    requester, manager, owner
) -> None:
    ent = make_entitlement(tier=RiskTier.LOW, owners=[requester, owner])
    req = submit(manager, ent, beneficiary=requester)
    # The manager asked, the report benefits: only the other owner remains.
    assert set(_assigned(req)) == {owner}
    for person in (manager, requester):
        with pytest.raises(NotAllowed):
            approve(person, req)
        assert list(inbox(user=person, at=now())) == []
    approve(owner, req)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.ACTIVE


# --- Fallbacks ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_without_a_manager_the_manager_stage_goes_to_security_admins(owner, security_admin) -> None:
    loner = UserFactory(display_name="No Manager")
    prod = make_entitlement(tier=RiskTier.HIGH, system_owners=[owner])
    preview = approval_preview(prod, requester=loner, beneficiary=loner)
    assert [(s["people"], s["fallback"]) for s in preview] == [
        ([security_admin], True),
        ([owner], False),
    ]
    req = submit(loner, prod)
    assert _assigned(req) == {security_admin: AssignmentReason.FALLBACK}


@pytest.mark.django_db
def test_submit_is_refused_when_nobody_at_all_could_approve(owner) -> None:
    loner = UserFactory(display_name="No Manager")
    ent = make_entitlement(tier=RiskTier.LOW)  # no owners, no security admins anywhere
    with pytest.raises(WorkflowError, match=r"Nobody can approve stage 1 \(Entitlement owner or"):
        submit(loner, ent)
    assert not AccessRequest.objects.exists()


# --- Separation of duties between entitlements -------------------------------------------


@pytest.fixture
def conflicting(owner):
    deployer = make_entitlement(tier=RiskTier.LOW, owners=[owner], name="Deployer")
    releaser = make_entitlement(tier=RiskTier.LOW, owners=[owner], name="Release approver")
    ConflictRule.objects.create(
        first=deployer, second=releaser, reason="deployers may not approve releases"
    )
    return deployer, releaser


@pytest.mark.django_db
def test_a_conflict_rule_blocks_a_request_while_the_other_access_is_held(
    requester, owner, conflicting
) -> None:
    deployer, releaser = conflicting
    approve(owner, submit(requester, deployer))
    with pytest.raises(WorkflowError) as refused:
        submit(requester, releaser)
    message = str(refused.value)
    assert message.startswith("Separation of duties:")
    assert f"holds {deployer}" in message and "deployers may not approve releases" in message
    assert not AccessRequest.objects.filter(entitlement=releaser).exists()


@pytest.mark.django_db
def test_a_conflict_rule_blocks_both_ways_while_the_other_is_pending(
    requester, conflicting
) -> None:
    deployer, releaser = conflicting
    submit(requester, releaser)
    with pytest.raises(WorkflowError, match=f"has requested {releaser}, which conflicts"):
        submit(requester, deployer)


@pytest.mark.django_db
def test_a_conflict_rule_no_longer_blocks_after_the_other_access_ended(
    requester, owner, conflicting
) -> None:
    deployer, releaser = conflicting
    grant = grant_of(approve(owner, submit(requester, deployer)))
    lapse(grant)  # ended; the expiry job has not even run
    req = submit(requester, releaser)
    assert req.state == RequestState.PENDING
    grants_expire_due()
    # And after a revoke as well.
    grant = grant_of(approve(owner, req))
    grant_revoke(actor=owner, grant_id=grant.pk, reason="Moved to the release team")
    assert submit(requester, deployer, duration=timedelta(hours=1)).state == RequestState.PENDING


def test_preview_does_not_offer_the_sole_earlier_approver_for_a_later_stage(db: None) -> None:
    """A manager who is also the only system owner decides stage 1 only; the preview shows
    stage 2 going to the security admins, as it will at run time."""
    from accessreq.policy import approval_preview
    from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

    boss = UserFactory(display_name="Bo Boss")
    dev = UserFactory(display_name="Di Dev", manager=boss)
    admin = UserFactory(display_name="Sec Admin", groups=["security-admin"])
    system = SystemFactory()
    system.owners.add(boss)
    entitlement = EntitlementFactory(
        system=system, environment=EnvironmentFactory(slug="prod", risk_tier="high")
    )
    preview = approval_preview(entitlement, requester=dev, beneficiary=dev)
    assert [p.display_name for p in preview[0]["people"]] == ["Bo Boss"]
    assert [p.display_name for p in preview[1]["people"]] == ["Sec Admin"]
    assert preview[1]["fallback"] is True and admin.pk
