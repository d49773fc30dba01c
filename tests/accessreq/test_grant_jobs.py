"""The beat jobs: expiry, expiry warnings, time-outs, escalation and overdue break-glass
reviews. Each does its work once, and a second run changes nothing. Time is moved by rewriting
timestamps in the database, since the jobs read the database clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from accessreq import tasks
from accessreq.errors import WorkflowError
from accessreq.models import (
    AccessRequest,
    AssignmentReason,
    Grant,
    GrantState,
    RiskTier,
    StageAssignment,
)
from accessreq.selectors import inbox
from accessreq.services.breakglass import break_glass_overdue_alerts, break_glass_take
from accessreq.services.common import now
from accessreq.services.grants import expiry_warnings_send, grants_expire_due
from accessreq.services.requests import requests_escalate, requests_time_out
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.roles import ON_CALL
from tests.accessreq.workflow_helpers import (
    FRESH,
    REASON,
    actions,
    age_grant,
    age_request,
    approve,
    events,
    grant_of,
    lapse,
    make_entitlement,
    people,
    submit,
)
from tests.factories import UserFactory

SITE = "https://gatehouse.example.org"


@pytest.fixture(autouse=True)
def _site_url(settings):
    settings.SITE_URL = SITE + "/"


@pytest.fixture
def deploy(owner):
    return make_entitlement(tier=RiskTier.LOW, owners=[owner], max_duration=timedelta(days=3))


def _snapshot():
    return (
        list(Grant.objects.order_by("pk").values()),
        list(AccessRequest.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
        len(mail.outbox),
    )


# --- Expiry -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_expiry_marks_due_grants_expired_once(owner, deploy, django_capture_on_commit_callbacks):
    holders = people(3, "Holder")
    grants = [grant_of(approve(owner, submit(person, deploy))) for person in holders]
    lapse(grants[0])
    lapse(grants[1], ago=timedelta(hours=5))

    with django_capture_on_commit_callbacks(execute=True):
        assert grants_expire_due() == 2
    expired = events("grant.expired")
    assert sorted(e.target_id for e in expired) == sorted(str(g.request_id) for g in grants[:2])
    for grant in grants[:2]:
        grant.refresh_from_db()
        assert grant.state == GrantState.EXPIRED and grant.ended_at is not None
        assert grant.deprovisioned_at is not None  # no connector: nothing to wait for
        assert AccessRequest.objects.get(pk=grant.request_id).state == RequestState.EXPIRED
    assert Grant.objects.get(pk=grants[2].pk).state == GrantState.ACTIVE

    before = _snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        assert grants_expire_due() == 0
        assert tasks.grants_expire.apply().get() == 0  # the beat task runs the same job
    assert _snapshot() == before


# --- Expiry warnings ----------------------------------------------------------------------


def _warnings():
    return [m for m in mail.outbox if m.subject.startswith("[Gatehouse] Access ends in")]


@pytest.mark.django_db
def test_expiry_warnings_24h_and_1h_once_each_with_the_extend_link(
    requester, owner, deploy, django_capture_on_commit_callbacks
):
    grant = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(days=2))))
    link = f"{SITE}/access/{grant.pk}/extend/"

    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_warnings_send() == 0  # two days left
    age_grant(grant, timedelta(hours=25))  # 23 hours left
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_warnings_send() == 1
        assert expiry_warnings_send() == 0
    [first] = _warnings()
    assert first.to == [requester.email]
    assert first.subject.startswith("[Gatehouse] Access ends in 22 hours 59 minutes")
    assert link in first.body and "one click" in first.body

    age_grant(grant, timedelta(hours=22, minutes=30))  # 30 minutes left
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_warnings_send() == 1
        assert expiry_warnings_send() == 0
    assert len(_warnings()) == 2
    assert "ends in 29 minutes" in _warnings()[1].subject and link in _warnings()[1].body

    # An extension moves the end: the warnings for the new end time are due again.
    approve(owner, submit(requester, deploy, duration=timedelta(hours=4)))
    grant.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_warnings_send() == 1  # 4.5 hours left: the 24-hour warning
    age_grant(grant, timedelta(hours=3, minutes=50))
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_warnings_send() == 1  # then the 1-hour one
        assert expiry_warnings_send() == 0
    assert len(_warnings()) == 4


@pytest.mark.django_db
def test_a_short_grant_is_not_warned_the_moment_it_starts(
    requester, owner, deploy, django_capture_on_commit_callbacks
):
    """A grant of a day or less gets no 24-hour warning, and one of an hour or less no
    1-hour warning: the holder has just been told how long it lasts."""
    one_hour = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(hours=1))))
    [other] = people(1, "Holder")
    two_hours = grant_of(approve(owner, submit(other, deploy, duration=timedelta(hours=2))))
    assert one_hour.beneficiary != two_hours.beneficiary
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_warnings_send() == 0
    age_grant(two_hours, timedelta(hours=1, minutes=10))
    with django_capture_on_commit_callbacks(execute=True):
        assert expiry_warnings_send() == 1
    assert [m.to for m in _warnings()] == [[other.email]]


# --- Requests that wait too long ----------------------------------------------------------


@pytest.mark.django_db
def test_pending_requests_time_out_after_the_configured_days(
    requester, owner, deploy, settings, django_capture_on_commit_callbacks
):
    settings.REQUEST_TIMEOUT_DAYS = 3
    settings.REQUEST_ESCALATE_AFTER_HOURS = 96
    old = submit(requester, deploy)
    assert old.timeout_at == old.created_at + timedelta(days=3)
    young = submit(people(1, "Holder")[0], deploy)
    age_request(old, timedelta(days=3, minutes=1))
    age_request(young, timedelta(days=2, hours=23))

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_time_out() == 1
    old.refresh_from_db()
    assert old.state == RequestState.TIMED_OUT and old.decided_at is not None
    assert actions(old) == ["request.submitted", "request.timed_out"]
    assert AccessRequest.objects.get(pk=young.pk).state == RequestState.PENDING
    [email] = mail.outbox
    assert email.to == [requester.email] and email.subject == f"[Gatehouse] Timed out: {deploy}"
    assert "within 3 days" in email.body and f"{SITE}/requests/{old.pk}/" in email.body
    with pytest.raises(WorkflowError, match="no longer pending: it is timed out"):
        approve(owner, old)

    before = _snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_time_out() == 0
        assert tasks.requests_sweep.apply().get() == {
            "timed_out": 0,
            "escalated": 0,
            "break_glass_overdue": 0,
        }
    assert _snapshot() == before


@pytest.mark.django_db
def test_a_stage_waiting_too_long_is_escalated_to_security_admins_once(
    requester, manager, owner, security_admin, settings, django_capture_on_commit_callbacks
):
    settings.REQUEST_ESCALATE_AFTER_HOURS = 48
    prod = make_entitlement(tier=RiskTier.HIGH, system_owners=[owner])
    req = submit(requester, prod)
    age_request(req, timedelta(hours=47))
    assert requests_escalate() == 0
    assert list(inbox(user=security_admin, at=now())) == []

    age_request(req, timedelta(hours=2))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_escalate() == 1
    assignment = StageAssignment.objects.get(request=req, principal=security_admin)
    assert assignment.stage == 1 and assignment.reason == AssignmentReason.ESCALATION
    assert list(inbox(user=security_admin, at=now())) == [req]
    [event] = events("request.escalated")
    assert event.data["added"] == [str(security_admin)] and event.data["waited_hours"] == 48
    escalated = sorted(m.to[0] for m in mail.outbox if "Escalated" in m.subject)
    assert escalated == sorted([manager.email, security_admin.email])

    before = _snapshot()
    with django_capture_on_commit_callbacks(execute=True):
        assert requests_escalate() == 0
    assert _snapshot() == before

    # The security admin decides the stage; the next one starts its own clock.
    approve(security_admin, req)
    req.refresh_from_db()
    assert req.current_stage == 2 and req.escalated_at is None
    assert requests_escalate() == 0


# --- Break-glass reviews that are overdue -------------------------------------------------


@pytest.mark.django_db
def test_an_overdue_break_glass_review_raises_one_alert(
    owner, security_admin, django_capture_on_commit_callbacks
):
    ent = make_entitlement(tier=RiskTier.HIGH, system_owners=[owner], emergency_capable=True)
    on_call = [UserFactory(display_name=f"On Call {n}", groups=[ON_CALL]) for n in range(2)]
    uses = [
        break_glass_take(
            actor=person,
            entitlement=ent,
            reason=REASON,
            incident=f"INC-{n}",
            duration=timedelta(hours=1),
            mfa=FRESH,
        )
        for n, person in enumerate(on_call)
    ]
    assert break_glass_overdue_alerts() == 0
    for use in uses:
        age_request(use, timedelta(hours=25))
    from accessreq.services.breakglass import break_glass_review

    break_glass_review(
        actor=owner, request_id=uses[1].pk, comment="Checked the incident log", mfa=FRESH
    )

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert break_glass_overdue_alerts() == 1
        assert break_glass_overdue_alerts() == 0
    [alert] = events("alert.break_glass.review_overdue")
    assert alert.target_id == str(uses[0].pk) and alert.data["incident"] == "INC-0"
    assert [m.to for m in mail.outbox] == [[security_admin.email]]
    assert "Overdue break-glass review" in mail.outbox[0].subject
