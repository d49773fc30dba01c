"""The deadline job through the services: unanswered items get the template's action (revoke
through the grant workflow, or keep and flag), the campaign closes and its owner gets a summary;
run twice, or by two workers at once, every item closes once and every grant is revoked once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.core import mail

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models import (
    AccessRequest,
    Campaign,
    CampaignTemplate,
    DeadlineAction,
    Grant,
    GrantState,
    Notification,
    ReviewItem,
)
from accessreq.services.campaigns import (
    campaign_launch,
    campaigns_close_due,
    item_decide,
    item_reassign,
)
from accessreq.services.common import now
from accessreq.states import RequestState
from portal.models import User
from tests.accessreq.workflow_helpers import (
    direct_grant,
    events,
    make_entitlement,
    run_together,
)
from tests.factories import UserFactory


def launched(owner: User, fallback: User, action: str, name: str = "Quarterly") -> Campaign:
    template = CampaignTemplate.objects.create(
        name=name, fallback_reviewer=fallback, owner=owner, deadline_action=action
    )
    return campaign_launch(template_id=template.pk, actor=owner)


def past_deadline(campaign: Campaign) -> None:
    """Past the deadline and its grace period (the template's grace_days), when the deadline
    action is due."""
    grace = CampaignTemplate.objects.get(pk=campaign.template_id).grace_days
    Campaign.objects.filter(pk=campaign.pk).update(
        deadline=now() - timedelta(days=grace, minutes=1)
    )


def grants_of(campaign: Campaign, decision: str) -> list[Grant]:
    ids = campaign.items.filter(decision=decision).values_list("grant_id", flat=True)
    return list(Grant.objects.filter(pk__in=ids).order_by("pk"))


@pytest.mark.django_db
def test_deadline_revokes_what_nobody_reviewed_closes_and_tells_the_owner(
    requester, manager, owner, security_admin, django_capture_on_commit_callbacks
) -> None:
    entitlements = [make_entitlement(owners=[owner], name=f"Role {n}") for n in range(6)]
    grants = [direct_grant(requester, e) for e in entitlements]
    campaign = launched(security_admin, security_admin, DeadlineAction.REVOKE)
    items = {i.grant_id: i for i in campaign.items.all()}
    kept, dropped, handed = grants[0], grants[1], grants[2]
    item_decide(actor=manager, item_id=items[kept.pk].pk, decision="certified")
    item_decide(actor=manager, item_id=items[dropped.pk].pk, decision="revoked", comment="Unused")
    item_reassign(actor=manager, item_id=items[handed.pk].pk, to=owner, reason="Owner knows")
    later = launched(security_admin, security_admin, DeadlineAction.REVOKE, name="Monthly")
    Campaign.objects.filter(pk=later.pk).update(deadline=now() + timedelta(days=3))
    past_deadline(campaign)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_close_due() == 1

    campaign.refresh_from_db()
    assert campaign.state == CampaignState.CLOSED and campaign.closed_at is not None
    assert campaign.summary == {
        "pending": 0,
        "certified": 1,
        "revoked": 1,
        "reassigned": 1,
        "expired": 4,
    }
    expired = campaign.items.filter(decision=ReviewDecision.EXPIRED)
    assert expired.count() == 4
    assert set(expired.values_list("deadline_action", flat=True)) == {"revoke"}
    assert not expired.filter(decided_at__isnull=True).exists()
    assert {g.pk for g in grants_of(campaign, ReviewDecision.EXPIRED)} == {g.pk for g in grants[2:]}
    system = User.objects.system_actor()
    for grant in grants_of(campaign, ReviewDecision.EXPIRED):
        assert grant.state == GrantState.REVOKED and grant.revoked_by == system
        assert grant.revoke_reason == f"Access review {campaign} not answered by its deadline"
        assert AccessRequest.objects.get(pk=grant.request_id).state == RequestState.REVOKED
    assert Grant.objects.get(pk=kept.pk).state == GrantState.ACTIVE
    assert Grant.objects.get(pk=dropped.pk).revoked_by == manager

    revoked = Counter(e.target_id for e in events("grant.revoked"))
    assert len(revoked) == 5 and set(revoked.values()) == {1}
    assert len(events("review.expired")) == 4
    assert [len(events(a)) for a in ("campaign.deadline", "campaign.closed")] == [1, 1]
    assert Campaign.objects.get(pk=later.pk).state == CampaignState.OPEN

    [summary] = [m for m in mail.outbox if "Access review closed" in m.subject]
    assert summary.to == [security_admin.email]
    assert summary.subject == f"[Gatehouse] Access review closed: {campaign}"
    for line in (
        "Certified: 1",
        "Revoked: 1",
        "Reassigned: 1",
        "Expired by deadline: 4",
        "Deadline action for unanswered items: Revoke what was not reviewed.",
    ):
        assert line in summary.body

    # The job runs again (next hour, a retried task): nothing more happens.
    outbox = len(mail.outbox)
    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_close_due() == 0
    assert len(events("grant.revoked")) == 5 and len(events("review.expired")) == 4
    assert len(events("campaign.closed")) == 1 and len(mail.outbox) == outbox


@pytest.mark.django_db
def test_deadline_flag_keeps_the_access_and_flags_the_items(
    requester, owner, security_admin, django_capture_on_commit_callbacks
) -> None:
    grants = [direct_grant(requester, make_entitlement(owners=[owner])) for _ in range(3)]
    campaign = launched(owner, security_admin, DeadlineAction.FLAG)
    past_deadline(campaign)

    with django_capture_on_commit_callbacks(execute=True):
        assert campaigns_close_due() == 1
        assert campaigns_close_due() == 0

    campaign.refresh_from_db()
    assert campaign.state == CampaignState.CLOSED and campaign.summary["expired"] == 3
    items = campaign.items.all()
    assert {(i.decision, i.deadline_action) for i in items} == {("expired", "flag")}
    assert {g.state for g in Grant.objects.filter(pk__in=[g.pk for g in grants])} == {"active"}
    assert not events("grant.revoked") and len(events("review.expired")) == 3
    [summary] = [m for m in mail.outbox if m.to == [owner.email]]
    assert "Deadline action for unanswered items: Keep it and flag it." in summary.body


@pytest.mark.django_db
def test_a_close_that_stopped_midway_is_finished_by_the_next_run(
    requester, owner, security_admin
) -> None:
    grants = [direct_grant(requester, make_entitlement(owners=[owner])) for _ in range(3)]
    campaign = launched(owner, security_admin, DeadlineAction.REVOKE)
    # An admin closed it early and the worker died after the first step: CLOSING, deadline
    # still ahead, items pending.
    Campaign.objects.filter(pk=campaign.pk).update(
        state=CampaignState.CLOSING, deadline=now() + timedelta(days=5)
    )

    assert campaigns_close_due() == 1

    campaign.refresh_from_db()
    assert campaign.state == CampaignState.CLOSED
    assert campaign.items.filter(decision=ReviewDecision.EXPIRED).count() == 3
    assert {g.state for g in Grant.objects.filter(pk__in=[g.pk for g in grants])} == {"revoked"}


@pytest.mark.django_db(transaction=True)
def test_two_deadline_workers_close_each_item_and_revoke_each_grant_once(owner, security_admin):
    holders = [UserFactory(manager=owner) for _ in range(4)]
    entitlements = [make_entitlement(owners=[owner]) for _ in range(10)]
    grants = [direct_grant(h, e) for h in holders for e in entitlements]
    campaign = launched(security_admin, security_admin, DeadlineAction.REVOKE)
    assert campaign.items.count() == 40
    past_deadline(campaign)

    outcomes = run_together([campaigns_close_due] * 2)

    assert [o.error for o in outcomes] == [None, None]
    assert sorted(o.result for o in outcomes) == [0, 1]
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.CLOSED and campaign.summary["expired"] == 40
    expired = Counter(e.target_id for e in events("review.expired"))
    assert len(expired) == 40 and set(expired.values()) == {1}
    revoked = Counter(e.data["grant_id"] for e in events("grant.revoked"))
    assert sorted(revoked) == sorted(g.pk for g in grants) and set(revoked.values()) == {1}
    assert len(events("campaign.deadline")) == 1 and len(events("campaign.closed")) == 1
    assert set(Grant.objects.values_list("state", flat=True)) == {GrantState.REVOKED}
    assert Notification.objects.filter(key=f"campaign:{campaign.pk}:closed").count() == 1
    assert not ReviewItem.objects.filter(decision=ReviewDecision.PENDING).exists()


@pytest.mark.django_db
def test_the_deadline_action_waits_for_the_grace_period(
    requester, manager, owner, security_admin
) -> None:
    """During the grace days after the deadline, late decisions still count (and reminders and
    escalation run); the deadline action comes after them."""
    grant = direct_grant(requester, make_entitlement(owners=[owner], name="Role"))
    campaign = launched(security_admin, security_admin, DeadlineAction.REVOKE)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=now() - timedelta(days=1))
    assert campaigns_close_due() == 0
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.OPEN
    item = campaign.items.get()
    item_decide(actor=manager, item_id=item.pk, decision="certified")  # late, but accepted
    past_deadline(campaign)
    assert campaigns_close_due() == 1
    grant.refresh_from_db()
    assert grant.state == GrantState.ACTIVE
