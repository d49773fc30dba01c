"""Review decisions through the services: certify, revoke (through the grant workflow and its
connector, with the removal confirmed later), reassign, bulk certify, and every refusal: someone
else's item, a closed campaign, one's own access, a stale second factor, critical items in bulk."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest

from accessreq.campaign_states import ReviewDecision
from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import (
    AccessRequest,
    ApproverRule,
    Campaign,
    CampaignTemplate,
    Connector,
    ConnectorKind,
    Grant,
    GrantState,
    Notification,
    Operation,
    ProvisioningTask,
    ReviewItem,
    RiskTier,
    TaskStatus,
)
from accessreq.selectors import holds_scope
from accessreq.services.campaigns import (
    campaign_cancel,
    campaign_close,
    campaign_launch,
    item_decide,
    item_reassign,
    items_bulk_certify,
)
from accessreq.services.common import MfaContext, now
from accessreq.services.grants import grant_revoke
from accessreq.services.provisioning import provisioning_confirm
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.models import User
from tests.accessreq.workflow_helpers import (
    FRESH,
    STALE,
    actions,
    approve,
    events,
    grant_of,
    make_entitlement,
    make_policy,
    submit,
)
from tests.factories import SystemFactory, UserFactory

WHY = "Moved to the data team; no longer deploys payments"


@dataclass
class Review:
    campaign: Campaign
    low: ReviewItem  # the requester's grants, reviewed by their manager
    high: ReviewItem
    critical: ReviewItem
    other: ReviewItem  # the outsider's grant, reviewed by the fallback (security admin)
    ops_desk: Connector

    def refreshed(self, item: ReviewItem) -> ReviewItem:
        return ReviewItem.objects.select_related("grant").get(pk=item.pk)


@pytest.fixture
def review(requester, manager, owner, outsider, security_admin) -> Review:
    policy = make_policy("Entitlement owner approves", (ApproverRule.ENTITLEMENT_OWNER, 1, False))
    ops_desk = Connector.objects.create(name="ops desk", kind=ConnectorKind.MANUAL)
    payments = SystemFactory(name="payments", slug="payments")
    ents = {
        tier: make_entitlement(
            tier=tier,
            owners=[owner],
            policy=policy,
            system=payments,
            name=f"Deployer {tier}",
            slug=f"deployer-{tier}",
            connector=ops_desk if tier == RiskTier.LOW else None,
        )
        for tier in (RiskTier.LOW, RiskTier.HIGH, RiskTier.CRITICAL)
    }
    grants = {t: grant_of(approve(owner, submit(requester, e))) for t, e in ents.items()}
    others = grant_of(approve(owner, submit(outsider, ents[RiskTier.LOW])))
    template = CampaignTemplate.objects.create(
        name="Payments quarterly", fallback_reviewer=security_admin, owner=security_admin
    )
    campaign = campaign_launch(template_id=template.pk, actor=security_admin)
    items = {i.grant_id: i for i in campaign.items.select_related("grant")}
    assert {i.reviewer for i in items.values()} == {manager, security_admin}
    return Review(
        campaign=campaign,
        low=items[grants[RiskTier.LOW].pk],
        high=items[grants[RiskTier.HIGH].pk],
        critical=items[grants[RiskTier.CRITICAL].pk],
        other=items[others.pk],
        ops_desk=ops_desk,
    )


def holds(user: User, tier: str) -> bool:
    return holds_scope(user=user, scope="deploy", system="payments", environment=tier)


def unchanged(review: Review, item: ReviewItem) -> None:
    """Nothing happened to the item or its grant, and no review event was written."""
    fresh = review.refreshed(item)
    assert fresh.decision == ReviewDecision.PENDING and fresh.decided_by is None
    assert fresh.grant.state == GrantState.ACTIVE
    assert not AuditEvent.objects.filter(action__startswith="review.").exists()


# --- Certify -------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_certify_records_who_when_and_the_second_factor(review, manager, requester) -> None:
    item = item_decide(
        actor=manager,
        item_id=review.low.pk,
        decision="certified",
        comment=" Still on call ",
        mfa=STALE,
    )
    item = review.refreshed(item)
    assert item.decision == ReviewDecision.CERTIFIED and item.decided_by == manager
    assert item.decided_at is not None and abs(item.decided_at - now()) < timedelta(seconds=5)
    assert (item.comment, item.mfa_method, item.mfa_age_seconds) == ("Still on call", "totp", 3600)
    assert item.grant.state == GrantState.ACTIVE and holds(requester, "low")
    [event] = events("review.certified")
    assert event.actor_id == manager.pk and event.target_id == str(item.pk)
    assert event.data["grant_id"] == item.grant_id
    assert event.data["campaign_id"] == review.campaign.pk
    assert event.data["holder"] == "Dev Requester" and event.data["mfa_age_seconds"] == 3600
    assert not events("grant.revoked")

    with pytest.raises(WorkflowError, match="already decided: Certified"):
        item_decide(actor=manager, item_id=item.pk, decision="revoked", comment=WHY, mfa=FRESH)
    with pytest.raises(WorkflowError, match="Choose certify or revoke"):
        item_decide(actor=manager, item_id=review.high.pk, decision="reassigned", mfa=FRESH)


# --- Revoke and remediation ----------------------------------------------------------------------


@pytest.mark.django_db
def test_revoke_needs_a_reason(review, manager) -> None:
    with pytest.raises(WorkflowError, match="Say why the access should be revoked"):
        item_decide(actor=manager, item_id=review.low.pk, decision="revoked", comment="  ")
    unchanged(review, review.low)


@pytest.mark.django_db
def test_revoke_ends_the_grant_through_the_workflow_and_its_connector(
    review, manager, requester, security_admin, django_capture_on_commit_callbacks
) -> None:
    assert holds(requester, "low")
    with django_capture_on_commit_callbacks(execute=True):
        item_decide(actor=manager, item_id=review.low.pk, decision="revoked", comment=WHY)

    item = review.refreshed(review.low)
    grant = item.grant
    assert item.decision == ReviewDecision.REVOKED and item.comment == WHY
    assert grant.state == GrantState.REVOKED and grant.revoked_by == manager
    assert grant.revoked_at == item.decided_at
    assert grant.revoke_reason == f"Access review {review.campaign}: {WHY}"
    assert not holds(requester, "low") and holds(requester, "high")
    access_request = AccessRequest.objects.get(pk=grant.request_id)
    assert access_request.state == RequestState.REVOKED
    assert actions(access_request)[-1] == "grant.revoked"
    [revoked] = events("grant.revoked")
    assert revoked.actor_id == manager.pk and revoked.data["reason"] == grant.revoke_reason
    [decided] = events("review.revoked")
    assert decided.data["comment"] == WHY and decided.data["grant_id"] == grant.pk

    # Remediation: the connector has been asked, and only its confirmation sets the time.
    task = ProvisioningTask.objects.get(grant=grant, operation=Operation.DEPROVISION)
    assert task.status == TaskStatus.PENDING and task.connector == review.ops_desk
    assert grant.deprovisioned_at is None, "not remediated until the connector confirms"
    provisioning_confirm(actor=security_admin, task_id=task.pk, note="Removed from deployers")
    grant.refresh_from_db()
    task.refresh_from_db()
    assert grant.deprovisioned_at is not None and grant.deprovisioned_at == task.confirmed_at
    assert review.refreshed(review.low).decision == ReviewDecision.REVOKED


@pytest.mark.django_db
def test_revoking_access_that_already_ended_revokes_nothing_twice(review, manager, owner) -> None:
    grant_revoke(actor=owner, grant_id=review.low.grant_id, reason="Ended by the owner")
    item_decide(actor=manager, item_id=review.low.pk, decision="revoked", comment=WHY)
    assert review.refreshed(review.low).decision == ReviewDecision.REVOKED
    [revoked] = events("grant.revoked")
    assert revoked.actor_id == owner.pk
    assert Grant.objects.get(pk=review.low.grant_id).revoked_by == owner


# --- Reassign ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_reassign_hands_the_item_to_another_reviewer(
    review, manager, owner, requester, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        new = item_reassign(
            actor=manager, item_id=review.high.pk, to=owner, reason="Omar runs this system"
        )
    old = review.refreshed(review.high)
    assert old.decision == ReviewDecision.REASSIGNED and old.decided_by == manager
    assert old.comment == "Omar runs this system"
    assert new.decision == ReviewDecision.PENDING and new.reviewer == owner
    assert new.reviewer_reason == "reassigned" and new.reassigned_from == old
    assert new.grant_id == old.grant_id and new.snapshot == old.snapshot
    assert new.campaign_id == review.campaign.pk and new.tier == RiskTier.HIGH
    [event] = events("review.reassigned")
    assert event.data["to_id"] == owner.pk and event.data["new_item_id"] == new.pk
    assert Notification.objects.filter(recipient=owner, key=f"review:{new.pk}:assigned").exists()

    # The old reviewer is done with it; the new one decides.
    with pytest.raises(WorkflowError, match="already decided: Reassigned"):
        item_decide(actor=manager, item_id=old.pk, decision="certified", mfa=FRESH)
    with pytest.raises(NotAllowed):
        item_decide(actor=manager, item_id=new.pk, decision="certified", mfa=FRESH)
    item_decide(actor=owner, item_id=new.pk, decision="certified", mfa=FRESH)
    assert ReviewItem.objects.get(pk=new.pk).decision == ReviewDecision.CERTIFIED
    assert review.campaign.items.filter(grant_id=old.grant_id).count() == 2


@pytest.mark.django_db
def test_reassign_refuses_self_the_holder_and_non_people(review, manager, requester) -> None:
    robot = UserFactory(kind=User.Kind.SERVICE)
    gone = UserFactory(is_active=False)
    for to, message in [
        (manager, "not yourself and not the person who holds it"),
        (requester, "not yourself and not the person who holds it"),
        (robot, "the account is not an active person"),
        (gone, "the account is not an active person"),
    ]:
        with pytest.raises(WorkflowError, match=message):
            item_reassign(actor=manager, item_id=review.low.pk, to=to, reason="Not mine")
    with pytest.raises(WorkflowError, match="Say why you hand this item on"):
        item_reassign(actor=manager, item_id=review.low.pk, to=UserFactory(), reason=" ")
    unchanged(review, review.low)
    assert review.campaign.items.count() == 4


# --- Refusals ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_another_reviewers_item_is_not_found(review, manager, outsider, owner) -> None:
    for actor in (outsider, owner):
        with pytest.raises(NotAllowed):
            item_decide(actor=actor, item_id=review.low.pk, decision="certified", mfa=FRESH)
        with pytest.raises(NotAllowed):
            item_decide(actor=actor, item_id=review.low.pk, decision="revoked", comment=WHY)
        with pytest.raises(NotAllowed):
            item_reassign(actor=actor, item_id=review.low.pk, to=owner, reason="Mine now")
        done, refused = items_bulk_certify(actor=actor, item_ids=[review.low.pk], mfa=FRESH)
        assert done == [] and refused == [f"Item #{review.low.pk} is not yours to review."]
    with pytest.raises(NotAllowed):
        item_decide(actor=manager, item_id=review.other.pk, decision="certified", mfa=FRESH)
    with pytest.raises(NotAllowed):
        item_decide(actor=manager, item_id=999_999, decision="certified", mfa=FRESH)
    unchanged(review, review.low)


@pytest.mark.parametrize("ending", ["closed", "cancelled"])
@pytest.mark.django_db
def test_no_decision_once_the_campaign_has_ended(review, manager, security_admin, ending) -> None:
    if ending == "closed":
        assert campaign_close(campaign_id=review.campaign.pk, actor=security_admin, early=True)
    else:
        campaign_cancel(campaign_id=review.campaign.pk, actor=security_admin, reason="Wrong scope")
    assert Campaign.objects.get(pk=review.campaign.pk).state == ending
    before = AuditEvent.objects.count()
    message = f"This campaign is {ending}; decisions are no longer accepted."
    with pytest.raises(WorkflowError, match=message) as refused:
        item_decide(actor=manager, item_id=review.high.pk, decision="certified", mfa=FRESH)
    assert not isinstance(refused.value, NotAllowed), "a closed campaign is explained, not a 404"
    with pytest.raises(WorkflowError, match=message):
        item_decide(actor=manager, item_id=review.low.pk, decision="revoked", comment=WHY)
    with pytest.raises(WorkflowError, match=message):
        item_reassign(actor=manager, item_id=review.low.pk, to=UserFactory(), reason="Busy")
    done, refused_bulk = items_bulk_certify(actor=manager, item_ids=[review.low.pk], mfa=FRESH)
    assert done == [] and message in refused_bulk[0]
    assert AuditEvent.objects.count() == before
    assert review.campaign.items.filter(decision=ReviewDecision.CERTIFIED).count() == 0


@pytest.mark.django_db
def test_nobody_can_certify_their_own_access(review, manager, requester) -> None:
    with pytest.raises(WorkflowError):
        item_reassign(actor=manager, item_id=review.low.pk, to=requester, reason="Ask them")
    # Even if the holder ends up assigned to their own item, they can't decide it.
    ReviewItem.objects.filter(pk=review.low.pk).update(reviewer=requester)
    with pytest.raises(WorkflowError, match="own access"):
        item_decide(actor=requester, item_id=review.low.pk, decision="certified", mfa=FRESH)
    with pytest.raises(WorkflowError, match="own access"):
        item_reassign(actor=requester, item_id=review.low.pk, to=manager, reason="Not me")
    done, refused = items_bulk_certify(actor=requester, item_ids=[review.low.pk], mfa=FRESH)
    assert done == [] and "own access" in refused[0]
    unchanged(review, review.low)


# --- Step-up and bulk ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_high_and_critical_decisions_need_a_fresh_second_factor(review, manager) -> None:
    for item in (review.high, review.critical):
        for mfa in (STALE, MfaContext()):
            with pytest.raises(StepUpRequired, match="fresh second factor"):
                item_decide(actor=manager, item_id=item.pk, decision="certified", mfa=mfa)
            with pytest.raises(StepUpRequired):
                item_decide(
                    actor=manager, item_id=item.pk, decision="revoked", comment=WHY, mfa=mfa
                )
        unchanged(review, item)
    item_decide(actor=manager, item_id=review.high.pk, decision="certified", mfa=FRESH)
    item_decide(
        actor=manager, item_id=review.critical.pk, decision="revoked", comment=WHY, mfa=FRESH
    )
    high, critical = review.refreshed(review.high), review.refreshed(review.critical)
    assert high.decision == ReviewDecision.CERTIFIED and high.mfa_age_seconds == 10
    assert critical.decision == ReviewDecision.REVOKED and critical.mfa_method == "totp"
    assert critical.grant.state == GrantState.REVOKED


@pytest.mark.django_db
def test_bulk_certify_refuses_critical_items_when_they_need_their_own_decision(
    review, manager
) -> None:
    ids = [review.low.pk, review.high.pk, review.critical.pk, review.other.pk]
    done, refused = items_bulk_certify(actor=manager, item_ids=ids, mfa=FRESH)
    assert sorted(i.pk for i in done) == sorted([review.low.pk, review.high.pk])
    assert refused == [
        f"Dev Requester / {review.critical.snapshot['entitlement']} is critical tier: "
        "decide it on its own.",
        f"Item #{review.other.pk} is not yours to review.",
    ]
    assert review.refreshed(review.critical).decision == ReviewDecision.PENDING
    assert review.refreshed(review.other).decision == ReviewDecision.PENDING
    assert len(events("review.certified")) == 2

    # A critical item is still decided on its own; a template may allow it in bulk.
    CampaignTemplate.objects.filter(pk=review.campaign.template_id).update(critical_per_item=False)
    done, refused = items_bulk_certify(actor=manager, item_ids=[review.critical.pk], mfa=FRESH)
    assert [i.pk for i in done] == [review.critical.pk] and refused == []


@pytest.mark.django_db
def test_bulk_certify_without_a_fresh_factor_certifies_only_low_risk_items(review, manager) -> None:
    done, refused = items_bulk_certify(
        actor=manager, item_ids=[review.low.pk, review.high.pk], mfa=STALE
    )
    assert [i.pk for i in done] == [review.low.pk]
    assert len(refused) == 1 and refused[0].startswith("Dev Requester: High and critical access")
    assert review.refreshed(review.high).decision == ReviewDecision.PENDING
