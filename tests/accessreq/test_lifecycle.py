"""Joiners, movers and leavers through the identity lifecycle services: birthright access, a
mover's review by the new manager and rerouted approvals, a leaver's whole offboarding (and that
a repeated or concurrent push does it once), and people who stopped signing in."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accessreq.campaign_states import ReviewDecision
from accessreq.errors import NotAllowed
from accessreq.models import (
    AccessRequest,
    ApiToken,
    ApproverRule,
    BirthrightAccess,
    Campaign,
    Connector,
    ConnectorKind,
    Delegation,
    Grant,
    GrantState,
    Notification,
    Operation,
    ProvisioningTask,
    RequestKind,
    ReviewItem,
    TokenKind,
)
from accessreq.selectors import holds_scope
from accessreq.services.campaigns import campaign_launch
from accessreq.services.common import now
from accessreq.services.delegation import delegation_create
from accessreq.services.lifecycle import (
    MOVER_TEMPLATE,
    Offboarded,
    people_inactivity_sweep,
    person_join,
    person_leave,
    person_move,
    person_return,
)
from accessreq.services.tokens import token_digest
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.models import Session, User
from tests.accessreq.workflow_helpers import (
    approve,
    direct_grant,
    events,
    make_entitlement,
    make_policy,
    run_together,
    submit,
)
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def _scope(entitlement) -> str:
    return entitlement.scopes.first().slug


def _holds(person: User, entitlement) -> bool:
    return holds_scope(
        user=person,
        scope=_scope(entitlement),
        system=entitlement.system.slug,
        environment=entitlement.environment.slug,
    )


# --- Joiners -----------------------------------------------------------------------------------


def test_a_joiner_gets_nothing_unless_their_team_has_birthright_access(security_admin):
    team = TeamFactory(name="Payments")
    person = UserFactory(team=team)
    person_join(user=person, actor=security_admin, source="scim:okta")
    assert not Grant.objects.filter(beneficiary=person).exists()
    (joined,) = events("person.joined")
    assert joined.data["source"] == "scim:okta"
    assert joined.data["team"] == "Payments" and joined.data["birthright_grants"] == []


def test_birthright_access_is_granted_by_the_system_through_the_normal_grant(security_admin):
    team = TeamFactory(name="Payments")
    desk = Connector.objects.create(name="ops desk", kind=ConnectorKind.MANUAL)
    entitlement = make_entitlement(max_duration=timedelta(days=30), connector=desk)
    BirthrightAccess.objects.create(team=team, entitlement=entitlement, duration=timedelta(days=90))
    person = UserFactory(team=team)
    person_join(user=person, actor=security_admin, source="admin")

    grant = Grant.objects.get(beneficiary=person)
    assert grant.state == GrantState.ACTIVE and _holds(person, entitlement)
    # Capped by the entitlement's longest grant, like any request.
    assert timedelta(days=29) < grant.expires_at - grant.starts_at <= timedelta(days=30)
    request = grant.request
    assert request.kind == RequestKind.BIRTHRIGHT
    assert request.requester == User.objects.system_actor()
    assert request.state == RequestState.ACTIVE
    assert events("person.joined")[0].data["birthright_grants"] == [grant.pk]
    assert [e.action for e in events("request.birthright")] == ["request.birthright"]
    # The connector is told to set it up, as for an approval.
    assert ProvisioningTask.objects.filter(grant=grant, operation=Operation.PROVISION).exists()


# --- Movers ------------------------------------------------------------------------------------


def test_a_mover_s_access_goes_to_a_review_by_the_new_manager(security_admin, requester, manager):
    new_manager = UserFactory(display_name="Nia New-Manager")
    first, second = make_entitlement(), make_entitlement()
    grants = [direct_grant(requester, first), direct_grant(requester, second)]

    changed = person_move(
        user=requester, actor=security_admin, source="scim:entra", manager=new_manager
    )

    assert changed is True
    requester.refresh_from_db()
    assert requester.manager == new_manager
    campaign = Campaign.objects.get(template__name=MOVER_TEMPLATE)
    assert campaign.state == "open" and not campaign.template.is_active
    items = ReviewItem.objects.filter(campaign=campaign)
    assert sorted(i.grant_id for i in items) == sorted(g.pk for g in grants)
    assert {i.reviewer for i in items} == {new_manager}
    assert Notification.objects.filter(recipient=new_manager, subject__contains="review").exists()
    (moved,) = events("person.moved")
    assert moved.data["manager"] == {"before": str(manager), "after": str(new_manager)}
    assert moved.data["review_campaign_id"] == campaign.pk and moved.data["source"] == "scim:entra"
    # The same change again changes nothing and records nothing.
    assert (
        person_move(user=requester, actor=security_admin, source="x", manager=new_manager) is False
    )
    assert len(events("person.moved")) == 1


def test_a_mover_s_pending_request_is_asked_of_the_new_manager(security_admin, requester, manager):
    new_manager = UserFactory(display_name="Nia New-Manager")
    policy = make_policy("Manager decides", (ApproverRule.MANAGER, 1, False))
    pending = submit(requester, make_entitlement(policy=policy))
    assert list(pending.assignments.values_list("principal", flat=True)) == [manager.pk]

    person_move(user=requester, actor=security_admin, source="admin", manager=new_manager)

    assert list(pending.assignments.values_list("principal", flat=True)) == [new_manager.pk]
    (rerouted,) = events("request.rerouted")
    assert rerouted.data["removed"] == [str(manager)] and rerouted.data["added"] == [
        str(new_manager)
    ]
    with pytest.raises(NotAllowed):
        approve(manager, pending)
    approve(new_manager, pending)
    pending.refresh_from_db()
    assert pending.state == RequestState.ACTIVE


def test_moving_into_a_team_grants_its_birthright_access(security_admin, requester):
    data = TeamFactory(name="Data")
    entitlement = make_entitlement()
    BirthrightAccess.objects.create(team=data, entitlement=entitlement, duration=timedelta(days=7))
    person_move(user=requester, actor=security_admin, source="scim:okta", team=data)
    assert _holds(requester, entitlement)
    assert events("person.moved")[0].data["team"]["after"] == "Data"


# --- Leavers -----------------------------------------------------------------------------------


@pytest.fixture
def busy_leaver(requester, manager, security_admin, owner, client):
    """A person with access, a pending request, a session, a delegation, an approval and a review
    waiting for them, and a service account only they own."""
    desk = Connector.objects.create(name="ops desk", kind=ConnectorKind.MANUAL)
    held = make_entitlement(connector=desk)
    grant = direct_grant(requester, held)
    Grant.objects.filter(pk=grant.pk).update(provisioned_at=now())
    policy = make_policy("Owner decides", (ApproverRule.ENTITLEMENT_OWNER, 1, False))
    pending = submit(requester, make_entitlement(policy=policy, owners=[owner]))
    colleague = UserFactory(display_name="Cole Colleague", manager=manager)
    waiting = submit(colleague, make_entitlement(policy=policy, owners=[requester]))
    delegation_create(
        actor=requester, delegate=manager, starts_at=now(), ends_at=now() + timedelta(days=3)
    )
    template = _template(owner)
    direct_grant(colleague, make_entitlement(system=held.system))
    Session.objects.create(
        session_key="s" * 32,
        session_data="",
        expire_date=now() + timedelta(hours=1),
        user_id=requester.pk,
    )
    account = User.objects.create_user(
        "deployer@svc.example.com", display_name="deployer", kind=User.Kind.SERVICE
    )
    account.owners.add(requester)
    ApiToken.objects.create(
        service_account=account,
        kind=TokenKind.MINTED,
        prefix="gtm_abcdefgh",
        digest=token_digest("gtm_secret"),
        created_by=requester,
        expires_at=now() + timedelta(days=10),
    )
    colleague.manager = requester
    colleague.save()
    campaign = campaign_launch(template_id=template.pk, actor=security_admin)
    return {
        "pending": pending,
        "waiting": waiting,
        "campaign": campaign,
        "colleague": colleague,
        "account": account,
    }


def _template(owner):
    from accessreq.models import CampaignTemplate, ReviewerRule

    return CampaignTemplate.objects.create(
        name="Quarterly", reviewer_rule=ReviewerRule.MANAGER, fallback_reviewer=owner, owner=owner
    )


def test_a_leaver_loses_everything_and_nobody_waits_for_them(
    busy_leaver, requester, manager, security_admin, owner
):
    review = ReviewItem.objects.get(reviewer=requester, decision=ReviewDecision.PENDING)

    done = person_leave(
        user=requester, actor=security_admin, reason="left the company", source="scim:okta"
    )

    requester.refresh_from_db()
    assert (requester.employment_status, requester.is_active) == ("left", False)
    assert done == Offboarded(
        requests_withdrawn=1,
        sessions_ended=1,
        grants_revoked=1,
        delegations_cancelled=1,
        requests_rerouted=1,
        reviews_reassigned=1,
        tokens_flagged=1,
    )
    assert not Session.objects.filter(user_id=requester.pk).exists()
    assert not Grant.objects.filter(beneficiary=requester).live().exists()
    revoked = Grant.objects.get(beneficiary=requester)
    assert ProvisioningTask.objects.filter(grant=revoked, operation=Operation.DEPROVISION).exists()
    assert AccessRequest.objects.get(pk=busy_leaver["pending"].pk).state == RequestState.WITHDRAWN
    assert Delegation.objects.get(delegator=requester).cancelled_at is not None
    # The colleague's request waited for the leaver (its entitlement's owner): the security
    # admins take it.
    waiting = busy_leaver["waiting"]
    assert list(waiting.assignments.values_list("principal", flat=True)) == [security_admin.pk]
    # The leaver's review of the colleague goes to the leaver's own manager.
    review.refresh_from_db()
    assert review.decision == ReviewDecision.REASSIGNED
    assert ReviewItem.objects.get(reassigned_from=review).reviewer == manager
    token = ApiToken.objects.get(service_account=busy_leaver["account"])
    assert token.flagged_at is not None and token.revoked_at is None
    assert "only owner" in token.flag_reason
    assert Notification.objects.filter(
        recipient=security_admin, subject__startswith="Service account without an owner"
    ).exists()
    (left,) = events("person.left")
    assert left.data["source"] == "scim:okta" and left.data["grants_revoked"] == 1
    assert left.data["employment_status"] == {"before": "active", "after": "left"}
    for action in (
        "request.withdrawn",
        "user.deactivated",
        "grant.revoked",
        "delegation.cancelled",
        "request.rerouted",
        "review.reassigned",
        "api.token.flagged",
    ):
        assert events(action), action


def test_a_repeated_leaver_push_does_nothing_more(busy_leaver, requester, security_admin):
    person_leave(user=requester, actor=security_admin, reason="left", source="scim:okta")
    before = AuditEvent.objects.count()
    again = person_leave(user=requester, actor=security_admin, reason="left", source="scim:okta")
    assert again == Offboarded()
    assert AuditEvent.objects.count() == before


def test_someone_who_returns_can_sign_in_but_gets_nothing_back(requester, security_admin):
    entitlement = make_entitlement()
    direct_grant(requester, entitlement)
    person_leave(user=requester, actor=security_admin, reason="left", source="scim:okta")
    assert person_return(user=requester, actor=security_admin, source="scim:okta") is True
    requester.refresh_from_db()
    assert (requester.employment_status, requester.is_active) == ("active", True)
    assert not _holds(requester, entitlement)
    assert events("person.returned")[0].data["before"] == {
        "is_active": False,
        "employment_status": "left",
    }


@pytest.mark.django_db(transaction=True)
def test_two_leaver_pushes_at_once_offboard_once(requester, security_admin):
    for _ in range(3):
        direct_grant(requester, make_entitlement())

    def push(directory: str) -> Offboarded:
        return person_leave(
            user=User.objects.get(pk=requester.pk),
            actor=security_admin,
            reason="left",
            source=f"scim:{directory}",
        )

    outcomes = run_together([lambda: push("okta"), lambda: push("entra")])

    assert [o.error for o in outcomes] == [None, None]
    assert sorted(o.result.grants_revoked for o in outcomes) == [0, 3]
    assert len(events("person.left")) == 1
    assert len(events("grant.revoked")) == 3
    assert not Grant.objects.filter(beneficiary=requester).live().exists()


@pytest.mark.django_db(transaction=True)
def test_an_approval_racing_a_leaver_push_leaves_no_access(requester, manager, security_admin):
    policy = make_policy("Manager decides", (ApproverRule.MANAGER, 1, False))
    pending = submit(requester, make_entitlement(policy=policy))

    outcomes = run_together(
        [
            lambda: approve(manager, AccessRequest.objects.get(pk=pending.pk)),
            lambda: person_leave(
                user=User.objects.get(pk=requester.pk),
                actor=security_admin,
                reason="left",
                source="scim:okta",
            ),
        ]
    )

    assert outcomes[1].error is None
    pending.refresh_from_db()
    # Either the leaver push withdrew it first (and the approval was refused), or the approval
    # won and its grant was then revoked: never access held by someone who left.
    assert pending.state in (RequestState.WITHDRAWN, RequestState.REVOKED)
    assert not Grant.objects.filter(beneficiary=requester).live().exists()


# --- Inactivity --------------------------------------------------------------------------------


def _last_signed_in(person: User, days_ago: int) -> None:
    User.objects.filter(pk=person.pk).update(last_login=now() - timedelta(days=days_ago))


def test_people_who_stop_signing_in_are_flagged_to_their_manager(settings, requester, manager):
    settings.INACTIVITY_FLAG_DAYS = 30
    _last_signed_in(requester, 31)
    _last_signed_in(manager, 2)
    entitlement = make_entitlement()
    direct_grant(requester, entitlement)

    assert people_inactivity_sweep() == {"flagged": 1, "suspended": 0}
    assert people_inactivity_sweep() == {"flagged": 0, "suspended": 0}  # once

    requester.refresh_from_db()
    assert requester.inactive_since is not None and _holds(requester, entitlement)
    assert events("person.inactive")[0].data["days"] == 30
    (notice,) = Notification.objects.filter(subject__contains="has not signed in")
    assert notice.recipient == manager


def test_suspension_revokes_access_only_when_switched_on(settings, requester, manager):
    settings.INACTIVITY_FLAG_DAYS = 30
    settings.INACTIVITY_SUSPEND_DAYS = 60
    _last_signed_in(manager, 1)
    entitlement = make_entitlement()
    direct_grant(requester, entitlement)
    _last_signed_in(requester, 45)
    assert people_inactivity_sweep() == {"flagged": 1, "suspended": 0}
    assert _holds(requester, entitlement)

    _last_signed_in(requester, 61)
    assert people_inactivity_sweep() == {"flagged": 0, "suspended": 1}
    assert not _holds(requester, entitlement)
    assert events("person.access_suspended")[0].data["grants_revoked"] == 1
    assert Grant.objects.get(beneficiary=requester).revoke_reason.startswith("Suspended")


def test_signing_in_again_clears_the_flag(settings, client, requester):
    from tests.conftest import password_login

    settings.INACTIVITY_FLAG_DAYS = 30
    _last_signed_in(requester, 40)
    people_inactivity_sweep()
    password_login(client, requester)
    requester.refresh_from_db()
    assert requester.inactive_since is None
    assert events("person.active_again")


def test_the_service_account_page_shows_the_flagged_tokens(
    busy_leaver, requester, security_admin, verified_client
):
    person_leave(user=requester, actor=security_admin, reason="left", source="scim:okta")
    account = busy_leaver["account"]
    page = verified_client(security_admin).get(f"/service-accounts/{account.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "1 token flagged:" in text and "nobody who still works here owns this account" in text
    assert f"{requester} (left)" in text
    assert 'title="The only owner of this service account, Dev Requester, left">Flagged' in text


def test_security_admins_home_lists_inactive_people_and_orphaned_accounts(
    settings, busy_leaver, requester, manager, security_admin, verified_client
):
    client = verified_client(security_admin)
    assert "without an owner" not in client.get("/").content.decode()
    person_leave(user=requester, actor=security_admin, reason="left", source="scim:okta")
    settings.INACTIVITY_FLAG_DAYS = 30
    _last_signed_in(manager, 40)
    people_inactivity_sweep()

    text = client.get("/").content.decode()
    assert "1 service account without an owner" in text
    assert "1 person has not signed in for a long time" in text
    assert "?activity=flagged" in text
