"""Campaign templates and launches through the services: the beat schedule per cadence, scope
filters, one item per active grant with a frozen snapshot, who reviews, and the launch that is
idempotent, safe to run twice at once, and resumable after being killed midway."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from functools import partial
from typing import Any

import pytest
from django.core import mail
from django_celery_beat.models import PeriodicTask

from accessreq.campaign_states import CampaignState
from accessreq.models import (
    ApproverRule,
    Cadence,
    Campaign,
    CampaignTemplate,
    Entitlement,
    Grant,
    GrantState,
    Notification,
    RequestKind,
    ReviewerRule,
    ReviewItem,
    RiskTier,
)
from accessreq.services import campaigns as campaign_services
from accessreq.services.campaigns import campaign_launch, campaign_period, template_schedule_sync
from accessreq.services.common import now
from accessreq.services.grants import grant_revoke, grants_expire_due
from accessreq.tasks import campaign_launch_due, campaigns_daily
from portal.celery import app
from portal.models import Team, User
from tests.accessreq.workflow_helpers import (
    approve,
    events,
    grant_of,
    lapse,
    make_entitlement,
    make_policy,
    run_together,
    submit,
)
from tests.accessreq.workflow_helpers import direct_grant as workflow_direct_grant
from tests.factories import SystemFactory, UserFactory

# --- Local builders ----------------------------------------------------------------------------


def template(fallback: User, *, owner: User | None = None, **fields: Any) -> CampaignTemplate:
    """A template (empty filters: everything) whose owner is ``owner`` or the fallback."""
    m2m = {k: fields.pop(k) for k in ("environments", "systems", "entitlements") if k in fields}
    fields.setdefault("name", f"Review {CampaignTemplate.objects.count() + 1}")
    made = CampaignTemplate.objects.create(
        fallback_reviewer=fallback, owner=owner or fallback, **fields
    )
    for name, values in m2m.items():
        getattr(made, name).set(values)
    return made


def direct_grant(holder: User, entitlement: Entitlement) -> Grant:
    """Granted an hour ago (for tests about who reviews)."""
    return workflow_direct_grant(holder, entitlement, started_ago=timedelta(hours=1))


def launch(made: CampaignTemplate, **kw: Any) -> Campaign:
    return campaign_launch(template_id=made.pk, actor=User.objects.system_actor(), **kw)


def item_grants(campaign: Campaign) -> list[int]:
    return sorted(ReviewItem.objects.filter(campaign=campaign).values_list("grant_id", flat=True))


@pytest.fixture
def owner_policy(db: None) -> Any:
    return make_policy("Entitlement owner approves", (ApproverRule.ENTITLEMENT_OWNER, 1, False))


# --- Templates and their beat schedule ---------------------------------------------------------

CRON_MONTHS = {
    Cadence.MONTHLY: "*",
    Cadence.QUARTERLY: "1,4,7,10",
    Cadence.SEMIANNUAL: "1,7",
    Cadence.ANNUAL: "1",
}


@pytest.mark.django_db
def test_schedule_sync_writes_one_beat_task_that_follows_the_cadence(security_admin) -> None:
    made = template(security_admin, name="Prod access", cadence=Cadence.MONTHLY)
    task = template_schedule_sync(made)
    assert made.periodic_task_id == task.pk
    assert task.task == "accessreq.tasks.campaign_launch_due"
    assert task.task in app.tasks
    assert task.args == f"[{made.pk}]" and task.enabled and task.interval is None
    assert task.name == f"Recertification: Prod access (template {made.pk})"

    for cadence, months in CRON_MONTHS.items():
        made.cadence = cadence
        made.save()
        synced = template_schedule_sync(made)
        assert synced.pk == task.pk, "a cadence change must update the task, not add one"
        synced = PeriodicTask.objects.select_related("crontab").get(pk=task.pk)
        cron = synced.crontab
        assert cron is not None
        assert (cron.minute, cron.hour, cron.day_of_month, cron.day_of_week) == (
            "30",
            "0",
            "1",
            "*",
        )
        assert cron.month_of_year == months, cadence
        assert str(cron.timezone) == "UTC"
        # The celery schedule fires in exactly those months (00:30 UTC on the 1st).
        assert sorted(cron.schedule.month_of_year) == sorted(
            range(1, 13) if months == "*" else map(int, months.split(","))
        )
    assert PeriodicTask.objects.filter(task="accessreq.tasks.campaign_launch_due").count() == 1

    made.is_active = False
    made.save()
    assert template_schedule_sync(made).enabled is False
    assert not PeriodicTask.objects.get(pk=task.pk).enabled
    made.is_active = True
    made.save()
    assert PeriodicTask.objects.get(pk=template_schedule_sync(made).pk).enabled


@pytest.mark.django_db
def test_beat_task_skips_an_inactive_template(security_admin, requester, owner) -> None:
    direct_grant(requester, make_entitlement(owners=[owner]))
    made = template(security_admin, is_active=False)
    assert campaign_launch_due(made.pk) is None
    assert not Campaign.objects.exists()
    made.is_active = True
    made.save()
    campaign = Campaign.objects.get(pk=campaign_launch_due(made.pk))
    assert campaign.state == CampaignState.OPEN and campaign.items.count() == 1
    assert campaign.launched_by == User.objects.system_actor()


@pytest.mark.parametrize(
    ("cadence", "day", "label"),
    [
        (Cadence.MONTHLY, date(2026, 1, 1), "2026-01"),
        (Cadence.MONTHLY, date(2026, 12, 31), "2026-12"),
        (Cadence.QUARTERLY, date(2026, 3, 31), "2026-Q1"),
        (Cadence.QUARTERLY, date(2026, 4, 1), "2026-Q2"),
        (Cadence.QUARTERLY, date(2026, 12, 31), "2026-Q4"),
        (Cadence.SEMIANNUAL, date(2026, 6, 30), "2026-H1"),
        (Cadence.SEMIANNUAL, date(2026, 7, 1), "2026-H2"),
        (Cadence.ANNUAL, date(2026, 7, 1), "2026"),
    ],
)
def test_campaign_period_labels(cadence: str, day: date, label: str) -> None:
    assert campaign_period(cadence, datetime.combine(day, time(0, 30), tzinfo=UTC)) == label


@pytest.mark.django_db
def test_each_period_gets_its_own_campaign(security_admin, requester, owner) -> None:
    direct_grant(requester, make_entitlement(owners=[owner]))
    made = template(security_admin, cadence=Cadence.MONTHLY)
    current = launch(made)
    earlier = launch(made, at=now() - timedelta(days=32))
    assert earlier.pk != current.pk and earlier.period != current.period
    assert Campaign.objects.count() == 2 and current.items.count() == 1
    assert launch(made).pk == current.pk


# --- Scope ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_scope_filters_pick_one_item_per_active_grant_in_scope(
    requester, owner, security_admin, owner_policy
) -> None:
    sys_a, sys_b = SystemFactory(name="payments"), SystemFactory(name="ledger")
    low_a = make_entitlement(tier=RiskTier.LOW, owners=[owner], policy=owner_policy, system=sys_a)
    high_b = make_entitlement(tier=RiskTier.HIGH, owners=[owner], policy=owner_policy, system=sys_b)
    crit_a = make_entitlement(
        tier=RiskTier.CRITICAL, owners=[owner], policy=owner_policy, system=sys_a
    )
    colleague = UserFactory(display_name="Cole League")
    robot = UserFactory(display_name="ci-bot", kind=User.Kind.SERVICE)
    robot.owners.add(requester)

    def held(holder: User, entitlement: Entitlement, **kw: Any) -> Grant:
        actor = kw.pop("actor", holder)
        return grant_of(approve(owner, submit(actor, entitlement, **kw)))

    r_low, r_high, r_crit = (held(requester, e) for e in (low_a, high_b, crit_a))
    c_high = held(colleague, high_b)
    bot_low = held(requester, low_a, actor=requester, beneficiary=robot)
    assert bot_low.beneficiary == robot

    # Grants that must never be reviewed: revoked, expired (and marked so), past their end but
    # not yet marked, and scheduled to start later.
    revoked = held(colleague, low_a)
    grant_revoke(actor=owner, grant_id=revoked.pk, reason="Left the payments team")
    expired = held(UserFactory(), crit_a)
    lapse(expired)
    assert grants_expire_due() == 1
    lapsed = held(UserFactory(), low_a)
    lapse(lapsed)
    scheduled = held(colleague, crit_a, requested_start=now() + timedelta(days=2))
    assert scheduled.state == GrantState.SCHEDULED
    assert Grant.objects.get(pk=expired.pk).state == GrantState.EXPIRED
    assert Grant.objects.get(pk=lapsed.pk).state == GrantState.ACTIVE

    cases: list[tuple[dict[str, Any], list[Grant]]] = [
        ({}, [r_low, r_high, r_crit, c_high]),
        ({"include_service_accounts": True}, [r_low, r_high, r_crit, c_high, bot_low]),
        ({"environments": [low_a.environment]}, [r_low]),
        (
            {"environments": [low_a.environment], "include_service_accounts": True},
            [r_low, bot_low],
        ),
        ({"tiers": [RiskTier.HIGH, RiskTier.CRITICAL]}, [r_high, r_crit, c_high]),
        ({"systems": [sys_a]}, [r_low, r_crit]),
        ({"entitlements": [high_b]}, [r_high, c_high]),
        ({"systems": [sys_a], "tiers": [RiskTier.CRITICAL]}, [r_crit]),
        ({"entitlements": [low_a], "tiers": [RiskTier.HIGH]}, []),
    ]
    for filters, expected in cases:
        campaign = launch(template(security_admin, **filters))
        assert campaign.state == CampaignState.OPEN
        assert item_grants(campaign) == sorted(g.pk for g in expected), filters
        assert campaign.items.count() == len(expected)


# --- Snapshot ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_snapshot_freezes_what_the_reviewer_sees(requester, manager, owner, security_admin) -> None:
    sys_owner = UserFactory(display_name="Sue Systemowner")
    two_step = make_policy(
        "Owner then system owner",
        (ApproverRule.ENTITLEMENT_OWNER, 1, False),
        (ApproverRule.SYSTEM_OWNER, 1, False),
    )
    entitlement = make_entitlement(
        tier=RiskTier.HIGH,
        owners=[owner],
        system_owners=[sys_owner],
        policy=two_step,
        system=SystemFactory(name="payments"),
        name="Deployer",
    )
    requester.team = Team.objects.create(name="Payments", slug="payments")
    requester.employment_status = User.EmploymentStatus.LEAVING
    requester.save()
    access_request = submit(requester, entitlement)
    approve(owner, access_request)
    grant = grant_of(approve(sys_owner, access_request))
    used = now() - timedelta(days=3)
    Grant.objects.filter(pk=grant.pk).update(last_used_at=used)
    grant.refresh_from_db()

    campaign = launch(template(security_admin))
    item = ReviewItem.objects.get(campaign=campaign)
    expected = {
        "holder": "Dev Requester",
        "holder_email": "dev@example.com",
        "holder_id": requester.pk,
        "holder_status": "leaving",
        "holder_active": True,
        "team": "Payments",
        "entitlement": str(entitlement),
        "system": "payments",
        "environment": "high",
        "tier": "high",
        "granted_at": grant.starts_at.isoformat(),
        "expires_at": grant.expires_at.isoformat(),
        "granted_by": ["Omar Owner", "Sue Systemowner"],
        "break_glass": False,
        "last_used_at": used.isoformat(),
    }
    assert item.snapshot == expected
    assert (item.tier, item.system_id, item.team_name) == (
        "high",
        entitlement.system_id,
        "Payments",
    )
    assert item.reviewer == manager and item.reviewer_reason == "rule"

    # Later: the holder moves team and leaves, the grant is extended and used again.
    requester.team = Team.objects.create(name="Platform", slug="platform")
    requester.employment_status = User.EmploymentStatus.LEFT
    requester.save()
    extension = submit(requester, entitlement)
    assert extension.kind == RequestKind.EXTENSION
    approve(owner, extension)
    approve(sys_owner, extension)
    Grant.objects.filter(pk=grant.pk).update(last_used_at=now())
    grant.refresh_from_db()
    assert grant.expires_at.isoformat() != expected["expires_at"]

    again = launch(Campaign.objects.get(pk=campaign.pk).template)
    assert again.pk == campaign.pk
    item.refresh_from_db()
    assert item.snapshot == expected
    assert item.team_name == "Payments"
    assert ReviewItem.objects.filter(campaign=campaign).count() == 1


# --- Who reviews ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rule", [ReviewerRule.MANAGER, ReviewerRule.ENTITLEMENT_OWNER, ReviewerRule.SYSTEM_OWNER]
)
@pytest.mark.django_db
def test_reviewer_rule_names_the_reviewer(rule, requester, manager, owner, security_admin) -> None:
    sys_owner = UserFactory(display_name="Sue Systemowner")
    entitlement = make_entitlement(owners=[owner], system_owners=[sys_owner])
    direct_grant(requester, entitlement)
    expected = {
        ReviewerRule.MANAGER: manager,
        ReviewerRule.ENTITLEMENT_OWNER: owner,
        ReviewerRule.SYSTEM_OWNER: sys_owner,
    }[rule]
    item = launch(template(security_admin, reviewer_rule=rule)).items.get()
    assert (item.reviewer, item.reviewer_reason) == (expected, "rule")


@pytest.mark.django_db
def test_fallback_reviewer_when_the_rule_names_nobody_usable(security_admin, owner) -> None:
    fallback = UserFactory(display_name="Fay Fallback")
    no_manager = UserFactory(display_name="No Manager")
    gone_boss = UserFactory(display_name="Gone Boss", is_active=False)
    owns_it = UserFactory(display_name="Owns It")
    owns_system = UserFactory(display_name="Owns System")
    retired, second = UserFactory(is_active=False), UserFactory(display_name="Second Owner")
    by_rule = make_entitlement(owners=[owns_it], system_owners=[owns_system])
    unowned = make_entitlement()
    half_retired = make_entitlement(owners=[retired, second])
    grants = {
        "no manager": direct_grant(no_manager, by_rule),
        "manager inactive": direct_grant(UserFactory(manager=gone_boss), by_rule),
        "managed": direct_grant(UserFactory(manager=owner), by_rule),
        "owner holds it": direct_grant(owns_it, by_rule),
        "system owner holds it": direct_grant(owns_system, by_rule),
        "nobody owns it": direct_grant(no_manager, unowned),
        "first owner retired": direct_grant(no_manager, half_retired),
    }
    fall = ("Fay Fallback", "fallback")
    expected = {
        ReviewerRule.MANAGER: {
            **dict.fromkeys(grants, fall),
            "managed": ("Omar Owner", "rule"),
        },
        ReviewerRule.ENTITLEMENT_OWNER: {
            "no manager": ("Owns It", "rule"),
            "manager inactive": ("Owns It", "rule"),
            "managed": ("Owns It", "rule"),
            "owner holds it": fall,
            "system owner holds it": ("Owns It", "rule"),
            "nobody owns it": fall,
            "first owner retired": ("Second Owner", "rule"),
        },
        ReviewerRule.SYSTEM_OWNER: {
            **dict.fromkeys(grants, ("Owns System", "rule")),
            "system owner holds it": fall,
            "nobody owns it": fall,
            "first owner retired": fall,
        },
    }
    for rule, want in expected.items():
        campaign = launch(template(fallback, owner=security_admin, reviewer_rule=rule))
        got = {
            i.grant_id: (str(i.reviewer), i.reviewer_reason)
            for i in campaign.items.select_related("reviewer")
        }
        assert got == {grants[case].pk: who for case, who in want.items()}, rule


@pytest.mark.django_db
def test_nobody_is_asked_to_review_their_own_access_even_as_fallback(security_admin) -> None:
    # The fallback reviewer holds access in scope and the rule names nobody for it: the item
    # must go to someone else (the template's owner), never to the holder.
    fallback = UserFactory(display_name="Fay Fallback")
    grant = direct_grant(fallback, make_entitlement())
    item = launch(template(fallback, owner=security_admin)).items.get()
    assert item.grant == grant
    assert item.reviewer != fallback
    assert item.reviewer == security_admin and item.reviewer_reason == "fallback"
    assert not ReviewItem.objects.filter(reviewer=fallback, grant__beneficiary=fallback).exists()


# --- Idempotency, races and a launch killed midway -----------------------------------------------


def _grants(count: int, owner: User) -> list[Grant]:
    people_ = [UserFactory(manager=owner) for _ in range(3)]
    entitlements = [make_entitlement(owners=[owner]) for _ in range((count + 2) // 3)]
    pairs = [(p, e) for e in entitlements for p in people_][:count]
    return [direct_grant(p, e) for p, e in pairs]


@pytest.mark.django_db
def test_launching_twice_makes_one_campaign_and_no_duplicate_items(
    security_admin, owner, django_capture_on_commit_callbacks
) -> None:
    grants = _grants(4, owner)
    made = template(security_admin)
    with django_capture_on_commit_callbacks(execute=True):
        first = launch(made)
        second = launch(made)
    assert second.pk == first.pk and second.state == CampaignState.OPEN
    assert Campaign.objects.count() == 1
    assert item_grants(first) == sorted(g.pk for g in grants)
    assert len(events("campaign.launched")) == 1
    [opened] = events("campaign.opened")
    assert opened.data["items"] == 4
    assert [m.to for m in mail.outbox] == [[owner.email]]
    assert mail.outbox[0].subject == f"[Gatehouse] Access review: {first}"


@pytest.mark.django_db(transaction=True)
def test_concurrent_launches_make_one_campaign_and_no_duplicate_items(
    monkeypatch: pytest.MonkeyPatch, security_admin, owner
) -> None:
    monkeypatch.setattr(campaign_services, "LAUNCH_BATCH", 3)
    grants = _grants(11, owner)
    made = template(security_admin)

    outcomes = run_together([partial(launch, made)] * 3)

    assert [o.error for o in outcomes] == [None] * 3
    assert {o.result.pk for o in outcomes} == {Campaign.objects.get().pk}
    campaign = Campaign.objects.get()
    assert campaign.state == CampaignState.OPEN
    assert item_grants(campaign) == sorted(g.pk for g in grants)
    assert len(events("campaign.launched")) == 1 and len(events("campaign.opened")) == 1
    assert Notification.objects.filter(recipient=owner).count() == 1


@pytest.mark.django_db
def test_a_launch_killed_midway_is_completed_by_the_next_run(
    monkeypatch: pytest.MonkeyPatch, security_admin, owner, django_capture_on_commit_callbacks
) -> None:
    monkeypatch.setattr(campaign_services, "LAUNCH_BATCH", 2)
    grants = _grants(7, owner)
    made = template(security_admin)

    with pytest.raises(RuntimeError, match="interrupted"):
        launch(made, fail_after_batches=1)
    campaign = Campaign.objects.get()
    assert campaign.state == CampaignState.LAUNCHING
    assert item_grants(campaign) == sorted(g.pk for g in grants)[:2]
    assert campaign.launch_cursor == sorted(g.pk for g in grants)[1]
    assert not events("campaign.opened")
    assert not Notification.objects.exists(), "reviewers are told only once the launch is done"

    with pytest.raises(RuntimeError):
        launch(made, fail_after_batches=2)  # killed again, further along
    assert campaign.items.count() == 6

    with django_capture_on_commit_callbacks(execute=True):
        done = launch(made)
    assert done.pk == campaign.pk and done.state == CampaignState.OPEN
    assert item_grants(campaign) == sorted(g.pk for g in grants)
    assert Counter(campaign.items.values_list("grant_id", flat=True)).most_common(1)[0][1] == 1
    assert len(events("campaign.launched")) == 1
    assert events("campaign.opened")[0].data["items"] == 7
    assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_hourly_job_resumes_a_killed_launch(
    monkeypatch: pytest.MonkeyPatch, security_admin, owner
) -> None:
    monkeypatch.setattr(campaign_services, "LAUNCH_BATCH", 2)
    grants = _grants(5, owner)
    made = template(security_admin)
    with pytest.raises(RuntimeError):
        launch(made, fail_after_batches=1)
    assert Campaign.objects.get().state == CampaignState.LAUNCHING

    result = campaigns_daily()

    assert result["resumed"] == 1
    campaign = Campaign.objects.get()
    assert campaign.state == CampaignState.OPEN
    assert item_grants(campaign) == sorted(g.pk for g in grants)
    assert campaigns_daily()["resumed"] == 0
    assert campaign.items.count() == 5
