"""A campaign launch through the real broker and a real Celery worker (not eager mode): the
filesystem transport under SQLite, Redis under PostgreSQL in CI. Beat's task is sent twice, as
two beats or a retried task would, and still makes one campaign with one item per grant."""

from __future__ import annotations

import time

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import task_postrun
from django.core import mail

from accessreq.campaign_states import CampaignState
from accessreq.models import (
    Campaign,
    CampaignTemplate,
)
from accessreq.services import campaigns as campaign_services
from accessreq.tasks import campaign_launch_due
from portal.celery import app
from portal.models import User
from tests.accessreq.workflow_helpers import direct_grant, events, make_entitlement
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_a_worker_launches_a_campaign_end_to_end(
    monkeypatch: pytest.MonkeyPatch, manager, owner, security_admin
) -> None:
    monkeypatch.setitem(app.conf, "task_always_eager", False)
    monkeypatch.setattr(campaign_services, "LAUNCH_BATCH", 2)  # several batches in the worker
    holders = [UserFactory(manager=manager) for _ in range(2)]
    entitlements = [make_entitlement(owners=[owner]) for _ in range(3)]
    grants = [direct_grant(h, e) for h in holders for e in entitlements]
    template = CampaignTemplate.objects.create(
        name="Quarterly", fallback_reviewer=security_admin, owner=security_admin
    )

    finished: list[object] = []

    def count(sender: object = None, retval: object = None, **_: object) -> None:
        if getattr(sender, "name", "") == campaign_launch_due.name:
            finished.append(retval)

    task_postrun.connect(count, weak=False)
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            campaign_launch_due.delay(template.pk)
            campaign_launch_due.delay(template.pk)  # a second beat, or a retried task
            deadline = time.monotonic() + 30
            while len(finished) < 2 or not any(m.to == [manager.email] for m in mail.outbox):
                assert time.monotonic() < deadline, f"the worker ran {len(finished)} launch(es)"
                time.sleep(0.1)
    finally:
        task_postrun.disconnect(count)

    campaign = Campaign.objects.get()
    assert finished == [campaign.pk, campaign.pk]
    assert campaign.template == template and campaign.state == CampaignState.OPEN
    assert campaign.launched_by == User.objects.system_actor()
    assert sorted(campaign.items.values_list("grant_id", flat=True)) == sorted(g.pk for g in grants)
    assert set(campaign.items.values_list("reviewer_id", flat=True)) == {manager.pk}
    assert len(events("campaign.launched")) == 1 and len(events("campaign.opened")) == 1
    [email] = [m for m in mail.outbox if m.to == [manager.email]]
    assert email.subject == f"[Gatehouse] Access review: {campaign}"
