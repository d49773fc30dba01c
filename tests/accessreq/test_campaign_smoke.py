"""Campaign launch, decisions and deadline through the services (smoke level; the full suite is
in test_campaign_*.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models import CampaignTemplate, GrantState, ReviewItem, RiskTier
from accessreq.services.campaigns import campaign_close, campaign_launch, item_decide
from portal.models import User
from tests.accessreq.workflow_helpers import FRESH, approve, make_entitlement, submit

pytestmark = pytest.mark.django_db


def test_launch_decide_and_close(requester, manager, owner, security_admin) -> None:
    entitlement = make_entitlement(tier=RiskTier.LOW, owners=[owner])
    kept = approve(owner, submit(requester, entitlement)).grant
    other = make_entitlement(tier=RiskTier.LOW, owners=[owner], system=entitlement.system)
    dropped = approve(owner, submit(requester, other)).grant
    assert kept is not None and dropped is not None
    template = CampaignTemplate.objects.create(
        name="Quarterly", fallback_reviewer=security_admin, owner=security_admin
    )
    system = User.objects.system_actor()
    campaign = campaign_launch(template_id=template.pk, actor=system)
    again = campaign_launch(template_id=template.pk, actor=system)
    assert again.pk == campaign.pk and campaign.state == CampaignState.OPEN
    items = {i.grant_id: i for i in ReviewItem.objects.filter(campaign=campaign)}
    assert set(items) == {kept.pk, dropped.pk}
    assert {i.reviewer_id for i in items.values()} == {manager.pk}
    item_decide(actor=manager, item_id=items[kept.pk].pk, decision="certified", mfa=FRESH)
    campaign_close(campaign_id=campaign.pk, actor=system, early=True)
    campaign.refresh_from_db()
    assert campaign.state == CampaignState.CLOSED
    dropped.refresh_from_db()
    kept.refresh_from_db()
    assert dropped.state == GrantState.REVOKED and kept.state == GrantState.ACTIVE
    assert ReviewItem.objects.get(pk=items[dropped.pk].pk).decision == ReviewDecision.EXPIRED
    assert campaign.summary["certified"] == 1 and campaign.summary["expired"] == 1
    assert campaign.launched_at is not None
    assert timedelta(days=14) == campaign.deadline - campaign.launched_at
