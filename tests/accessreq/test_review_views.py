"""My reviews: the reviewer's items by campaign with their context, certify / revoke / reassign
with inline step-up, bulk certify, filters, and a query count that does not grow with items."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models import (
    AccessRequest,
    ApprovalPolicy,
    Campaign,
    CampaignTemplate,
    ConflictRule,
    Entitlement,
    Grant,
    GrantState,
    ReviewItem,
    RiskTier,
)
from accessreq.reviews import deadline_phrase
from accessreq.selectors import holds_scope
from accessreq.services.campaigns import campaign_close, campaign_launch, item_decide
from accessreq.services.common import now
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.models import Team, TOTPDevice, User
from tests.accessreq.workflow_helpers import (
    FRESH,
    REASON,
    approve,
    make_entitlement,
    make_policy,
    submit,
)
from tests.conftest import current_code
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

pytestmark = pytest.mark.django_db


@dataclass
class World:
    """A launched campaign: the manager reviews the requester's low, high and critical access
    and a colleague's low access; Omar owns everything."""

    template: CampaignTemplate
    campaign: Campaign
    low: ReviewItem
    high: ReviewItem
    critical: ReviewItem
    colleague_low: ReviewItem
    colleague: User


def one_stage_policy():
    existing = ApprovalPolicy.objects.filter(name="One approver").first()
    return existing or make_policy("One approver", ("owner_or_manager", 1, False))


@pytest.fixture
def world(requester, manager, owner, security_admin) -> World:
    policy = one_stage_policy()
    payments = SystemFactory(name="payments", slug="payments")
    low = make_entitlement(tier=RiskTier.LOW, owners=[owner], system=payments, policy=policy)
    high = make_entitlement(tier=RiskTier.HIGH, owners=[owner], system=payments, policy=policy)
    critical = make_entitlement(
        tier=RiskTier.CRITICAL, owners=[owner], system=payments, policy=policy
    )
    colleague = UserFactory(
        display_name="Cara Colleague", email="cara@example.com", manager=manager
    )
    for person, entitlement in (
        (requester, low),
        (requester, high),
        (requester, critical),
        (colleague, low),
    ):
        approve(owner, submit(person, entitlement, duration=timedelta(days=1)))
    template = CampaignTemplate.objects.create(
        name="Quarterly review",
        fallback_reviewer=security_admin,
        owner=security_admin,
        critical_per_item=True,
    )
    campaign = campaign_launch(template_id=template.pk, actor=User.objects.system_actor())
    items = {
        (i.grant.beneficiary_id, i.tier): i
        for i in ReviewItem.objects.filter(campaign=campaign).select_related("grant")
    }
    return World(
        template=template,
        campaign=campaign,
        low=items[(requester.pk, RiskTier.LOW)],
        high=items[(requester.pk, RiskTier.HIGH)],
        critical=items[(requester.pk, RiskTier.CRITICAL)],
        colleague_low=items[(colleague.pk, RiskTier.LOW)],
        colleague=colleague,
    )


def stale(client) -> None:
    """Make the client's second-factor verification older than the step-up window."""
    session = client.session
    session["mfa_verified_at"] = time.time() - 3600
    session.save()


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def events(action: str, item: ReviewItem) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=action, target_type="accessreq.reviewitem", target_id=str(item.pk)
        ).order_by("sequence")
    )


def decision_of(item: ReviewItem) -> str:
    return ReviewItem.objects.get(pk=item.pk).decision


# --- Who may open what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/reviews/"),
        ("post", "/reviews/1/decide/"),
        ("post", "/reviews/1/reassign/"),
        ("post", "/reviews/bulk/"),
    ],
)
def test_anonymous_is_sent_to_sign_in(client, method, path) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_outsider_sees_the_empty_state_and_gets_404_on_others_items(
    verified_client, outsider, world
) -> None:
    client = verified_client(outsider)
    response = client.get("/reviews/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No access to review right now" in html
    assert 'class="help-link" href="/docs/runbooks/recertification/"' in html
    assert "Dev Requester" not in html
    item = world.low
    posts = [
        (f"/reviews/{item.pk}/decide/", {"decision": "certified"}),
        (f"/reviews/{item.pk}/decide/", {"decision": "revoked", "comment": "Not needed"}),
        # An invalid form on someone else's item is a 404 too, not an error page about it.
        (f"/reviews/{item.pk}/decide/", {"decision": "revoked"}),
        (f"/reviews/{item.pk}/reassign/", {"to": outsider.email, "reason": "Mine now"}),
        ("/reviews/bulk/", {"items": [str(item.pk)]}),
        ("/reviews/999999/decide/", {"decision": "certified"}),
    ]
    for path, data in posts:
        assert client.post(path, data).status_code == 404, path
    assert ReviewItem.objects.filter(decision=ReviewDecision.PENDING).count() == 4
    assert not AuditEvent.objects.filter(action__startswith="review.").exists()


def test_another_reviewer_gets_404_and_never_sees_the_items(
    verified_client, security_admin, world
) -> None:
    """The fallback reviewer of the same campaign can't act on the manager's items either."""
    client = verified_client(security_admin)
    assert "Dev Requester" not in client.get("/reviews/").content.decode()
    response = client.post(f"/reviews/{world.low.pk}/decide/", {"decision": "certified"})
    assert response.status_code == 404
    assert decision_of(world.low) == ReviewDecision.PENDING


# --- The page ---------------------------------------------------------------------------------


def test_page_groups_items_by_campaign_with_progress_and_context(
    verified_client, manager, world
) -> None:
    item_decide(actor=manager, item_id=world.colleague_low.pk, decision="certified", mfa=FRESH)
    response = verified_client(manager).get("/reviews/")
    assert response.status_code == 200
    html = response.content.decode()
    (current,) = response.context["current"]
    assert current.campaign == world.campaign
    assert (current.decided, current.total) == (1, 4)
    assert current.deadline_text == "in 13 days"
    assert (
        f'<progress class="rv-progress" id="progress-{world.campaign.pk}" max="4" value="1">'
        in html
    )
    assert "1 of 4</strong> decided" in html
    # Pending only by default: the certified item is not listed.
    (group,) = response.context["groups"]
    listed = {f.row.item.pk for f in group.rows}
    assert listed == {world.low.pk, world.high.pk, world.critical.pk}
    assert "dev@example.com" in html  # holder's email
    assert "Omar Owner" in html  # granted by (the approver in the snapshot)
    assert "never recorded" in html  # last used
    assert 'class="tier tier--critical"' in html
    assert "Code needed" in html
    # Bulk: checkboxes on low and high, none on the critical item of a per-item template.
    assert f'id="select-{world.low.pk}"' in html and f'id="select-{world.high.pk}"' in html
    assert f'id="select-{world.critical.pk}"' not in html
    assert "Decide alone" in html
    assert 'href="/docs/runbooks/recertification/"' in html
    # Reassign suggests active people other than me (the holder is refused when chosen).
    assert '<option value="omar@example.com">Omar Owner</option>' in html
    assert '<option value="mina@example.com">' not in html


def test_decided_items_show_decision_who_when_and_comment(verified_client, manager, world) -> None:
    item_decide(
        actor=manager,
        item_id=world.colleague_low.pk,
        decision="revoked",
        comment="Moved to the data team",
        mfa=FRESH,
    )
    response = verified_client(manager).get("/reviews/?decision=revoked")
    assert response.status_code == 200
    html = response.content.decode()
    (group,) = response.context["groups"]
    assert [f.row.item.pk for f in group.rows] == [world.colleague_low.pk]
    assert '<span class="state state--revoked">Revoked</span>' in html
    assert "by Mina Manager" in html and "Moved to the data team" in html
    assert " UTC" in html


def test_warnings_left_changed_team_and_sod(
    verified_client, requester, manager, owner, world
) -> None:
    """Snapshot and today disagree: the holder left and changed team; they also hold an
    entitlement that conflicts with the one under review."""
    other = make_entitlement(
        tier=RiskTier.LOW,
        owners=[owner],
        system=world.low.grant.entitlement.system,
        policy=one_stage_policy(),
    )
    approve(owner, submit(requester, other))
    ConflictRule.objects.create(
        first=world.low.grant.entitlement, second=other, reason="deployers may not approve"
    )
    User.objects.filter(pk=requester.pk).update(
        employment_status=User.EmploymentStatus.LEFT,
        team=Team.objects.create(name="Data", slug="data"),
    )
    response = verified_client(manager).get(f"/reviews/?tier={RiskTier.LOW}")
    html = response.content.decode()
    rows = {f.row.item.pk: f.row for g in response.context["groups"] for f in g.rows}
    row = rows[world.low.pk]
    assert row.holder_gone == "Has left the company"
    assert row.team_now == "Data"
    assert row.sod_conflicts == [f"Also holds {other}: deployers may not approve"]
    assert "Has left the company" in html and "Changed team" in html and "SoD conflict" in html
    # The colleague is unchanged: no warnings on that row.
    assert not rows[world.colleague_low.pk].has_warnings


def test_inactive_account_and_leaving_are_flagged(
    verified_client, requester, manager, world
) -> None:
    User.objects.filter(pk=requester.pk).update(is_active=False)
    User.objects.filter(pk=world.colleague.pk).update(
        employment_status=User.EmploymentStatus.LEAVING
    )
    html = verified_client(manager).get("/reviews/").content.decode()
    assert "Account deactivated" in html
    assert "Is leaving the company" in html


def test_filters_narrow_the_list(verified_client, manager, world) -> None:
    client = verified_client(manager)

    def listed(query: str) -> set[int]:
        response = client.get(f"/reviews/?{query}")
        assert response.status_code == 200, query
        return {f.row.item.pk for g in response.context["groups"] for f in g.rows}

    everything = {world.low.pk, world.high.pk, world.critical.pk, world.colleague_low.pk}
    assert listed("") == everything
    assert listed("tier=high") == {world.high.pk}
    assert listed("tier=low") == {world.low.pk, world.colleague_low.pk}
    assert listed(f"system={world.low.system_id}") == everything
    team = world.colleague.team.name
    assert listed(f"team={team}") == {world.colleague_low.pk}
    assert listed(f"campaign={world.campaign.pk}&tier=critical") == {world.critical.pk}
    item_decide(actor=manager, item_id=world.low.pk, decision="certified", mfa=FRESH)
    assert listed("") == everything - {world.low.pk}
    assert listed("decision=certified") == {world.low.pk}
    assert listed("decision=all") == everything
    assert listed("decision=revoked") == set()
    response = client.get("/reviews/?decision=revoked")
    assert "No review item matches these filters" in response.content.decode()
    # A value that is not a choice is refused with the field's error, not a crash.
    response = client.get("/reviews/?tier=galactic")
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()


# --- Deciding one item ------------------------------------------------------------------------


def test_certify_records_the_decision_with_mfa_data(verified_client, manager, world) -> None:
    client = verified_client(manager)
    response = client.post(
        f"/reviews/{world.low.pk}/decide/", {"decision": "certified", "back": "tier=low"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/reviews/?tier=low"
    item = ReviewItem.objects.get(pk=world.low.pk)
    assert item.decision == ReviewDecision.CERTIFIED and item.decided_by == manager
    (event,) = events("review.certified", item)
    assert event.actor_id == manager.pk
    assert event.data["mfa_method"] == "totp"
    assert event.data["mfa_age_seconds"] is not None and event.data["mfa_age_seconds"] < 60
    assert "Certified Dev Requester" in " ".join(messages_of(client.get(response["Location"])))
    assert item.grant.state == GrantState.ACTIVE


def test_an_item_decided_meanwhile_gives_a_message(verified_client, manager, world) -> None:
    client = verified_client(manager)
    item_decide(actor=manager, item_id=world.low.pk, decision="certified", mfa=FRESH)
    response = client.post(
        f"/reviews/{world.low.pk}/decide/", {"decision": "certified"}, follow=True
    )
    assert any("already decided: Certified" in m for m in messages_of(response))
    # An incomplete form for it says what was wrong, though the row has no form any more.
    response = client.post(f"/reviews/{world.low.pk}/decide/", {"decision": "revoked"})
    assert response.status_code == 400
    assert any("Say why the access should be revoked" in m for m in messages_of(response))
    assert len(events("review.certified", world.low)) == 1


def test_back_is_rebuilt_from_valid_filters_only(verified_client, manager, world) -> None:
    response = verified_client(manager).post(
        f"/reviews/{world.low.pk}/decide/",
        {"decision": "certified", "back": "tier=nope&next=https://evil.example/&page=2"},
    )
    assert response["Location"] == "/reviews/"


def test_revoke_needs_a_reason(verified_client, manager, world) -> None:
    response = verified_client(manager).post(
        f"/reviews/{world.low.pk}/decide/", {"decision": "revoked", "comment": "  "}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "Say why the access should be revoked" in html
    assert '<details class="rv-action rv-action--revoke" open>' in html
    assert decision_of(world.low) == ReviewDecision.PENDING


def test_revoke_ends_the_grant(verified_client, requester, manager, world) -> None:
    entitlement = world.low.grant.entitlement
    where = {
        "scope": "deploy",
        "system": entitlement.system.slug,
        "environment": entitlement.environment.slug,
    }
    assert holds_scope(user=requester, **where)
    response = verified_client(manager).post(
        f"/reviews/{world.low.pk}/decide/",
        {"decision": "revoked", "comment": "Left the payments project"},
    )
    assert response.status_code == 302
    item = ReviewItem.objects.select_related("grant").get(pk=world.low.pk)
    assert item.decision == ReviewDecision.REVOKED and item.comment == "Left the payments project"
    assert item.grant.state == GrantState.REVOKED and item.grant.revoked_by == manager
    assert not holds_scope(user=requester, **where)
    (event,) = events("review.revoked", item)
    assert event.data["comment"] == "Left the payments project"
    assert AccessRequest.objects.filter(grant=item.grant, state=RequestState.REVOKED).exists()


def test_reassign_hands_the_item_to_another_person(verified_client, manager, owner, world) -> None:
    response = verified_client(manager).post(
        f"/reviews/{world.low.pk}/reassign/",
        {"to": "OMAR@example.com", "reason": "Omar runs the payments team now"},
    )
    assert response.status_code == 302
    old = ReviewItem.objects.get(pk=world.low.pk)
    assert old.decision == ReviewDecision.REASSIGNED
    new = ReviewItem.objects.get(reassigned_from=old)
    assert new.reviewer == owner and new.decision == ReviewDecision.PENDING
    (event,) = events("review.reassigned", old)
    assert event.data["to_id"] == owner.pk and event.data["new_item_id"] == new.pk
    # It appears on Omar's page, saying who handed it over and why.
    page = verified_client(owner).get("/reviews/")
    html = page.content.decode()
    assert [f.row.item.pk for g in page.context["groups"] for f in g.rows] == [new.pk]
    assert "Handed to you by Mina Manager" in html and "Omar runs the payments team now" in html
    # And on the manager's page, with decision=all, as handed to Omar.
    mine = verified_client(manager).get("/reviews/?decision=reassigned").content.decode()
    assert "to Omar Owner" in mine


@pytest.mark.parametrize(
    ("to", "error"),
    [
        ("dev@example.com", "not yourself and not the person who holds it"),
        ("mina@example.com", "this item is already yours"),
        ("nobody@example.com", "No active person has the email address"),
        ("", "This field is required"),
    ],
)
def test_reassign_refusals_keep_the_form_open(verified_client, manager, world, to, error) -> None:
    response = verified_client(manager).post(
        f"/reviews/{world.low.pk}/reassign/", {"to": to, "reason": "Not my area"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert error in html
    assert '<details class="rv-action rv-action--reassign" open>' in html
    assert decision_of(world.low) == ReviewDecision.PENDING
    assert not AuditEvent.objects.filter(action="review.reassigned").exists()


def test_reassign_needs_a_reason(verified_client, manager, owner, world) -> None:
    response = verified_client(manager).post(
        f"/reviews/{world.low.pk}/reassign/", {"to": owner.email, "reason": " "}
    )
    assert response.status_code == 400
    assert "Say why you hand this item on" in response.content.decode()
    assert decision_of(world.low) == ReviewDecision.PENDING


# --- Step-up ----------------------------------------------------------------------------------


def test_high_tier_with_a_stale_session_and_no_code_is_refused(
    verified_client, manager, world
) -> None:
    client = verified_client(manager)
    stale(client)
    page = client.get("/reviews/").content.decode()
    # The code field is shown on the high and critical rows only.
    assert f'id="certify-{world.high.pk}-code"' in page
    assert f'id="certify-{world.low.pk}-code"' not in page
    response = client.post(f"/reviews/{world.high.pk}/decide/", {"decision": "certified"})
    assert response.status_code == 400
    html = response.content.decode()
    assert "needs a fresh second factor" in html
    assert f'id="certify-{world.high.pk}-code"' in html
    assert decision_of(world.high) == ReviewDecision.PENDING
    assert not events("review.certified", world.high)
    # A low-tier item needs no code even now.
    assert (
        client.post(f"/reviews/{world.low.pk}/decide/", {"decision": "certified"}).status_code
        == 302
    )
    assert decision_of(world.low) == ReviewDecision.CERTIFIED


def test_high_tier_with_a_wrong_code_changes_nothing(verified_client, manager, world) -> None:
    client = verified_client(manager)
    stale(client)
    device = TOTPDevice.objects.get(user=manager)
    wrong = f"{(int(current_code(device)) + 1) % 1_000_000:06d}"
    response = client.post(
        f"/reviews/{world.high.pk}/decide/",
        {"decision": "revoked", "comment": "No longer on call", "code": wrong},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "That code is not right" in html and "No longer on call" in html
    assert f'value="{wrong}"' not in html
    assert decision_of(world.high) == ReviewDecision.PENDING
    assert Grant.objects.get(pk=world.high.grant_id).state == GrantState.ACTIVE
    assert AuditEvent.objects.filter(action="auth.mfa.failed", actor_id=manager.pk).exists()


def test_high_tier_with_a_correct_code_is_decided_in_one_post(
    verified_client, manager, world
) -> None:
    client = verified_client(manager)
    stale(client)
    code = current_code(TOTPDevice.objects.get(user=manager))
    response = client.post(
        f"/reviews/{world.high.pk}/decide/", {"decision": "certified", "code": code}
    )
    assert response.status_code == 302
    item = ReviewItem.objects.get(pk=world.high.pk)
    assert item.decision == ReviewDecision.CERTIFIED
    assert item.mfa_age_seconds is not None and item.mfa_age_seconds < 60
    (event,) = events("review.certified", item)
    assert event.data["mfa_age_seconds"] < 60
    assert AuditEvent.objects.filter(action="auth.mfa.verified", actor_id=manager.pk).exists()


# --- Bulk -------------------------------------------------------------------------------------


def test_bulk_certifies_and_refuses_a_forged_critical_id(verified_client, manager, world) -> None:
    client = verified_client(manager)
    ids = [world.low.pk, world.high.pk, world.colleague_low.pk, world.critical.pk]
    response = client.post("/reviews/bulk/", {"items": [str(i) for i in ids]}, follow=True)
    assert response.status_code == 200
    shown = messages_of(response)
    assert "Certified 3 items." in shown
    assert any("critical tier: decide it on its own" in m for m in shown)
    for item in (world.low, world.high, world.colleague_low):
        assert decision_of(item) == ReviewDecision.CERTIFIED
        (event,) = events("review.certified", item)
        assert event.data["mfa_method"] == "totp"
    assert decision_of(world.critical) == ReviewDecision.PENDING


def test_bulk_with_a_stale_session_asks_for_one_code(verified_client, manager, world) -> None:
    client = verified_client(manager)
    stale(client)
    picked = {"items": [str(world.low.pk), str(world.high.pk)]}
    response = client.post("/reviews/bulk/", picked)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'id="bulk-code"' in html and "needs a fresh second factor" in html
    # The ticks survive, and nothing was certified (not even the low-tier item).
    assert f'id="select-{world.low.pk}" checked' in html
    assert f'id="select-{world.high.pk}" checked' in html
    assert decision_of(world.low) == ReviewDecision.PENDING
    code = current_code(TOTPDevice.objects.get(user=manager))
    response = client.post("/reviews/bulk/", {**picked, "code": code}, follow=True)
    assert "Certified 2 items." in messages_of(response)
    assert decision_of(world.low) == decision_of(world.high) == ReviewDecision.CERTIFIED


def test_bulk_of_low_items_needs_no_code(verified_client, manager, world) -> None:
    client = verified_client(manager)
    stale(client)
    response = client.post(
        "/reviews/bulk/", {"items": [str(world.low.pk), str(world.colleague_low.pk)]}, follow=True
    )
    assert "Certified 2 items." in messages_of(response)


def test_bulk_with_nothing_ticked_says_so(verified_client, manager, world) -> None:
    response = verified_client(manager).post("/reviews/bulk/", {}, follow=True)
    assert "Tick the items you want to certify first." in messages_of(response)


def test_bulk_with_a_foreign_id_is_404_and_changes_nothing(
    verified_client, manager, security_admin, world
) -> None:
    theirs = ReviewItem.objects.create(
        campaign=world.campaign,
        grant=Grant.objects.filter(beneficiary=world.colleague).first(),
        reviewer=security_admin,
        reviewer_reason="reassigned",
        snapshot={},
        tier=RiskTier.LOW,
        system_id=world.low.system_id,
        decision=ReviewDecision.REASSIGNED,  # not the open item of that grant
    )
    response = verified_client(manager).post(
        "/reviews/bulk/", {"items": [str(world.low.pk), str(theirs.pk)]}
    )
    assert response.status_code == 404
    assert decision_of(world.low) == ReviewDecision.PENDING


# --- Closed campaigns and own access ----------------------------------------------------------


def test_decision_after_the_campaign_closed_is_refused_with_a_message(
    verified_client, manager, security_admin, world
) -> None:
    client = verified_client(manager)
    campaign_close(campaign_id=world.campaign.pk, actor=security_admin, early=True)
    response = client.post(
        f"/reviews/{world.low.pk}/decide/", {"decision": "certified"}, follow=True
    )
    assert response.status_code == 200
    assert any("decisions are no longer accepted" in m for m in messages_of(response))
    item = ReviewItem.objects.get(pk=world.low.pk)
    assert item.decision == ReviewDecision.EXPIRED and item.decided_by is None
    assert not events("review.certified", item)
    # Reassigning and bulk certifying are refused the same way.
    response = client.post(
        f"/reviews/{world.high.pk}/reassign/",
        {"to": "omar@example.com", "reason": "Too late"},
        follow=True,
    )
    assert any("decisions are no longer accepted" in m for m in messages_of(response))
    response = client.post("/reviews/bulk/", {"items": [str(world.colleague_low.pk)]}, follow=True)
    assert any("decisions are no longer accepted" in m for m in messages_of(response))
    assert not AuditEvent.objects.filter(
        action__in=["review.certified", "review.reassigned"]
    ).exists()
    # The campaign is now in the past section, its items with decision=all.
    page = client.get("/reviews/")
    assert page.context["past"] and not page.context["current"]
    assert "No access to review right now" in page.content.decode()
    html = client.get("/reviews/?decision=all").content.decode()
    assert '<details class="rv-group rv-group--past">' in html
    assert "Expired by deadline" in html


def test_own_access_goes_to_the_fallback_reviewer(
    verified_client, manager, owner, security_admin, world
) -> None:
    """The manager's own grant, in a campaign by entitlement owner, reviewed by Omar... unless
    Omar holds it: then the fallback reviewer gets it."""
    entitlement = world.low.grant.entitlement
    User.objects.filter(pk=owner.pk).update(manager=manager)
    owner.refresh_from_db()
    approve(manager, submit(owner, entitlement))  # Omar holds what he owns
    template = CampaignTemplate.objects.create(
        name="Owners review",
        reviewer_rule="entitlement_owner",
        fallback_reviewer=security_admin,
        owner=security_admin,
    )
    campaign = campaign_launch(template_id=template.pk, actor=User.objects.system_actor())
    own = ReviewItem.objects.get(campaign=campaign, grant__beneficiary=owner)
    assert own.reviewer == security_admin and own.reviewer_reason == "fallback"
    html = verified_client(owner).get(f"/reviews/?campaign={campaign.pk}").content.decode()
    assert "Omar Owner</strong>" not in html
    assert (
        verified_client(owner)
        .post(f"/reviews/{own.pk}/decide/", {"decision": "certified"})
        .status_code
        == 404
    )


def test_an_item_on_ones_own_access_cannot_be_decided(
    verified_client, requester, manager, world
) -> None:
    """Even if an item of one's own access reached one's page, the page offers nothing and the
    service refuses (404)."""
    grant = world.low.grant
    ReviewItem.objects.filter(pk=world.low.pk).update(decision=ReviewDecision.REASSIGNED)
    own = ReviewItem.objects.create(
        campaign=world.campaign,
        grant=grant,
        reviewer=requester,
        snapshot=world.low.snapshot,
        tier=world.low.tier,
        system_id=world.low.system_id,
    )
    client = verified_client(requester)
    html = client.get("/reviews/").content.decode()
    assert "This is your own access" in html
    assert f'action="/reviews/{own.pk}/decide/"' not in html
    assert client.post(f"/reviews/{own.pk}/decide/", {"decision": "certified"}).status_code == 404
    assert decision_of(own) == ReviewDecision.PENDING


# --- Deadline text ----------------------------------------------------------------------------


def test_deadline_phrases() -> None:
    at = now()
    assert deadline_phrase(at + timedelta(days=3, hours=2), at) == ("in 3 days", False)
    assert deadline_phrase(at + timedelta(days=1), at) == ("in 1 day", False)
    assert deadline_phrase(at + timedelta(hours=5, minutes=10), at) == ("in 5 hours", False)
    assert deadline_phrase(at + timedelta(minutes=10), at) == ("in less than an hour", False)
    assert deadline_phrase(at - timedelta(days=2, hours=3), at) == ("overdue by 2 days", True)
    assert deadline_phrase(at - timedelta(minutes=5), at) == ("overdue by 1 hour", True)


def test_overdue_campaign_says_so(verified_client, manager, world) -> None:
    Campaign.objects.filter(pk=world.campaign.pk).update(
        deadline=now() - timedelta(days=2, hours=1)
    )
    html = verified_client(manager).get("/reviews/").content.decode()
    assert "overdue by 2 days" in html and "rv-card--overdue" in html


# --- Query count ------------------------------------------------------------------------------


def _fill_reviews(reviewer: User, fallback: User, count: int) -> Campaign:
    """``count`` pending items for ``reviewer``, written with bulk_create (not the services):
    100 holders x 50 entitlements, two teams, one conflict rule, some holders gone."""
    clock = now()
    system = SystemFactory(name="ledger", slug="ledger")
    environment = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    entitlements: list[Entitlement] = [
        EntitlementFactory(system=system, environment=environment, name=f"Role {n:02d}")
        for n in range(50)
    ]
    ConflictRule.objects.create(
        first=entitlements[0], second=entitlements[1], reason="no deploy and approve"
    )
    teams = [Team.objects.create(name=f"Squad {n}", slug=f"squad-{n}") for n in range(2)]
    holders = User.objects.bulk_create(
        User(
            email=f"holder{n}@example.com",
            display_name=f"Holder {n:03d}",
            manager=reviewer,
            team=teams[n % 2],
            employment_status=User.EmploymentStatus.LEFT if n % 10 == 0 else "active",
            password="!",  # unusable
        )
        for n in range(100)
    )
    team_of = {holder.pk: teams[n % 2].name for n, holder in enumerate(holders)}
    pairs = [(holders[n % 100], entitlements[n // 100]) for n in range(count)]
    # Whoever holds role 0 also holds role 1 (the conflict), when the data set is small.
    if count <= 100:
        pairs += [(holders[n], entitlements[1]) for n in range(count)]
    requests = AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=person,
            beneficiary=person,
            entitlement=entitlement,
            justification=REASON,
            duration=timedelta(days=90),
            state=RequestState.ACTIVE,
            created_at=clock - timedelta(days=30),
        )
        for person, entitlement in pairs
    )
    grants = Grant.objects.bulk_create(
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
        name="Big review", fallback_reviewer=fallback, owner=fallback
    )
    campaign = Campaign.objects.create(
        template=template,
        period="2026-Q1",
        state=CampaignState.OPEN,
        launched_at=clock,
        deadline=clock + timedelta(days=14),
    )
    ReviewItem.objects.bulk_create(
        ReviewItem(
            campaign=campaign,
            grant=grant,
            reviewer=reviewer,
            snapshot={
                "holder": grant.beneficiary.display_name,
                "holder_email": grant.beneficiary.email,
                "holder_id": grant.beneficiary_id,
                "holder_status": "active",
                "holder_active": True,
                # Every third holder changed team since launch.
                "team": "Old squad" if n % 3 == 0 else team_of[grant.beneficiary_id],
                "entitlement": f"ledger / prod / {grant.entitlement.name}",
                "system": "ledger",
                "environment": "prod",
                "tier": RiskTier.HIGH,
                "granted_at": grant.starts_at.isoformat(),
                "expires_at": grant.expires_at.isoformat(),
                "granted_by": ["Omar Owner"],
                "break_glass": False,
                "last_used_at": None,
            },
            tier=RiskTier.HIGH,
            system=system,
            team_name=team_of[grant.beneficiary_id],
        )
        for n, grant in enumerate(grants[:count])
    )
    return campaign


def _count_queries(client, path: str = "/reviews/") -> tuple[int, float]:
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        response = client.get(path)
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return len(captured), elapsed


# The reviews page: session, user, OTP device, clock; the campaigns with their counts; the filter
# choices (systems, teams); the page count and rows; the rows' context (conflict rules, held
# grants; whom reassigned items went to, only when some are); the people to hand items to; and
# the layout's nav (two approval counts, the review count, groups). 16 with 10 items and 5,000.
REVIEWS_MAX_QUERIES = 16


@pytest.mark.parametrize("count", [10, 5000])
def test_page_query_count_does_not_grow_with_items(
    verified_client, manager, security_admin, count, django_assert_max_num_queries
) -> None:
    _fill_reviews(manager, security_admin, count)
    client = verified_client(manager)
    with django_assert_max_num_queries(REVIEWS_MAX_QUERIES):
        response = client.get("/reviews/")
    assert response.status_code == 200
    assert response.context["page"].paginator.count == count
    rows = [f.row for g in response.context["groups"] for f in g.rows]
    assert len(rows) == min(count, 50)
    assert any(r.holder_gone for r in rows) and any(r.team_now for r in rows)
    assert any(r.sod_conflicts for r in rows)
    queries, elapsed = _count_queries(client)
    later, _ = _count_queries(client, "/reviews/?page=3&tier=high")
    print(
        f"\nreviews page with {count} items ({connection.vendor}): {queries} queries, "
        f"page 3 filtered {later}, {elapsed * 1000:.0f} ms"
    )
