"""Break-glass: who may take emergency access and on what terms, what it creates, who is told
at once, and the review after the fact."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail

from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import (
    AccessRequest,
    Grant,
    GrantState,
    RequestKind,
    RiskTier,
    StageAssignment,
)
from accessreq.selectors import break_glass_to_review, holds_scope
from accessreq.services.breakglass import break_glass_review, break_glass_take
from accessreq.services.common import now
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.roles import ON_CALL, SECURITY_ADMIN
from tests.accessreq.workflow_helpers import (
    FRESH,
    REASON,
    STALE,
    actions,
    approve,
    close_to,
    grant_of,
    lapse,
    make_entitlement,
    submit,
)
from tests.factories import UserFactory


@pytest.fixture
def on_call(manager):
    return UserFactory(
        display_name="Oscar On-call", email="oscar@example.com", manager=manager, groups=[ON_CALL]
    )


@pytest.fixture
def emergency(owner):
    return make_entitlement(
        tier=RiskTier.HIGH,
        system_owners=[owner],
        emergency_capable=True,
        max_duration=timedelta(hours=8),
    )


def _take(actor, entitlement, **overrides):
    kwargs = {
        "reason": REASON,
        "incident": "INC-1234",
        "duration": timedelta(hours=1),
        "mfa": FRESH,
    }
    kwargs.update(overrides)
    return break_glass_take(actor=actor, entitlement=entitlement, **kwargs)


def _holds(user, entitlement) -> bool:
    return holds_scope(
        user=user,
        scope="deploy",
        system=entitlement.system.slug,
        environment=entitlement.environment.slug,
    )


@pytest.mark.django_db
def test_only_on_call_people_and_only_emergency_capable_access(requester, owner, on_call):
    ordinary = make_entitlement(tier=RiskTier.HIGH, system_owners=[owner])
    emergency = make_entitlement(tier=RiskTier.HIGH, system_owners=[owner], emergency_capable=True)
    with pytest.raises(NotAllowed, match="Only people on call"):
        _take(requester, emergency)
    with pytest.raises(NotAllowed, match="no break-glass access"):
        _take(on_call, ordinary)
    assert not AccessRequest.objects.exists() and not Grant.objects.exists()


@pytest.mark.django_db
def test_break_glass_needs_fresh_mfa_a_reason_an_incident_and_a_short_duration(
    on_call, emergency, settings
):
    with pytest.raises(StepUpRequired):
        _take(on_call, emergency, mfa=STALE)
    with pytest.raises(StepUpRequired):
        _take(on_call, emergency, mfa=None)  # no MFA context at all
    with pytest.raises(WorkflowError, match="at least 20 characters"):
        _take(on_call, emergency, reason="prod is down")
    with pytest.raises(WorkflowError, match="incident reference"):
        _take(on_call, emergency, incident="  ")
    with pytest.raises(WorkflowError, match="at most 2 hours"):
        _take(on_call, emergency, duration=timedelta(hours=2, minutes=1))
    settings.BREAK_GLASS_MAX_MINUTES = 30
    with pytest.raises(WorkflowError, match="at most 30 minutes"):
        _take(on_call, emergency, duration=timedelta(minutes=45))
    assert not AccessRequest.objects.exists() and not Grant.objects.exists()
    assert _take(on_call, emergency, duration=timedelta(minutes=30)).state == RequestState.ACTIVE


@pytest.mark.django_db
def test_break_glass_grants_at_once_and_tells_every_reviewer_immediately(
    on_call, manager, owner, security_admin, emergency, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        use = _take(on_call, emergency, duration=timedelta(hours=2))
    use.refresh_from_db()
    grant = grant_of(use)
    assert use.kind == RequestKind.BREAK_GLASS and use.is_break_glass
    assert use.state == RequestState.ACTIVE and use.incident == "INC-1234"
    assert grant.state == GrantState.ACTIVE and grant.break_glass
    assert grant.expires_at - grant.starts_at == timedelta(hours=2)
    assert _holds(on_call, emergency)
    assert use.review_due_at == use.created_at + timedelta(hours=24)

    [event] = AuditEvent.objects.filter(action="request.break_glass")
    assert event.actor_id == on_call.pk
    assert event.data["incident"] == "INC-1234" and event.data["reason"] == REASON
    assert event.data["mfa_age_seconds"] == 10

    # Policy people (manager, system owner) and security admins review; never the user.
    reviewers = {a.principal for a in StageAssignment.objects.filter(request=use, stage=0)}
    assert reviewers == {manager, owner, security_admin}
    told = sorted(m.to[0] for m in mail.outbox if m.subject.startswith("[Gatehouse] BREAK-GLASS"))
    assert told == sorted([manager.email, owner.email, security_admin.email])
    assert "INC-1234" in mail.outbox[0].body
    assert on_call.email not in told


@pytest.mark.django_db
def test_an_on_call_security_admin_is_not_their_own_reviewer(security_admin, owner, emergency):
    other_admin = UserFactory(display_name="Second Admin", groups=[SECURITY_ADMIN])
    admin_on_call = UserFactory(display_name="Admin On-call", groups=[SECURITY_ADMIN, ON_CALL])
    use = _take(admin_on_call, emergency)
    reviewers = {a.principal for a in StageAssignment.objects.filter(request=use, stage=0)}
    assert reviewers == {owner, security_admin, other_admin}
    assert list(break_glass_to_review(user=admin_on_call, at=now())) == []
    with pytest.raises(NotAllowed):
        break_glass_review(actor=admin_on_call, request_id=use.pk, comment="All fine")


@pytest.mark.django_db
def test_the_user_cannot_review_their_own_break_glass(on_call, outsider, emergency):
    use = _take(on_call, emergency)
    for person in (on_call, outsider):
        with pytest.raises(NotAllowed):
            break_glass_review(actor=person, request_id=use.pk, comment="Looks fine to me")
    assert AccessRequest.objects.get(pk=use.pk).reviewed_at is None


@pytest.mark.django_db
def test_a_review_confirms_the_use_once(on_call, owner, manager, emergency):
    use = _take(on_call, emergency)
    assert list(break_glass_to_review(user=owner, at=now())) == [use]
    with pytest.raises(WorkflowError, match="Write what you found"):
        break_glass_review(actor=owner, request_id=use.pk, comment=" ", mfa=FRESH)
    with pytest.raises(StepUpRequired):
        break_glass_review(actor=owner, request_id=use.pk, comment="Matches INC-1234")
    assert AccessRequest.objects.get(pk=use.pk).reviewed_at is None
    break_glass_review(actor=owner, request_id=use.pk, comment="Matches INC-1234", mfa=FRESH)
    use.refresh_from_db()
    assert use.reviewed_by == owner and use.review_comment == "Matches INC-1234"
    assert list(break_glass_to_review(user=owner, at=now())) == []
    assert list(break_glass_to_review(user=manager, at=now())) == []
    with pytest.raises(WorkflowError, match="Omar Owner already reviewed"):
        break_glass_review(actor=manager, request_id=use.pk, comment="Me too", mfa=FRESH)
    assert _holds(on_call, emergency)  # confirmed, so the access runs its course
    event = AuditEvent.objects.get(action="request.break_glass_reviewed")
    assert event.data["revoke"] is False and event.actor_id == owner.pk


@pytest.mark.django_db
def test_a_review_that_revokes_ends_the_access(on_call, security_admin, emergency):
    use = _take(on_call, emergency)
    break_glass_review(
        actor=security_admin,
        request_id=use.pk,
        comment="No incident on record",
        revoke=True,
        mfa=FRESH,
    )
    use.refresh_from_db()
    grant = Grant.objects.get(pk=use.grant_id)
    assert grant.state == GrantState.REVOKED and grant.revoked_by == security_admin
    assert grant.revoke_reason == "Break-glass review: No incident on record"
    assert use.state == RequestState.REVOKED
    assert not _holds(on_call, emergency)
    assert actions(use) == [
        "request.break_glass",
        "request.break_glass_reviewed",
        "grant.revoked",
    ]


@pytest.mark.django_db
def test_break_glass_while_holding_the_access_is_refused_but_not_after_it_lapsed(
    on_call, manager, owner, emergency
):
    grant = grant_of(approve(owner, approve(manager, submit(on_call, emergency))))
    with pytest.raises(WorkflowError, match="You already hold this access until"):
        _take(on_call, emergency)
    lapse(grant)  # ended by its time; the expiry job has not run yet
    use = _take(on_call, emergency)
    assert use.state == RequestState.ACTIVE and _holds(on_call, emergency)
    assert Grant.objects.get(pk=grant.pk).state == GrantState.EXPIRED


@pytest.mark.django_db
def test_a_request_approved_while_break_glass_is_held_extends_that_access(
    on_call, manager, owner, emergency
):
    """Someone asks for access, takes break-glass in an incident while the request waits, and
    the approvers then approve: the approval extends the access they hold."""
    req = submit(on_call, emergency, duration=timedelta(hours=4))
    use = _take(on_call, emergency, duration=timedelta(hours=1))
    taken = grant_of(use)

    approve(owner, approve(manager, req))

    req.refresh_from_db()
    taken.refresh_from_db()
    assert Grant.objects.count() == 1
    assert req.state == RequestState.ACTIVE and req.grant_id == taken.pk
    assert close_to(taken.expires_at, use.created_at + timedelta(hours=5))
    assert actions(req)[-2:] == ["request.approved", "grant.extended"]
    assert _holds(on_call, emergency)
