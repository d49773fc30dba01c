"""Reminders and escalation through the services, day by day (``today=`` and a deadline moved in
the database, never a patched clock): reviewers with pending items hear on the template's days,
once a day however often the job runs; those with nothing pending hear nothing; items still
pending N days after the deadline are escalated to the reviewer's manager once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from django.core import mail

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models import (
    Campaign,
    CampaignTemplate,
    ReviewItem,
)
from accessreq.services.campaigns import (
    campaign_close,
    campaign_launch,
    item_decide,
    reminders_send,
)
from accessreq.services.common import now
from portal.models import User
from tests.accessreq.workflow_helpers import direct_grant, events, make_entitlement
from tests.factories import UserFactory


@dataclass
class World:
    campaign: Campaign
    deadline_day: date
    boss: User  # the manager's manager
    campaign_owner: User
    quick: User  # decides everything two days before the deadline
    idle: User  # decided everything at once


@pytest.fixture
def world(requester, manager, owner, outsider, security_admin) -> World:
    boss = UserFactory(display_name="Bea Boss", email="bea@example.com")
    manager.manager = boss
    manager.save()
    campaign_owner = UserFactory(display_name="Cam Owner", email="cam@example.com")
    quick = UserFactory(display_name="Quinn Quick", email="quinn@example.com")
    idle = UserFactory(display_name="Ida Idle", email="ida@example.com")
    first, second = make_entitlement(name="Deployer"), make_entitlement(name="Reader")
    direct_grant(requester, first)  # -> manager (Mina), pending throughout
    direct_grant(requester, second)
    direct_grant(outsider, first)  # no manager -> fallback (Sam), pending throughout
    direct_grant(UserFactory(manager=quick), first)
    direct_grant(UserFactory(manager=idle), first)
    template = CampaignTemplate.objects.create(
        name="Quarterly",
        fallback_reviewer=security_admin,
        owner=campaign_owner,
        reminder_days=[7, 3, 1],
        remind_daily_after=True,
        escalate_after_days=2,
    )
    campaign = campaign_launch(template_id=template.pk, actor=security_admin)
    for item in ReviewItem.objects.filter(reviewer=idle):
        item_decide(actor=idle, item_id=item.pk, decision="certified")
    deadline_day = now().date() + timedelta(days=30)
    move_deadline(campaign, deadline_day)
    mail.outbox.clear()
    return World(campaign, deadline_day, boss, campaign_owner, quick, idle)


def move_deadline(campaign: Campaign, day: date) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(
        deadline=datetime.combine(day, time(17, 0), tzinfo=UTC)
    )


def run_days(
    world: World,
    capture: Any,
    offsets: range,
    *,
    on_day: Callable[[int], None] | None = None,
) -> dict[int, list[tuple[str, str]]]:
    """Run the job twice on each day (a retried task) and collect (to, subject) per day."""
    mail_by_day: dict[int, list[tuple[str, str]]] = {}
    for offset in offsets:
        if on_day:
            on_day(offset)
        day = world.deadline_day + timedelta(days=offset)
        before = len(mail.outbox)
        with capture(execute=True):
            first = reminders_send(today=day)
        with capture(execute=True):
            assert reminders_send(today=day) == 0, f"day {offset}: the retry sent again"
        sent = [(m.to[0], m.subject) for m in mail.outbox[before:]]
        assert first == len(sent), offset
        mail_by_day[offset] = sorted(sent)
    return mail_by_day


@pytest.mark.django_db
def test_reminders_follow_the_schedule_once_a_day_and_only_for_pending_items(
    world, manager, security_admin, django_capture_on_commit_callbacks
) -> None:
    def quick_decides(offset: int) -> None:
        if offset == -2:
            for item in ReviewItem.objects.filter(reviewer=world.quick):
                item_decide(actor=world.quick, item_id=item.pk, decision="certified")

    sent = run_days(world, django_capture_on_commit_callbacks, range(-12, 6), on_day=quick_decides)

    reminder = f"[Gatehouse] Reminder: access review {world.campaign}"
    days = {
        who.email: sorted(d for d, mails in sent.items() if (who.email, reminder) in mails)
        for who in (manager, security_admin, world.quick, world.idle)
    }
    assert days == {
        manager.email: [-7, -3, -1, 0, 1, 2, 3, 4, 5],
        security_admin.email: [-7, -3, -1, 0, 1, 2, 3, 4, 5],
        world.quick.email: [-7, -3],  # nothing pending from day -2 on
        world.idle.email: [],  # never had anything pending
    }
    assert all(not sent[d] for d in (-12, -8, -6, -5, -4, -2))
    # One email per reviewer and day, nothing else but the escalations on day 2.
    reminders = [m for mails in sent.values() for m in mails if m[1] == reminder]
    assert len(reminders) == 9 + 9 + 2
    body = {m.to[0]: m.body for m in mail.outbox if m.subject == reminder}
    assert (
        f"the deadline is {world.deadline_day:%Y-%m-%d} 17:00 UTC (passed)." in body[manager.email]
    )


@pytest.mark.django_db
def test_items_still_pending_after_n_days_escalate_to_the_reviewers_manager_once(
    world, manager, security_admin, django_capture_on_commit_callbacks
) -> None:
    sent = run_days(world, django_capture_on_commit_callbacks, range(0, 6))

    def overdue(who: str) -> str:
        return f"[Gatehouse] Overdue access review: {who} in {world.campaign}"

    escalations = {
        d: [m for m in mails if m[1].startswith("[Gatehouse] Overdue")] for d, mails in sent.items()
    }
    assert escalations == {
        0: [],
        1: [],
        # Sam and Quinn have no manager, so the campaign's owner hears about their items.
        2: sorted(
            [
                (world.boss.email, overdue("Mina Manager")),
                (world.campaign_owner.email, overdue("Quinn Quick")),
                (world.campaign_owner.email, overdue("Sam Security")),
            ]
        ),
        3: [],
        4: [],
        5: [],
    }
    escalated = events("review.escalated")
    by_reviewer = {e.data["reviewer_id"]: e.data for e in escalated}
    assert len(escalated) == 3
    assert set(by_reviewer) == {manager.pk, security_admin.pk, world.quick.pk}
    mina_items = ReviewItem.objects.filter(reviewer=manager).values_list("pk", flat=True)
    assert sorted(by_reviewer[manager.pk]["items"]) == sorted(mina_items)
    assert by_reviewer[manager.pk]["manager"] == "Bea Boss"
    assert by_reviewer[security_admin.pk]["manager"] is None
    pending = ReviewItem.objects.filter(decision=ReviewDecision.PENDING)
    assert pending.count() == 4
    assert not pending.filter(escalated_at__isnull=True).exists()
    assert not ReviewItem.objects.filter(reviewer=world.idle, escalated_at__isnull=False).exists()


@pytest.mark.django_db
def test_no_daily_reminders_after_the_deadline_when_the_template_says_so(
    world, manager, django_capture_on_commit_callbacks
) -> None:
    CampaignTemplate.objects.filter(pk=world.campaign.template_id).update(
        remind_daily_after=False, reminder_days=[5], escalate_after_days=30
    )
    sent = run_days(world, django_capture_on_commit_callbacks, range(-8, 4))
    days = sorted(d for d, mails in sent.items() if any(to == manager.email for to, _ in mails))
    assert days == [-5, 0]


@pytest.mark.django_db
def test_a_campaign_that_is_no_longer_open_reminds_nobody(
    world, security_admin, django_capture_on_commit_callbacks
) -> None:
    move_deadline(world.campaign, now().date() + timedelta(days=1))
    campaign_close(campaign_id=world.campaign.pk, actor=security_admin, early=True)
    assert Campaign.objects.get(pk=world.campaign.pk).state == CampaignState.CLOSED
    mail.outbox.clear()
    tomorrow = now().date() + timedelta(days=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert reminders_send(today=tomorrow) == 0
        assert reminders_send(today=tomorrow + timedelta(days=5)) == 0
    assert mail.outbox == [] and not events("review.escalated")
