"""Requester pages: the request form and its approver preview, My requests, one request."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from accessreq.models import (
    AccessRequest,
    Approval,
    ConflictRule,
    Decision,
    Grant,
    RequestKind,
    RiskTier,
)
from accessreq.services.common import MfaContext, now
from accessreq.services.requests import request_approve, request_deny, request_submit
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.models import User
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

FRESH = MfaContext("totp", 10)
REASON = "Deploy the hotfix for the payments outage"
HOUR = "3600"


@pytest.fixture
def prod_deploy(owner):
    """A high-tier entitlement: the manager approves, then the system owner (Omar)."""
    system = SystemFactory(name="payments", slug="payments")
    system.owners.add(owner)
    env = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    return EntitlementFactory(
        system=system, environment=env, name="Deployer", max_duration=timedelta(hours=8)
    )


@pytest.fixture
def dev_logs(owner):
    """A low-tier entitlement with a ticket requirement and an odd maximum (36 hours)."""
    system = SystemFactory(name="ledger", slug="ledger")
    env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    ent = EntitlementFactory(
        system=system,
        environment=env,
        name="Log reader",
        scopes=["read-logs"],
        max_duration=timedelta(hours=36),
        ticket_required=True,
    )
    ent.owners.add(owner)
    return ent


def form_url(entitlement) -> str:
    return f"/catalog/{entitlement.pk}/request/"


def submit(client, entitlement, **fields):
    data = {"justification": REASON, "duration": HOUR, **fields}
    return client.post(form_url(entitlement), data)


def held_by(user, entitlement) -> AccessRequest:
    """Make ``user`` hold the (high-tier) entitlement through the real approval path."""
    req = request_submit(
        actor=user, entitlement=entitlement, justification=REASON, duration=timedelta(hours=2)
    )
    manager = User.objects.get(pk=user.manager_id)
    owner = entitlement.system.owners.get()
    request_approve(actor=manager, request_id=req.pk, mfa=FRESH, comment="Fine by me")
    request_approve(actor=owner, request_id=req.pk, mfa=FRESH)
    req.refresh_from_db()
    return req


# --- Closed to anonymous people ---------------------------------------------------------------


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client, requester, prod_deploy) -> None:
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    for url in (form_url(prod_deploy), "/requests/", f"/requests/{req.pk}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/"), url
    response = client.post(f"/requests/{req.pk}/withdraw/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert response.status_code == 302 and AccessRequest.objects.get().state == "pending"
    response = client.post(form_url(prod_deploy), {"justification": REASON, "duration": HOUR})
    assert response["Location"].startswith("/accounts/login/")
    assert AccessRequest.objects.count() == 1


# --- The request form -------------------------------------------------------------------------


@pytest.mark.django_db
def test_form_shows_who_will_approve_a_high_tier_request(
    verified_client, requester, manager, owner, prod_deploy
) -> None:
    response = verified_client(requester).get(form_url(prod_deploy))
    assert response.status_code == 200
    preview = response.context["preview"]
    assert [s["rule"] for s in preview] == ["manager", "system_owner"]
    assert preview[0]["people"] == [manager] and preview[1]["people"] == [owner]
    assert all(s["step_up"] for s in preview)
    html = response.content.decode()
    aside = html[html.index('id="approval-preview"') :]
    assert "Who will have to approve" in aside
    assert aside.index("Mina Manager") < aside.index("Omar Owner")
    assert "step-up MFA" in aside
    assert 'class="help-link" href="/docs/runbooks/requesting-access/"' in html
    # One person to choose from: no "On behalf of" select at all.
    assert 'name="beneficiary"' not in html
    # Durations: the presets up to the maximum, which is itself a preset here.
    assert [c[1] for c in response.context["form"].fields["duration"].choices] == [
        "1 hour",
        "8 hours (maximum)",
    ]
    assert 'name="ticket"' not in html


@pytest.mark.django_db
def test_form_offers_the_odd_maximum_and_asks_for_a_ticket(
    verified_client, requester, dev_logs
) -> None:
    response = verified_client(requester).get(form_url(dev_logs))
    labels = [c[1] for c in response.context["form"].fields["duration"].choices]
    assert labels == ["1 hour", "8 hours", "1 day", "1 day 12 hours (maximum)"]
    html = response.content.decode()
    assert 'name="ticket"' in html and "Ticket reference" in html
    assert 'placeholder="YYYY-MM-DD HH:MM"' in html and "UTC" in html


@pytest.mark.django_db
def test_outsider_gets_404_for_missing_or_inactive_entitlements(
    verified_client, outsider, prod_deploy
) -> None:
    client = verified_client(outsider)
    assert client.get(form_url(prod_deploy)).status_code == 200  # the catalog is open to all
    assert client.get("/catalog/999999/request/").status_code == 404
    prod_deploy.is_active = False
    prod_deploy.save()
    assert client.get(form_url(prod_deploy)).status_code == 404
    assert submit(client, prod_deploy).status_code == 404
    assert not AccessRequest.objects.exists()


@pytest.mark.django_db
def test_submit_creates_the_request_audits_it_and_emails_the_approver(
    verified_client, requester, manager, prod_deploy, django_capture_on_commit_callbacks
) -> None:
    client = verified_client(requester)
    with django_capture_on_commit_callbacks(execute=True):
        response = submit(client, prod_deploy, duration=str(8 * 3600))
    req = AccessRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/requests/{req.pk}/"
    assert req.requester == requester and req.beneficiary == requester
    assert req.state == RequestState.PENDING and req.kind == RequestKind.NEW
    assert req.duration == timedelta(hours=8) and req.requested_start is None
    event = AuditEvent.objects.get(action="request.submitted")
    assert event.actor_id == requester.pk and event.target_id == str(req.pk)
    assert event.data["duration_seconds"] == 8 * 3600
    [email] = [m for m in mail.outbox if manager.email in m.to]
    assert "Approval needed" in email.subject
    assert "/approvals/" in email.body
    page = client.get(response["Location"])
    assert "was sent" in page.content.decode()


@pytest.mark.django_db
def test_start_time_is_read_as_utc(verified_client, requester, prod_deploy) -> None:
    start = (now() + timedelta(days=2)).replace(second=0, microsecond=0)
    response = submit(
        verified_client(requester), prod_deploy, requested_start=start.strftime("%Y-%m-%dT%H:%M")
    )
    assert response.status_code == 302
    assert AccessRequest.objects.get().requested_start == start


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"justification": "too short"}, "at least 20 characters"),
        ({"justification": "   "}, "Say why you need this access"),
        ({"ticket": ""}, "needs a ticket reference"),
        ({"duration": str(37 * 3600)}, "The longest this access can be granted for is 1 day 12"),
        ({"duration": str(30 * 86400)}, "The longest this access can be granted for is 1 day 12"),
        ({"duration": "1800"}, "Choose one of the durations listed"),
        ({"duration": "forever"}, "Choose one of the durations listed"),
        ({"requested_start": "yesterday"}, "Enter the start as YYYY-MM-DD HH:MM, 24-hour, UTC"),
        ({"requested_start": "2001-01-01T10:00"}, "This time has passed"),
        ({"requested_start": "2999-01-01 10:00"}, "Choose a start within the next 30 days"),
    ],
)
def test_bad_input_is_refused_with_a_message_and_nothing_saved(
    verified_client, requester, dev_logs, fields, message
) -> None:
    data = {"justification": REASON, "duration": HOUR, "ticket": "CHG-1", **fields}
    response = verified_client(requester).post(form_url(dev_logs), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not AccessRequest.objects.exists()
    assert not AuditEvent.objects.filter(action="request.submitted").exists()


@pytest.mark.django_db
def test_forged_beneficiary_is_refused(
    verified_client, manager, requester, outsider, prod_deploy
) -> None:
    # The manager may choose between themself and their report, never an outsider.
    client = verified_client(manager)
    page = client.get(form_url(prod_deploy))
    assert 'name="beneficiary"' in page.content.decode()
    response = submit(client, prod_deploy, beneficiary=str(outsider.pk))
    assert response.status_code == 200
    assert "Choose someone from the list" in response.content.decode()
    assert not AccessRequest.objects.exists()


@pytest.mark.django_db
def test_forged_beneficiary_is_ignored_when_there_is_nothing_to_choose(
    verified_client, requester, outsider, prod_deploy
) -> None:
    response = submit(verified_client(requester), prod_deploy, beneficiary=str(outsider.pk))
    assert response.status_code == 302
    assert AccessRequest.objects.get().beneficiary == requester
    assert not AccessRequest.objects.filter(beneficiary=outsider).exists()


@pytest.mark.django_db
def test_forged_state_expiry_and_approver_are_ignored(
    verified_client, requester, manager, prod_deploy
) -> None:
    response = submit(
        verified_client(requester),
        prod_deploy,
        state="active",
        expires_at="2099-01-01T00:00",
        approver=str(requester.pk),
        current_stage="2",
        kind="break_glass",
        requester=str(manager.pk),
    )
    assert response.status_code == 302
    req = AccessRequest.objects.get()
    assert req.state == RequestState.PENDING and req.current_stage == 1
    assert req.kind == RequestKind.NEW and req.requester == requester
    assert req.grant is None and not Grant.objects.exists()
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_manager_requests_for_a_report_and_the_preview_follows_the_choice(
    verified_client, manager, requester, owner, security_admin, prod_deploy
) -> None:
    client = verified_client(manager)
    html = client.get(form_url(prod_deploy)).content.decode()
    assert "Myself (Mina Manager)" in html and "People who report to you" in html
    # For the report, the manager (who asks) can't approve: stage 1 falls back to security.
    response = client.get(form_url(prod_deploy) + f"?for={requester.pk}")
    preview = response.context["preview"]
    assert preview[0]["fallback"] and preview[0]["people"] == [security_admin]
    assert "Fallback" in response.content.decode()
    # The no-JavaScript "Update approvers" button re-renders and keeps what was typed.
    response = client.post(
        form_url(prod_deploy),
        {"beneficiary": str(requester.pk), "preview": "1", "justification": "half a sen"},
    )
    assert response.status_code == 200 and response.context["beneficiary"] == requester
    assert "half a sen" in response.content.decode()
    assert not AccessRequest.objects.exists()
    response = submit(client, prod_deploy, beneficiary=str(requester.pk))
    assert response.status_code == 302
    req = AccessRequest.objects.get()
    assert req.requester == manager and req.beneficiary == requester
    assert AuditEvent.objects.get(action="request.submitted").data["on_behalf"] is True


@pytest.mark.django_db
def test_owner_of_a_service_account_may_request_for_it(
    verified_client, owner, manager, security_admin, prod_deploy
) -> None:
    robot = UserFactory(display_name="deploy-bot", kind=User.Kind.SERVICE)
    robot.owners.add(manager)
    html = verified_client(manager).get(form_url(prod_deploy)).content.decode()
    assert "Service accounts you own" in html and "deploy-bot" in html
    # A service account has no manager: the security admins take that stage.
    preview = verified_client(manager).get(form_url(prod_deploy) + f"?for={robot.pk}")
    assert preview.context["preview"][0]["people"] == [security_admin]
    response = submit(verified_client(manager), prod_deploy, beneficiary=str(robot.pk))
    assert response.status_code == 302
    assert AccessRequest.objects.get().beneficiary == robot


@pytest.mark.django_db
def test_a_stage_nobody_can_decide_blocks_up_front(verified_client, manager, prod_deploy) -> None:
    robot = UserFactory(display_name="deploy-bot", kind=User.Kind.SERVICE)
    robot.owners.add(manager)
    client = verified_client(manager)
    response = client.get(form_url(prod_deploy) + f"?for={robot.pk}")
    assert response.context["blocked"]
    assert "Nobody can approve this request" in response.content.decode()
    response = submit(client, prod_deploy, beneficiary=str(robot.pk))
    assert response.status_code == 200
    assert "Nobody can approve stage 1" in response.content.decode()
    assert not AccessRequest.objects.exists()


@pytest.mark.django_db
def test_held_access_makes_it_an_extension(
    verified_client, requester, manager, owner, prod_deploy
) -> None:
    held_by(requester, prod_deploy)
    grant = Grant.objects.get()
    client = verified_client(requester)
    response = client.get(form_url(prod_deploy))
    html = response.content.decode()
    assert "This will be an extension request" in html
    assert grant.expires_at.strftime("%Y-%m-%d %H:%M") + " UTC" in html
    assert 'name="requested_start"' not in html
    assert "Submit extension request" in html
    catalog = client.get("/catalog/").content.decode()
    assert "held until" in catalog and f"/catalog/{prod_deploy.pk}/request/" in catalog
    assert ">Extend<" in catalog
    response = submit(client, prod_deploy)
    assert response.status_code == 302
    ext = AccessRequest.objects.get(state=RequestState.PENDING)
    assert ext.kind == RequestKind.EXTENSION and ext.grant == grant
    assert "extension request" in client.get(response["Location"]).content.decode()


@pytest.mark.django_db
def test_separation_of_duties_blocks_up_front(
    verified_client, requester, manager, owner, prod_deploy
) -> None:
    held_by(requester, prod_deploy)
    other = EntitlementFactory(
        system=prod_deploy.system, environment=prod_deploy.environment, name="Release approver"
    )
    ConflictRule.objects.create(
        first=prod_deploy, second=other, reason="Deployers may not approve releases"
    )
    client = verified_client(requester)
    response = client.get(form_url(other))
    html = response.content.decode()
    assert response.context["blocked"]
    assert "Blocked by separation of duties" in html
    assert "Deployers may not approve releases" in html
    assert 'class="button button--primary" disabled' in html
    response = submit(client, other)
    assert response.status_code == 200
    assert "Separation of duties" in response.content.decode()
    assert not AccessRequest.objects.filter(entitlement=other).exists()


@pytest.mark.django_db
def test_second_pending_request_is_refused_and_linked(
    verified_client, requester, prod_deploy
) -> None:
    client = verified_client(requester)
    assert submit(client, prod_deploy).status_code == 302
    first = AccessRequest.objects.get()
    response = client.get(form_url(prod_deploy))
    assert f'href="/requests/{first.pk}/"' in response.content.decode()
    response = submit(client, prod_deploy)
    assert response.status_code == 200
    assert "already has a pending request" in response.content.decode()
    assert AccessRequest.objects.count() == 1


# --- My requests ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_my_requests_lists_mine_with_progress_and_filters(
    verified_client, requester, manager, owner, prod_deploy, dev_logs
) -> None:
    pending = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    request_approve(actor=manager, request_id=pending.pk, mfa=FRESH)
    denied = request_submit(
        actor=requester,
        entitlement=dev_logs,
        justification=REASON,
        duration=timedelta(hours=1),
        ticket="CHG-9",
    )
    request_deny(actor=owner, request_id=denied.pk, comment="Use staging")
    client = verified_client(requester)
    response = client.get("/requests/")
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r.pk for r, _ in rows] == [denied.pk, pending.pk]  # newest first
    progress = dict((r.pk, p) for r, p in rows)[pending.pk]
    assert (progress.done, progress.total) == (1, 2)
    assert [s.status for s in progress.stages] == ["done", "current"]
    assert [s.status for s in dict((r.pk, p) for r, p in rows)[denied.pk].stages] == ["denied"]
    html = response.content.decode()
    assert "1 of 2 stages" in html and "progress__stage--current" in html
    assert f'action="/requests/{pending.pk}/withdraw/"' in html
    assert f'action="/requests/{denied.pk}/withdraw/"' not in html
    open_rows = client.get("/requests/?state=open").context["rows"]
    assert [r.pk for r, _ in open_rows] == [pending.pk]
    closed_rows = client.get("/requests/?state=closed").context["rows"]
    assert [r.pk for r, _ in closed_rows] == [denied.pk]
    assert [r.pk for r, _ in client.get("/requests/?state=bogus").context["rows"]] == [
        denied.pk,
        pending.pk,
    ]


@pytest.mark.django_db
def test_my_requests_shows_requests_made_for_me(
    verified_client, requester, manager, security_admin, prod_deploy
) -> None:
    request_submit(
        actor=manager,
        beneficiary=requester,
        entitlement=prod_deploy,
        justification=REASON,
        duration=timedelta(hours=1),
    )
    html = verified_client(requester).get("/requests/").content.decode()
    assert "asked by Mina Manager" in html
    html = verified_client(manager).get("/requests/").content.decode()
    assert "Dev Requester" in html


@pytest.mark.django_db
def test_outsider_sees_an_empty_list(verified_client, requester, outsider, prod_deploy) -> None:
    request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    response = verified_client(outsider).get("/requests/")
    assert response.status_code == 200
    assert list(response.context["rows"]) == []
    html = response.content.decode()
    assert "You haven't requested any access yet" in html and 'href="/catalog/"' in html


def _bulk_requests(user: User, count: int) -> None:
    """``count`` requests of every kind and state for ``user``, each with one approval: table
    rows only, as the page reads them (the services are exercised by the other tests)."""
    decider = UserFactory()
    env = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    entitlements = [EntitlementFactory(environment=env) for _ in range(4)]
    stages = [
        {"position": 1, "rule": "manager", "rule_label": "Manager", "quorum": 1, "step_up": True},
        {"position": 2, "rule": "system_owner", "rule_label": "Owner", "quorum": 1, "step_up": 1},
    ]
    states = [s for s in RequestState.values if s != RequestState.PENDING]
    clock = now()
    rows = [
        AccessRequest(
            # Some made for the user by their manager, some break-glass uses already reviewed.
            requester=decider if i % 5 == 0 else user,
            beneficiary=user,
            reviewed_by=decider if i % 11 == 0 else None,
            reviewed_at=clock if i % 11 == 0 else None,
            entitlement=entitlements[i % 4],
            justification=REASON,
            duration=timedelta(hours=1),
            # One pending per entitlement at most (a database constraint).
            state=RequestState.PENDING if i < 4 else states[i % len(states)],
            kind=(
                RequestKind.BREAK_GLASS
                if i % 11 == 0
                else RequestKind.EXTENSION
                if i % 7 == 0
                else RequestKind.NEW
            ),
            stages=stages,
            current_stage=2,
            created_at=clock - timedelta(minutes=i),
        )
        for i in range(count)
    ]
    created = AccessRequest.objects.bulk_create(rows)
    Approval.objects.bulk_create(
        Approval(request=r, stage=1, approver=decider, decision=Decision.APPROVE) for r in created
    )


@pytest.mark.django_db
def test_my_requests_query_count_does_not_grow_with_rows(
    verified_client, requester, django_assert_max_num_queries
) -> None:
    client = verified_client(requester)
    _bulk_requests(requester, 10)
    client.get("/requests/")  # warm the session and caches
    with django_assert_max_num_queries(20) as small:
        response = client.get("/requests/")
    assert len(response.context["rows"]) == 10
    _bulk_requests(requester, 990)
    with django_assert_max_num_queries(len(small.captured_queries)) as large:
        response = client.get("/requests/")
    assert len(response.context["rows"]) == 25
    assert response.context["page"].paginator.count == 1000
    print(
        f"\nmy_requests queries: {len(small.captured_queries)} with 10 rows, "
        f"{len(large.captured_queries)} with 1,000 rows"
    )


# --- One request, and withdrawing it ----------------------------------------------------------


@pytest.mark.django_db
def test_detail_shows_the_whole_story(
    verified_client, requester, manager, owner, prod_deploy
) -> None:
    req = held_by(requester, prod_deploy)
    response = verified_client(requester).get(f"/requests/{req.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert REASON in html
    assert "Mina Manager" in html and "Fine by me" in html and "Omar Owner" in html
    assert "2 of 2 stages approved" in html
    grant = Grant.objects.get(request=req)
    assert grant.expires_at.strftime("%Y-%m-%d %H:%M") + " UTC" in html
    assert "verified 10 seconds before" in html
    assert not response.context["may_withdraw"] and not response.context["may_decide"]
    assert "Withdraw request" not in html


@pytest.mark.django_db
def test_detail_of_a_denied_request_shows_why_and_offers_to_ask_again(
    verified_client, requester, manager, prod_deploy
) -> None:
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    request_deny(actor=manager, request_id=req.pk, comment="Use staging first")
    response = verified_client(requester).get(f"/requests/{req.pk}/")
    html = response.content.decode()
    assert "Denied by Mina Manager" in html and "Use staging first" in html
    assert [s.status for s in response.context["progress"].stages] == ["denied", "unreached"]
    assert f'href="/catalog/{prod_deploy.pk}/request/"' in html and "Request again" in html
    assert not response.context["may_withdraw"]


@pytest.mark.django_db
def test_detail_links_the_next_approver_to_their_inbox(
    verified_client, requester, manager, owner, prod_deploy
) -> None:
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    # The system owner may open it, but it is not theirs to decide yet.
    response = verified_client(owner).get(f"/requests/{req.pk}/")
    assert response.status_code == 200 and not response.context["may_decide"]
    request_approve(actor=manager, request_id=req.pk, mfa=FRESH)
    response = verified_client(owner).get(f"/requests/{req.pk}/")
    assert response.context["may_decide"]
    assert f'href="/approvals/#request-{req.pk}"' in response.content.decode()
    assert "Decide in your approvals inbox" in response.content.decode()
    assert "Withdraw request" not in response.content.decode()


@pytest.mark.django_db
def test_another_persons_request_is_a_404(verified_client, requester, outsider, prod_deploy):
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    client = verified_client(outsider)
    assert client.get(f"/requests/{req.pk}/").status_code == 404
    assert client.get("/requests/999999/").status_code == 404
    assert client.post(f"/requests/{req.pk}/withdraw/").status_code == 404
    assert client.post("/requests/999999/withdraw/").status_code == 404
    assert AccessRequest.objects.get().state == RequestState.PENDING
    assert not AuditEvent.objects.filter(action="request.withdrawn").exists()


@pytest.mark.django_db
def test_withdraw_ends_a_pending_request_and_is_audited(
    verified_client, requester, prod_deploy
) -> None:
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    client = verified_client(requester)
    page = client.get(f"/requests/{req.pk}/")
    assert page.context["may_withdraw"] and "Withdraw request" in page.content.decode()
    assert client.get(f"/requests/{req.pk}/withdraw/").status_code == 405
    response = client.post(f"/requests/{req.pk}/withdraw/")
    assert response.status_code == 302 and response["Location"] == f"/requests/{req.pk}/"
    req.refresh_from_db()
    assert req.state == RequestState.WITHDRAWN
    event = AuditEvent.objects.get(action="request.withdrawn")
    assert event.actor_id == requester.pk and event.target_id == str(req.pk)
    # A second withdrawal changes nothing and says why.
    response = client.post(f"/requests/{req.pk}/withdraw/", follow=True)
    assert "Only a pending request can be withdrawn" in response.content.decode()
    assert AuditEvent.objects.filter(action="request.withdrawn").count() == 1


@pytest.mark.django_db
def test_withdraw_from_the_list_returns_to_the_list(
    verified_client, requester, prod_deploy
) -> None:
    req = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    client = verified_client(requester)
    response = client.post(f"/requests/{req.pk}/withdraw/", {"next": "/requests/?state=open"})
    assert response["Location"] == "/requests/?state=open"
    other = request_submit(
        actor=requester, entitlement=prod_deploy, justification=REASON, duration=timedelta(hours=1)
    )
    response = client.post(f"/requests/{other.pk}/withdraw/", {"next": "https://evil.example/"})
    assert response["Location"] == f"/requests/{other.pk}/"


@pytest.mark.django_db
def test_open_means_waiting_and_granted_requests_have_their_own_tab(
    verified_client, requester
) -> None:
    from tests.accessreq.workflow_helpers import direct_grant, make_entitlement
    from tests.accessreq.workflow_helpers import submit as submit_request

    waiting = submit_request(requester, make_entitlement())
    granted = direct_grant(requester, make_entitlement(tier="medium")).request
    client = verified_client(requester)
    tabs = {t["key"]: t["count"] for t in client.get("/requests/").context["tabs"]}
    assert tabs == {"all": 2, "open": 1, "granted": 1, "closed": 0}
    assert [r.pk for r, _ in client.get("/requests/?state=open").context["rows"]] == [waiting.pk]
    assert [r.pk for r, _ in client.get("/requests/?state=granted").context["rows"]] == [granted.pk]
    body = client.get("/requests/").content.decode()
    assert "just now" in body and "0\xa0minutes ago" not in body and "0 minutes" not in body


@pytest.mark.django_db
def test_a_past_start_is_reported_at_the_start_field_with_the_other_errors(
    verified_client, requester, dev_logs
) -> None:
    data = {"justification": "too short", "duration": HOUR, "requested_start": "2001-01-01 10:00"}
    html = verified_client(requester).post(form_url(dev_logs), data).content.decode()
    # Both problems at once, each at its field; no banner above the form about the start.
    assert "at least 20 characters" in html
    field = html[html.index('<label for="id_requested_start"') - 60 :]
    field = field[: field.index("</ul>")]
    assert "field--error" in field and "This time has passed" in field
    assert 'class="form-errors"' not in html
    assert 'placeholder="YYYY-MM-DD HH:MM"' in html
    assert 'type="datetime-local"' not in html


@pytest.mark.django_db
def test_the_start_is_written_yyyy_mm_dd_hh_mm(verified_client, requester, prod_deploy) -> None:
    start = (now() + timedelta(days=2)).replace(second=0, microsecond=0)
    response = submit(
        verified_client(requester), prod_deploy, requested_start=start.strftime("%Y-%m-%d %H:%M")
    )
    assert response.status_code == 302
    assert AccessRequest.objects.get().requested_start == start
