"""The approver inbox: context per request, approve/deny with inline step-up, bulk approve,
break-glass reviews listed, and a query count that does not grow with the number of requests."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accessreq.inbox import inbox_rows
from accessreq.models import (
    AccessRequest,
    Approval,
    ConflictRule,
    Grant,
    GrantState,
    RequestKind,
    RiskTier,
    StageAssignment,
)
from accessreq.policy import stages_for
from accessreq.selectors import inbox
from accessreq.services.common import MfaContext, now
from accessreq.services.requests import request_approve, request_deny, request_submit
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.models import TOTPDevice, User
from tests.conftest import current_code
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

REASON = "Deploy the hotfix for the payments outage"
FRESH = MfaContext("totp", 10)


@pytest.fixture
def payments(owner):
    system = SystemFactory(name="payments", slug="payments")
    system.owners.add(owner)
    return system


@pytest.fixture
def dev_deploy(payments):
    """Low tier: one stage, the entitlement owner or the manager, no step-up."""
    env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    return EntitlementFactory(system=payments, environment=env, name="Dev deployer")


@pytest.fixture
def staging_deploy(payments):
    env = EnvironmentFactory(name="staging", slug="staging", risk_tier=RiskTier.MEDIUM)
    return EntitlementFactory(system=payments, environment=env, name="Staging deployer")


@pytest.fixture
def prod_deploy(payments):
    """High tier: the manager, then the system owner (Omar), both with step-up."""
    env = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    return EntitlementFactory(system=payments, environment=env, name="Prod deployer")


def submit(actor: User, entitlement, **kw) -> AccessRequest:
    kw.setdefault("duration", timedelta(hours=4))
    return request_submit(actor=actor, entitlement=entitlement, justification=REASON, **kw)


def stale(client) -> None:
    """Make the client's second-factor verification older than the step-up window."""
    session = client.session
    session["mfa_verified_at"] = time.time() - 3600
    session.save()


def events(action: str, target: AccessRequest) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(action=action, target_id=str(target.pk)).order_by("sequence")
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


# --- Who may open what ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/approvals/"),
        ("post", "/approvals/1/decide/"),
        ("post", "/approvals/bulk/"),
        ("get", "/approvals/delegation/"),
    ],
)
def test_anonymous_is_sent_to_sign_in(client, method, path) -> None:
    response = getattr(client, method)(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_outsider_sees_an_empty_inbox_and_gets_404_on_a_request(
    verified_client, requester, outsider, dev_deploy
) -> None:
    req = submit(requester, dev_deploy)
    client = verified_client(outsider)
    response = client.get("/approvals/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Nothing is waiting for you" in html
    assert 'href="/approvals/delegation/"' in html
    assert REASON not in html
    for action in ("approve", "deny"):
        response = client.post(
            f"/approvals/{req.pk}/decide/", {"action": action, "comment": "Looks fine to me"}
        )
        assert response.status_code == 404
    # An invalid form (deny without a comment) on someone else's request is a 404 too.
    assert client.post(f"/approvals/{req.pk}/decide/", {"action": "deny"}).status_code == 404
    assert not Approval.objects.exists()
    assert AccessRequest.objects.get().state == RequestState.PENDING


@pytest.mark.django_db
def test_approver_not_in_the_chain_gets_404(verified_client, requester, owner, prod_deploy) -> None:
    """Stage 1 of a high-tier request is the manager's: the system owner can't act on it yet."""
    req = submit(requester, prod_deploy)
    client = verified_client(owner)
    assert REASON not in client.get("/approvals/").content.decode()
    response = client.post(
        f"/approvals/{req.pk}/decide/", {"action": "approve", "comment": "Jumping the queue"}
    )
    assert response.status_code == 404
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_requester_cannot_decide_their_own_request(verified_client, requester, dev_deploy) -> None:
    req = submit(requester, dev_deploy)
    response = verified_client(requester).post(
        f"/approvals/{req.pk}/decide/", {"action": "approve"}
    )
    assert response.status_code == 404
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_forged_action_is_refused(verified_client, requester, manager, dev_deploy) -> None:
    req = submit(requester, dev_deploy)
    response = verified_client(manager).post(f"/approvals/{req.pk}/decide/", {"action": "escalate"})
    assert response.status_code == 400
    assert not Approval.objects.exists()


# --- The inbox and its context ----------------------------------------------------------------


@pytest.mark.django_db
def test_inbox_shows_each_request_with_its_context(
    verified_client, requester, manager, owner, dev_deploy, staging_deploy, prod_deploy
) -> None:
    # Context: a live grant on the same system, a denied earlier request, and a conflict rule
    # added after the requests were submitted (so one of them now conflicts).
    past = submit(requester, staging_deploy)
    request_approve(actor=manager, request_id=past.pk, mfa=FRESH)
    denied = submit(requester, dev_deploy)
    request_deny(actor=manager, request_id=denied.pk, comment="Use staging")
    old = submit(requester, dev_deploy, ticket="PAY-42")
    high = submit(requester, prod_deploy)
    ConflictRule.objects.create(
        first=prod_deploy, second=staging_deploy, reason="deployers may not hold both stages"
    )
    AccessRequest.objects.filter(pk=old.pk).update(created_at=now() - timedelta(hours=3))

    client = verified_client(manager)
    response = client.get("/approvals/")
    assert response.status_code == 200
    rows = [item.row for item in response.context["rows"]]
    assert [row.request.pk for row in rows] == [old.pk, high.pk]  # oldest first
    low_row, high_row = rows
    assert [g.entitlement_id for g in low_row.current_access] == [staging_deploy.pk]
    assert [(p.pk, p.state) for p in low_row.history] == [
        (denied.pk, RequestState.DENIED),
        (past.pk, RequestState.ACTIVE),
    ]
    assert low_row.sod_warnings == []
    assert high_row.sod_warnings == [
        f"{requester} holds {staging_deploy}, which conflicts: deployers may not hold both stages"
    ]
    assert high_row.needs_step_up and not high_row.bulk_eligible
    assert low_row.bulk_eligible and not low_row.needs_step_up

    html = response.content.decode()
    assert "How to approve access" in html and "/docs/runbooks/approving-access/" in html
    assert "PAY-42" in html
    assert "1 of 2 — Beneficiary&#x27;s manager" in html
    assert "deployers may not hold both stages" in html
    assert "Denied" in html
    assert "3\xa0hours ago" in html or "3 hours ago" in html
    # Fresh session: no code field yet; only the low-tier row can be ticked for bulk approval.
    assert 'name="code"' not in html
    assert f'value="{old.pk}" form="bulk-approve"' in html
    assert f'value="{high.pk}" form="bulk-approve"' not in html


@pytest.mark.django_db
def test_stale_session_shows_the_code_field_on_step_up_rows_only(
    verified_client, requester, manager, dev_deploy, prod_deploy
) -> None:
    low = submit(requester, dev_deploy)
    high = submit(requester, prod_deploy)
    client = verified_client(manager)
    stale(client)
    items = {item.row.request.pk: item for item in client.get("/approvals/").context["rows"]}
    assert items[high.pk].show_code and not items[low.pk].show_code
    html = client.get("/approvals/").content.decode()
    assert html.count('name="code"') == 1
    assert f'id="approve-{high.pk}-code"' in html
    assert "Code needed" in html


@pytest.mark.django_db
def test_on_behalf_request_names_the_beneficiary(
    verified_client, manager, owner, dev_deploy
) -> None:
    """A manager asks for their report; the entitlement owner decides and sees both names."""
    report = UserFactory(display_name="Rita Report", manager=manager)
    dev_deploy.owners.add(owner)
    submit(manager, dev_deploy, beneficiary=report)
    html = verified_client(owner).get("/approvals/").content.decode()
    assert "on behalf of <strong>Rita Report</strong>" in html


# --- Approve and deny -------------------------------------------------------------------------


@pytest.mark.django_db
def test_approve_records_the_decision_with_its_mfa_age(
    verified_client, requester, manager, dev_deploy
) -> None:
    req = submit(requester, dev_deploy)
    response = verified_client(manager).post(
        f"/approvals/{req.pk}/decide/", {"action": "approve", "comment": "Fine for dev"}
    )
    assert response.status_code == 302 and response["Location"] == "/approvals/"
    req.refresh_from_db()
    assert req.state == RequestState.ACTIVE
    (event,) = events("request.approval_given", req)
    assert event.actor_id == manager.pk
    assert event.data["comment"] == "Fine for dev"
    assert event.data["mfa_method"] == "totp"
    assert event.data["mfa_age_seconds"] is not None and event.data["mfa_age_seconds"] < 60
    assert event.data["on_behalf_of"] is None


@pytest.mark.django_db
def test_success_message_after_redirect(verified_client, requester, manager, dev_deploy) -> None:
    req = submit(requester, dev_deploy)
    client = verified_client(manager)
    response = client.post(
        f"/approvals/{req.pk}/decide/", {"action": "approve", "comment": ""}, follow=True
    )
    assert any("access is granted" in m for m in messages_of(response))
    assert "Nothing is waiting for you" in response.content.decode()


@pytest.mark.django_db
def test_deny_without_a_comment_is_refused(verified_client, requester, manager, dev_deploy) -> None:
    req = submit(requester, dev_deploy)
    response = verified_client(manager).post(
        f"/approvals/{req.pk}/decide/", {"action": "deny", "comment": "   "}
    )
    assert response.status_code == 400
    assert "Say why you deny the request" in response.content.decode()
    # The deny panel is open again, showing the error.
    assert '<details class="ap-decide ap-decide--deny" open>' in response.content.decode()
    req.refresh_from_db()
    assert req.state == RequestState.PENDING
    assert not events("request.denied", req)


@pytest.mark.django_db
def test_deny_with_a_comment_ends_the_request(
    verified_client, requester, manager, dev_deploy
) -> None:
    req = submit(requester, dev_deploy)
    response = verified_client(manager).post(
        f"/approvals/{req.pk}/decide/", {"action": "deny", "comment": "Use staging first"}
    )
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.state == RequestState.DENIED
    (event,) = events("request.denied", req)
    assert event.actor_id == manager.pk and event.data["comment"] == "Use staging first"


@pytest.mark.django_db
def test_high_tier_with_a_stale_session_and_no_code_is_refused(
    verified_client, requester, manager, prod_deploy
) -> None:
    req = submit(requester, prod_deploy)
    client = verified_client(manager)
    stale(client)
    response = client.post(
        f"/approvals/{req.pk}/decide/", {"action": "approve", "comment": "Checked the ticket"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "needs a fresh second factor" in html
    assert "Checked the ticket" in html  # the typed comment is kept
    assert f'id="approve-{req.pk}-code"' in html
    assert not Approval.objects.exists()
    assert not events("request.approval_given", req)
    req.refresh_from_db()
    assert req.current_stage == 1 and req.state == RequestState.PENDING


@pytest.mark.django_db
def test_high_tier_with_a_wrong_code_changes_nothing(
    verified_client, requester, manager, prod_deploy
) -> None:
    req = submit(requester, prod_deploy)
    client = verified_client(manager)
    stale(client)
    device = TOTPDevice.objects.get(user=manager)
    wrong = f"{(int(current_code(device)) + 1) % 1_000_000:06d}"
    response = client.post(
        f"/approvals/{req.pk}/decide/",
        {"action": "approve", "comment": "Checked the ticket", "code": wrong},
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "That code is not right" in html and "Checked the ticket" in html
    assert f'value="{wrong}"' not in html  # a code is never echoed back
    assert not Approval.objects.exists()
    assert AuditEvent.objects.filter(action="auth.mfa.failed", actor_id=manager.pk).exists()


@pytest.mark.django_db
def test_high_tier_with_a_correct_code_is_approved_in_one_post(
    verified_client, requester, manager, prod_deploy
) -> None:
    req = submit(requester, prod_deploy)
    client = verified_client(manager)
    stale(client)
    code = current_code(TOTPDevice.objects.get(user=manager))
    response = client.post(
        f"/approvals/{req.pk}/decide/",
        {"action": "approve", "comment": "Checked the ticket", "code": code},
    )
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.current_stage == 2  # stage 1 done: now the system owner's
    (event,) = events("request.approval_given", req)
    assert event.actor_id == manager.pk
    assert event.data["mfa_age_seconds"] is not None and event.data["mfa_age_seconds"] < 60
    assert AuditEvent.objects.filter(action="auth.mfa.verified", actor_id=manager.pk).exists()


@pytest.mark.django_db
def test_a_request_decided_meanwhile_gives_a_message_not_an_error_page(
    verified_client, requester, manager, owner, dev_deploy
) -> None:
    dev_deploy.owners.add(owner)
    req = submit(requester, dev_deploy)
    request_approve(actor=owner, request_id=req.pk, mfa=FRESH)
    response = verified_client(manager).post(
        f"/approvals/{req.pk}/decide/", {"action": "approve"}, follow=True
    )
    assert response.status_code == 200
    assert any("no longer pending" in m for m in messages_of(response))
    assert Approval.objects.count() == 1


# --- Bulk approve -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_bulk_approves_low_and_medium_and_refuses_a_forged_high_tier_id(
    verified_client, requester, manager, dev_deploy, staging_deploy, prod_deploy
) -> None:
    low = submit(requester, dev_deploy)
    medium = submit(requester, staging_deploy)
    high = submit(requester, prod_deploy)
    client = verified_client(manager)
    response = client.post(
        "/approvals/bulk/",
        {"requests": [str(low.pk), str(medium.pk), str(high.pk)], "comment": "Routine"},
        follow=True,
    )
    assert response.status_code == 200
    shown = messages_of(response)
    assert "Approved 2 requests." in shown
    assert any(f"Request #{high.pk}" in m and "high tier" in m for m in shown)
    for req in (low, medium):
        req.refresh_from_db()
        assert req.state == RequestState.ACTIVE
        (event,) = events("request.approval_given", req)
        assert event.data["comment"] == "Routine"
    high.refresh_from_db()
    assert high.state == RequestState.PENDING and high.current_stage == 1
    assert not Approval.objects.filter(request=high).exists()


@pytest.mark.django_db
def test_bulk_refuses_ids_not_waiting_for_me(
    verified_client, requester, manager, outsider, dev_deploy
) -> None:
    req = submit(requester, dev_deploy)
    response = verified_client(outsider).post(
        "/approvals/bulk/", {"requests": [str(req.pk), "999999"]}, follow=True
    )
    shown = messages_of(response)
    assert any(f"Request #{req.pk} is not waiting for you" in m for m in shown)
    assert any("Request #999999 is not waiting for you" in m for m in shown)
    assert not any(m.startswith("Approved") for m in shown)
    assert not Approval.objects.exists()


@pytest.mark.django_db
def test_bulk_with_nothing_ticked_says_so(verified_client, manager) -> None:
    response = verified_client(manager).post("/approvals/bulk/", {}, follow=True)
    assert "Tick the requests you want to approve first." in messages_of(response)
    response = verified_client(manager).post(
        "/approvals/bulk/", {"requests": ["1; DROP"]}, follow=True
    )
    assert any("not a request" in m for m in messages_of(response))


# --- Break-glass uses listed for review -------------------------------------------------------


@pytest.mark.django_db
def test_break_glass_uses_to_review_are_listed_first(
    verified_client, requester, owner, prod_deploy
) -> None:
    from accessreq.services.breakglass import break_glass_take
    from portal.roles import ON_CALL
    from tests.factories import UserFactory as Users

    prod_deploy.emergency_capable = True
    prod_deploy.save()
    medic = Users(display_name="Nia Oncall", groups=[ON_CALL])
    use = break_glass_take(
        actor=medic,
        entitlement=prod_deploy,
        reason="Payments are failing for every customer",
        incident="INC-7",
        duration=timedelta(hours=1),
        mfa=FRESH,
    )
    AccessRequest.objects.filter(pk=use.pk).update(review_due_at=now() - timedelta(minutes=5))
    html = verified_client(owner).get("/approvals/").content.decode()
    assert "uses to review" in html
    assert "INC-7" in html and "Payments are failing for every customer" in html
    assert "Nia Oncall" in html and "Review overdue" in html
    assert "Revoke this access now" in html
    assert html.index("uses to review") < html.index("Waiting for you")


# --- Query count ------------------------------------------------------------------------------


def _fill_inbox(manager: User, count: int) -> None:
    """``count`` low-tier requests waiting for ``manager``, each beneficiary with a live grant on
    the same system, an earlier decided request and a conflict to warn about."""
    clock = now()
    env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    entitlements = []
    for _ in range(3):
        system = SystemFactory()
        entitlements.append(
            (
                EntitlementFactory(system=system, environment=env),
                EntitlementFactory(system=system, environment=env),
            )
        )
    for wanted, held in entitlements:
        ConflictRule.objects.create(first=wanted, second=held, reason="not both")
    people = User.objects.bulk_create(
        User(
            email=f"report{n}@example.com",
            display_name=f"Report {n:04d}",
            manager=manager,
            password="!",
        )
        for n in range(count)
    )
    earlier = AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=person,
            beneficiary=person,
            entitlement=entitlements[n % 3][1],
            justification=REASON,
            duration=timedelta(hours=8),
            state=RequestState.ACTIVE,
            stages=[],
            created_at=clock - timedelta(days=2),
            decided_at=clock - timedelta(days=1),
        )
        for n, person in enumerate(people)
    )
    Grant.objects.bulk_create(
        Grant(
            beneficiary=past.beneficiary,
            entitlement=past.entitlement,
            request=past,
            state=GrantState.ACTIVE,
            starts_at=clock - timedelta(hours=1),
            expires_at=clock + timedelta(hours=7),
        )
        for past in earlier
    )
    stages = stages_for(entitlements[0][0])
    waiting = AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=person,
            beneficiary=person,
            entitlement=entitlements[n % 3][0],
            kind=RequestKind.NEW,
            justification=REASON,
            duration=timedelta(hours=4),
            stages=stages,
            current_stage=1,
            stage_opened_at=clock,
            created_at=clock - timedelta(minutes=count - n),
            timeout_at=clock + timedelta(days=7),
        )
        for n, person in enumerate(people)
    )
    StageAssignment.objects.bulk_create(
        StageAssignment(request=r, stage=1, principal=manager) for r in waiting
    )


def _count_queries(client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/approvals/")
    assert response.status_code == 200
    return len(captured)


# The inbox page: session, user, OTP device, clock, the page count and rows, 9 for the rows'
# context, the break-glass reviews, the delegation notice, and the base layout's nav (clock,
# two badge counts, groups), and the deployments waiting (one query when there are none).
# 22 with 10 waiting requests and with 1,000.
INBOX_MAX_QUERIES = 22


@pytest.mark.django_db
@pytest.mark.parametrize("count", [10, 1000])
def test_inbox_query_count_does_not_grow_with_rows(
    verified_client, manager, count, django_assert_max_num_queries
) -> None:
    _fill_inbox(manager, count)
    client = verified_client(manager)
    with django_assert_max_num_queries(INBOX_MAX_QUERIES):
        response = client.get("/approvals/")
    rows = response.context["rows"]
    assert len(rows) == min(count, 25)
    assert response.context["page"].paginator.count == count
    first = rows[0].row
    assert first.current_access and first.history and first.sod_warnings
    print(f"\ninbox page with {count} waiting: {_count_queries(client)} queries")


@pytest.mark.django_db
@pytest.mark.parametrize("count", [10, 1000])
def test_row_context_for_every_request_is_a_fixed_number_of_queries(
    manager, count, django_assert_num_queries
) -> None:
    """The context builder itself, over all the rows at once (not just one page)."""
    _fill_inbox(manager, count)
    at = now()
    waiting = list(inbox(user=manager, at=at))
    with django_assert_num_queries(9):
        rows = inbox_rows(waiting, user=manager, at=at)
    assert len(rows) == count
    assert all(len(r.current_access) == 1 and len(r.history) == 1 for r in rows)
    assert all(len(r.sod_warnings) == 1 for r in rows)


@pytest.mark.django_db
def test_fresh_session_says_from_when_a_code_will_be_needed(
    verified_client, requester, manager, prod_deploy, settings
) -> None:
    from datetime import UTC, datetime

    submit(requester, prod_deploy)
    client = verified_client(manager)
    verified_at = client.session["mfa_verified_at"]
    until = datetime.fromtimestamp(verified_at + settings.MFA_STEP_UP_SECONDS, tz=UTC)
    html = client.get("/approvals/").content.decode()
    assert f"Code needed from {until:%H:%M} UTC" in html
    assert ">Code needed</span>" not in html  # no code will be asked yet
    assert 'name="code"' not in html
    stale(client)
    html = client.get("/approvals/").content.decode()
    assert ">Code needed</span>" in html and "Code needed from" not in html
