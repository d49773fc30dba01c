"""The campaign pages: the list with templates and launch now, one campaign's dashboard, cancel
and close early; each as anonymous, outsider (404), auditor (looks, never acts) and security
admin, with the audit events the actions write."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models import (
    AccessRequest,
    Campaign,
    CampaignTemplate,
    Grant,
    GrantState,
    ReviewItem,
    RiskTier,
)
from accessreq.services.campaigns import (
    campaign_launch,
    item_decide,
    item_reassign,
    template_schedule_sync,
)
from accessreq.services.common import now
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.models import User
from tests.accessreq.workflow_helpers import FRESH, approve, make_entitlement, submit
from tests.factories import EntitlementFactory, SystemFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = "/campaigns/"
LAUNCH = "/campaigns/launch/"
FORMULA_NAME = '=HYPERLINK("http://evil.example/","Click me")'


@dataclass
class World:
    """A launched campaign over three grants of the requester, reviewed by their manager: one
    certified, one revoked (with a comment), one still pending."""

    template: CampaignTemplate
    campaign: Campaign
    certified: ReviewItem
    revoked: ReviewItem
    pending: ReviewItem


def build_campaign(
    requester: User,
    manager: User,
    owner: User,
    security_admin: User,
    *,
    name: str = "Quarterly prod review",
    holder_name: str = FORMULA_NAME,
    **entitlement_fields: object,
) -> World:
    requester.display_name = holder_name
    requester.save(update_fields=["display_name"])
    first = make_entitlement(tier=RiskTier.LOW, owners=[owner], **entitlement_fields)
    entitlements = [first] + [
        make_entitlement(
            tier=RiskTier.LOW, owners=[owner], system=first.system, **entitlement_fields
        )
        for _ in range(2)
    ]
    grants: list[Grant] = []
    for entitlement in entitlements:
        grant = approve(owner, submit(requester, entitlement)).grant
        assert grant is not None
        grants.append(grant)
    template = CampaignTemplate.objects.create(
        name=name, fallback_reviewer=security_admin, owner=security_admin
    )
    template_schedule_sync(template)
    campaign = campaign_launch(template_id=template.pk, actor=security_admin)
    items = {i.grant_id: i for i in ReviewItem.objects.filter(campaign=campaign)}
    certified, revoked, pending = (items[g.pk] for g in grants)
    item_decide(actor=manager, item_id=certified.pk, decision="certified", mfa=FRESH)
    item_decide(
        actor=manager,
        item_id=revoked.pk,
        decision="revoked",
        comment="Moved to the data team",
        mfa=FRESH,
    )
    return World(
        template=template,
        campaign=campaign,
        certified=ReviewItem.objects.get(pk=certified.pk),
        revoked=ReviewItem.objects.get(pk=revoked.pk),
        pending=pending,
    )


@pytest.fixture
def world(requester, manager, owner, security_admin) -> World:
    return build_campaign(requester, manager, owner, security_admin)


def detail(campaign: Campaign) -> str:
    return f"/campaigns/{campaign.pk}/"


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


# --- The list ----------------------------------------------------------------------------------


def test_list_anonymous_goes_to_login(client) -> None:
    response = client.get(LIST)
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_list_is_404_for_an_outsider_and_a_reviewer(verified_client, outsider, manager) -> None:
    assert verified_client(outsider).get(LIST).status_code == 404
    assert verified_client(manager).get(LIST).status_code == 404


def test_list_shows_templates_schedule_and_campaigns(
    verified_client, security_admin, world
) -> None:
    paused = CampaignTemplate.objects.create(
        name="Staging yearly",
        fallback_reviewer=security_admin,
        owner=security_admin,
        cadence="annual",
        is_active=False,
    )
    template_schedule_sync(paused)
    response = verified_client(security_admin).get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Quarterly prod review" in page and "Staging yearly" in page
    # The next launch comes from the beat crontab: 00:30 UTC on the first day of a quarter.
    row = next(r for r in response.context["rows"] if r.template == world.template)
    assert row.next_launch is not None
    assert (row.next_launch.day, row.next_launch.hour, row.next_launch.minute) == (1, 0, 30)
    assert row.next_launch.month in (1, 4, 7, 10)
    assert row.current_id == world.campaign.pk
    assert "Paused" in page
    # This period's campaign exists: the button opens it; the paused template has none.
    assert f"Open {world.campaign.period}" in page
    assert page.count('name="template"') == 1
    assert "2 of 3 decided" in page


def test_list_for_an_auditor_has_no_buttons(verified_client, auditor, world) -> None:
    response = verified_client(auditor).get(LIST)
    assert response.status_code == 200
    page = response.content.decode()
    assert "Quarterly prod review" in page
    assert LAUNCH not in page and 'name="template"' not in page


def test_list_empty_states(verified_client, security_admin) -> None:
    page = verified_client(security_admin).get(LIST).content.decode()
    assert "No campaign templates yet" in page
    assert "No campaign has been launched yet" in page


# --- Launch now --------------------------------------------------------------------------------


@pytest.fixture
def template(security_admin, requester, owner) -> CampaignTemplate:
    entitlement = make_entitlement(tier=RiskTier.LOW, owners=[owner])
    approve(owner, submit(requester, entitlement))
    made = CampaignTemplate.objects.create(
        name="Monthly dev review",
        cadence="monthly",
        fallback_reviewer=security_admin,
        owner=security_admin,
    )
    template_schedule_sync(made)
    return made


def test_launch_anonymous_goes_to_login(client, template) -> None:
    response = client.post(LAUNCH, {"template": template.pk})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert not Campaign.objects.exists()


def test_launch_is_404_for_an_outsider_and_an_auditor(
    verified_client, outsider, auditor, template
) -> None:
    for person in (outsider, auditor):
        assert verified_client(person).post(LAUNCH, {"template": template.pk}).status_code == 404
    assert not Campaign.objects.exists()
    assert not events("campaign.launched")


def test_launch_needs_post(verified_client, security_admin, template) -> None:
    assert verified_client(security_admin).get(LAUNCH).status_code == 405


def test_launch_twice_opens_the_same_campaign(
    verified_client, security_admin, manager, template
) -> None:
    client = verified_client(security_admin)
    first = client.post(LAUNCH, {"template": template.pk})
    campaign = Campaign.objects.get()
    assert first.status_code == 302 and first["Location"] == detail(campaign)
    assert campaign.state == CampaignState.OPEN and campaign.launched_by == security_admin
    assert campaign.items.get().reviewer == manager
    launched = events("campaign.launched")
    assert len(launched) == 1 and launched[0].actor_id == security_admin.pk
    assert launched[0].data["template"] == "Monthly dev review"

    second = client.post(LAUNCH, {"template": template.pk}, follow=True)
    assert second.redirect_chain[-1][0] == detail(campaign)
    assert "already launched" in second.content.decode()
    assert Campaign.objects.count() == 1 and ReviewItem.objects.count() == 1
    assert len(events("campaign.launched")) == 1


def test_launch_refuses_a_paused_or_unknown_template(
    verified_client, security_admin, template
) -> None:
    template.is_active = False
    template.save()
    client = verified_client(security_admin)
    response = client.post(LAUNCH, {"template": template.pk}, follow=True)
    assert "paused or gone" in response.content.decode()
    response = client.post(LAUNCH, {"template": 999999}, follow=True)
    assert "paused or gone" in response.content.decode()
    assert not Campaign.objects.exists()


# --- The dashboard -----------------------------------------------------------------------------


def test_detail_anonymous_goes_to_login(client, world) -> None:
    response = client.get(detail(world.campaign))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_detail_is_404_for_an_outsider_the_reviewer_and_unknown_ids(
    verified_client, outsider, manager, security_admin, world
) -> None:
    assert verified_client(outsider).get(detail(world.campaign)).status_code == 404
    assert verified_client(manager).get(detail(world.campaign)).status_code == 404
    assert verified_client(security_admin).get("/campaigns/999999/").status_code == 404


def test_detail_shows_progress_per_reviewer_and_the_chart(
    verified_client, security_admin, manager, world
) -> None:
    response = verified_client(security_admin).get(detail(world.campaign))
    assert response.status_code == 200
    page = response.content.decode()
    progress = response.context["progress"]
    assert (progress.total, progress.certified, progress.revoked, progress.pending) == (3, 1, 1, 1)
    (reviewer,) = response.context["reviewers"]
    assert reviewer.reviewer_id == manager.pk
    assert (reviewer.progress.decided, reviewer.progress.total) == (2, 3)
    assert "Mina Manager" in page and "2 of 3 decided" in page
    # Today's decisions are one stacked bar: one certified, one revoked.
    assert 'class="chart__bar chart__bar--certified"' in page
    assert 'class="chart__bar chart__bar--revoked"' in page
    assert "<svg" in page and "<script>" not in page and "style=" not in page
    assert f'action="/campaigns/{world.campaign.pk}/close/"' in page
    assert f'action="/campaigns/{world.campaign.pk}/cancel/"' in page


def test_detail_for_an_auditor_has_no_actions(verified_client, auditor, world) -> None:
    response = verified_client(auditor).get(detail(world.campaign))
    assert response.status_code == 200
    page = response.content.decode()
    assert "/close/" not in page and "/cancel/" not in page
    assert "evidence.csv" in page


def test_detail_lists_overdue_and_escalated_items(verified_client, security_admin, world) -> None:
    Campaign.objects.filter(pk=world.campaign.pk).update(deadline=now() - timedelta(days=3))
    from accessreq.services.campaigns import reminders_send

    reminders_send()
    response = verified_client(security_admin).get(detail(world.campaign))
    assert response.context["progress"].overdue == 1
    assert response.context["progress"].escalated == 1
    assert [i.pk for i in response.context["attention"]] == [world.pending.pk]
    assert response.context["reviewers"][0].progress.overdue == 1
    assert "passed" in response.content.decode()


def test_handed_on_items_count_once(verified_client, security_admin, manager, owner, world):
    item_reassign(actor=manager, item_id=world.pending.pk, to=owner, reason="Owner knows it")
    response = verified_client(security_admin).get(detail(world.campaign))
    progress = response.context["progress"]
    assert (progress.total, progress.pending, progress.reassigned) == (3, 1, 1)
    by_reviewer = {r.reviewer_id: r.progress for r in response.context["reviewers"]}
    assert by_reviewer[owner.pk].pending == 1 and by_reviewer[manager.pk].reassigned == 1


def bulk_campaign(count: int, *, manager: User, security_admin: User, name: str) -> Campaign:
    """A campaign of ``count`` items, half decided over several days, the rest pending and some
    escalated; grants are written in bulk (the launch itself goes through the service)."""
    holders = [UserFactory(manager=manager) for _ in range(max(1, count // 20))]
    system = SystemFactory()
    entitlements = [EntitlementFactory(system=system) for _ in range(min(count, 20))]
    clock = now()
    pairs = [(h, e) for h in holders for e in entitlements][:count]
    requests = AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=h,
            beneficiary=h,
            entitlement=e,
            justification="bulk",
            duration=timedelta(days=90),
            state=RequestState.ACTIVE,
        )
        for h, e in pairs
    )
    Grant.objects.bulk_create(
        Grant(
            beneficiary=r.beneficiary,
            entitlement=r.entitlement,
            request=r,
            state=GrantState.ACTIVE,
            starts_at=clock - timedelta(days=30),
            expires_at=clock + timedelta(days=60),
        )
        for r in requests
    )
    template = CampaignTemplate.objects.create(
        name=name, fallback_reviewer=security_admin, owner=security_admin
    )
    template.systems.add(system)
    campaign = campaign_launch(
        template_id=template.pk, actor=security_admin, at=clock - timedelta(days=20)
    )
    ids = list(campaign.items.order_by("pk").values_list("pk", flat=True))
    for day, chunk in enumerate((ids[0::6], ids[1::6], ids[2::6])):
        ReviewItem.objects.filter(pk__in=chunk).update(
            decision=ReviewDecision.CERTIFIED if day != 1 else ReviewDecision.REVOKED,
            decided_by=manager,
            decided_at=clock - timedelta(days=10 - day),
            comment="bulk",
        )
    ReviewItem.objects.filter(pk__in=ids[3::6]).update(escalated_at=clock)
    Campaign.objects.filter(pk=campaign.pk).update(deadline=clock - timedelta(days=1))
    return campaign


def test_dashboard_queries_do_not_grow_with_items(verified_client, security_admin, manager) -> None:
    small = bulk_campaign(10, manager=manager, security_admin=security_admin, name="Small")
    large = bulk_campaign(1000, manager=manager, security_admin=security_admin, name="Large")
    assert large.items.count() == 1000
    client = verified_client(security_admin)
    counts = []
    for campaign in (small, large):
        with CaptureQueriesContext(connection) as queries:
            response = client.get(detail(campaign))
        assert response.status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1], counts
    assert response.context["progress"].total == 1000
    assert response.context["attention_total"] == response.context["progress"].pending == 499
    assert len(response.context["attention"]) == 100
    with CaptureQueriesContext(connection) as listing:
        assert client.get(LIST).status_code == 200
    assert len(listing) < 25


# --- Close early -------------------------------------------------------------------------------


def close_url(campaign: Campaign) -> str:
    return f"/campaigns/{campaign.pk}/close/"


def test_close_anonymous_and_others_change_nothing(
    client, verified_client, outsider, auditor, world
) -> None:
    assert (
        "/accounts/login/" in client.post(close_url(world.campaign), {"confirm": "on"})["Location"]
    )
    for person in (outsider, auditor):
        response = verified_client(person).post(close_url(world.campaign), {"confirm": "on"})
        assert response.status_code == 404
    world.campaign.refresh_from_db()
    assert world.campaign.state == CampaignState.OPEN
    assert not events("campaign.closed_early")


def test_close_early_needs_the_confirmation(verified_client, security_admin, world) -> None:
    client = verified_client(security_admin)
    assert client.get(close_url(world.campaign)).status_code == 405
    response = client.post(close_url(world.campaign), {})
    assert response.status_code == 400
    assert "Tick the box" in response.content.decode()
    world.campaign.refresh_from_db()
    assert world.campaign.state == CampaignState.OPEN


def test_close_early_applies_the_deadline_action(verified_client, security_admin, world) -> None:
    client = verified_client(security_admin)
    response = client.post(close_url(world.campaign), {"confirm": "on"}, follow=True)
    assert "Closed Quarterly prod review" in response.content.decode()
    world.campaign.refresh_from_db()
    assert world.campaign.state == CampaignState.CLOSED
    pending = ReviewItem.objects.get(pk=world.pending.pk)
    assert pending.decision == ReviewDecision.EXPIRED and pending.deadline_action == "revoke"
    assert Grant.objects.get(pk=pending.grant_id).state == GrantState.REVOKED
    (early,) = events("campaign.closed_early")
    assert early.actor_id == security_admin.pk and early.target_id == str(world.campaign.pk)
    assert len(events("campaign.closed")) == 1
    # Closing again changes nothing and says why.
    again = client.post(close_url(world.campaign), {"confirm": "on"}, follow=True)
    assert "only an open campaign" in again.content.decode()
    assert len(events("campaign.closed_early")) == 1


# --- Cancel ------------------------------------------------------------------------------------


def cancel_url(campaign: Campaign) -> str:
    return f"/campaigns/{campaign.pk}/cancel/"


def test_cancel_is_404_for_others(client, verified_client, outsider, auditor, world) -> None:
    assert client.post(cancel_url(world.campaign), {"reason": "x"}).status_code == 302
    for person in (outsider, auditor):
        response = verified_client(person).post(cancel_url(world.campaign), {"reason": "x"})
        assert response.status_code == 404
    world.campaign.refresh_from_db()
    assert world.campaign.state == CampaignState.OPEN
    assert not events("campaign.cancelled")


def test_cancel_needs_a_reason(verified_client, security_admin, world) -> None:
    response = verified_client(security_admin).post(cancel_url(world.campaign), {"reason": " "})
    assert response.status_code == 400
    assert "Say why the campaign is cancelled" in response.content.decode()
    world.campaign.refresh_from_db()
    assert world.campaign.state == CampaignState.OPEN


def test_cancel_keeps_access_and_is_audited(verified_client, security_admin, world) -> None:
    client = verified_client(security_admin)
    response = client.post(
        cancel_url(world.campaign), {"reason": "Scope was wrong; relaunching"}, follow=True
    )
    assert "Nothing was revoked" in response.content.decode()
    world.campaign.refresh_from_db()
    assert world.campaign.state == CampaignState.CANCELLED
    assert Grant.objects.get(pk=world.pending.grant_id).state == GrantState.ACTIVE
    (cancelled,) = events("campaign.cancelled")
    assert cancelled.data["reason"] == "Scope was wrong; relaunching"
    assert cancelled.actor_id == security_admin.pk
    again = client.post(cancel_url(world.campaign), {"reason": "again"}, follow=True)
    assert "cannot become cancelled" in again.content.decode()
    assert len(events("campaign.cancelled")) == 1


# --- Admin -------------------------------------------------------------------------------------


def test_admin_template_save_follows_the_cadence_and_launch_action(
    verified_client, security_admin, requester, owner
) -> None:
    entitlement = make_entitlement(tier=RiskTier.HIGH, owners=[owner])
    client = verified_client(security_admin)
    form = client.get("/admin/accessreq/campaigntemplate/add/").content.decode()
    assert 'type="checkbox" name="tiers" value="critical"' in form
    response = client.post(
        "/admin/accessreq/campaigntemplate/add/",
        {
            "name": "Prod monthly",
            "description": "",
            "is_active": "on",
            "environments": [entitlement.environment_id],
            "tiers": ["critical", "high"],
            "reviewer_rule": "manager",
            "fallback_reviewer": security_admin.pk,
            "owner": security_admin.pk,
            "critical_per_item": "on",
            "cadence": "monthly",
            "duration_days": 10,
            "reminder_days": "3, 7,1",
            "remind_daily_after": "on",
            "escalate_after_days": 2,
            "grace_days": 3,
            "deadline_action": "revoke",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    template = CampaignTemplate.objects.get(name="Prod monthly")
    assert template.tiers == ["high", "critical"] and template.reminder_days == [7, 3, 1]
    assert list(template.environments.all()) == [entitlement.environment]
    task = template.periodic_task
    assert task is not None and task.enabled and task.crontab.month_of_year == "*"
    created = events("admin.object.created")
    assert created[-1].target_type == "accessreq.campaigntemplate"
    change = client.get(f"/admin/accessreq/campaigntemplate/{template.pk}/change/")
    assert 'value="7, 3, 1"' in change.content.decode()

    response = client.post(
        f"/admin/accessreq/campaigntemplate/{template.pk}/change/",
        {
            "name": "Prod monthly",
            "environments": [entitlement.environment_id],
            "tiers": ["high"],
            "reviewer_rule": "manager",
            "fallback_reviewer": security_admin.pk,
            "owner": security_admin.pk,
            "cadence": "annual",
            "duration_days": 10,
            "reminder_days": "",
            "escalate_after_days": 2,
            "grace_days": 0,
            "deadline_action": "flag",
        },
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.crontab.month_of_year == "1" and not task.enabled  # inactive: paused
    changelist = client.get("/admin/accessreq/campaigntemplate/")
    assert changelist.status_code == 200 and "Paused" in changelist.content.decode()

    bad = client.post(
        f"/admin/accessreq/campaigntemplate/{template.pk}/change/",
        {"name": "Prod monthly", "reminder_days": "7, soon", "cadence": "annual"},
    )
    assert bad.status_code == 200 and "not a number of days" in bad.content.decode()

    template.is_active = True
    template.save()
    action = {"action": "launch_now", "_selected_action": [template.pk]}
    client.post("/admin/accessreq/campaigntemplate/", action)
    client.post("/admin/accessreq/campaigntemplate/", action)
    assert Campaign.objects.filter(template=template).count() == 1
    assert len(events("campaign.launched")) == 1


def test_admin_campaigns_and_items_are_read_only(verified_client, security_admin, auditor, world):
    client = verified_client(security_admin)
    for path in ("campaign", "reviewitem"):
        assert client.get(f"/admin/accessreq/{path}/").status_code == 200
        assert client.get(f"/admin/accessreq/{path}/add/").status_code == 403
    item_page = client.get(f"/admin/accessreq/reviewitem/{world.revoked.pk}/change/")
    assert item_page.status_code == 200 and "Moved to the data team" in item_page.content.decode()
    assert client.post(
        f"/admin/accessreq/campaign/{world.campaign.pk}/delete/", {"post": "yes"}
    ).status_code in (403, 404)
    assert Campaign.objects.filter(pk=world.campaign.pk).exists()
