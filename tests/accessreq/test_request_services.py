"""Submitting and approving through the services: extensions, when the duration starts,
scheduled starts, the limits a requester meets, and the one access check (holds_scope)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accessreq.errors import WorkflowError
from accessreq.models import AccessRequest, Approval, Grant, GrantState, RequestKind, RiskTier
from accessreq.selectors import holds_scope, scope_grant_id, scopes_held
from accessreq.services.common import now
from accessreq.services.grants import grant_revoke, grants_activate_due, grants_expire_due
from accessreq.services.requests import request_submit, request_withdraw
from accessreq.states import RequestState
from audit.models import AuditEvent
from tests.accessreq.workflow_helpers import (
    REASON,
    actions,
    age_request,
    approve,
    close_to,
    grant_of,
    lapse,
    make_entitlement,
    set_grant_window,
    submit,
)
from tests.factories import ScopeFactory, SystemFactory, UserFactory

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def deploy(owner):
    """A low-tier entitlement (one approval: its owner or the manager), at most one day."""
    return make_entitlement(tier=RiskTier.LOW, owners=[owner], max_duration=DAY)


def _holds(user, entitlement) -> bool:
    return holds_scope(
        user=user,
        scope="deploy",
        system=entitlement.system.slug,
        environment=entitlement.environment.slug,
    )


def _last_approval_time(access_request):
    return Approval.objects.filter(request=access_request).latest("decided_at").decided_at


# --- Extensions ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_requesting_held_access_is_an_extension_of_the_same_grant(requester, owner, deploy):
    grant = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(hours=1))))
    before = grant.expires_at

    ext = submit(requester, deploy, duration=timedelta(hours=4))
    assert ext.kind == RequestKind.EXTENSION and ext.grant_id == grant.pk
    submitted = AuditEvent.objects.get(action="request.submitted", target_id=str(ext.pk))
    assert submitted.data["kind"] == "extension" and submitted.data["extends_grant"] == grant.pk
    approve(owner, ext)

    ext.refresh_from_db()
    grant.refresh_from_db()
    assert Grant.objects.count() == 1
    assert ext.state == RequestState.ACTIVE and ext.grant_id == grant.pk
    assert close_to(grant.expires_at, before + timedelta(hours=4))
    assert actions(ext)[-2:] == ["request.approved", "grant.extended"]
    extended = AuditEvent.objects.get(action="grant.extended")
    assert extended.data["previous_expires_at"] == before.isoformat()


@pytest.mark.django_db
def test_an_extension_is_capped_at_the_longest_grant_from_now(requester, owner, deploy):
    grant = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(hours=20))))
    ext = approve(owner, submit(requester, deploy, duration=timedelta(hours=20)))
    grant.refresh_from_db()
    # 20 h left + 20 h would be 40 h; the entitlement allows one day from the approval.
    assert close_to(grant.expires_at, _last_approval_time(ext) + DAY)


@pytest.mark.django_db
def test_an_extension_never_shortens_the_grant(requester, owner, deploy):
    grant = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(hours=20))))
    before = grant.expires_at
    # The owner lowers the limit to 2 hours while the 20-hour grant runs.
    deploy.max_duration = timedelta(hours=2)
    deploy.save()
    approve(owner, submit(requester, deploy, duration=timedelta(hours=1)))
    grant.refresh_from_db()
    assert grant.expires_at == before


@pytest.mark.django_db
def test_an_extension_whose_grant_expired_meanwhile_makes_a_fresh_grant(requester, owner, deploy):
    old = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(hours=1))))
    ext = submit(requester, deploy, duration=timedelta(hours=2))
    lapse(old)
    grants_expire_due()

    approve(owner, ext)
    ext.refresh_from_db()
    assert ext.grant_id != old.pk and ext.state == RequestState.ACTIVE
    fresh = grant_of(ext)
    assert fresh.state == GrantState.ACTIVE and fresh.request_id == ext.pk
    assert close_to(fresh.expires_at, _last_approval_time(ext) + timedelta(hours=2))
    assert Grant.objects.get(pk=old.pk).state == GrantState.EXPIRED
    assert _holds(requester, deploy)


@pytest.mark.django_db
def test_an_extension_whose_grant_lapsed_before_the_expiry_job_ran_makes_a_fresh_grant(
    requester, owner, deploy
):
    old = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(hours=1))))
    ext = submit(requester, deploy, duration=timedelta(hours=2))
    lapse(old)  # ended by its time; the expiry job has not marked it yet

    approve(owner, ext)
    ext.refresh_from_db()
    old.refresh_from_db()
    assert ext.state == RequestState.ACTIVE and ext.grant_id != old.pk
    assert old.state == GrantState.EXPIRED
    assert AccessRequest.objects.get(pk=old.request_id).state == RequestState.EXPIRED
    assert AuditEvent.objects.filter(action="grant.expired").count() == 1
    assert _holds(requester, deploy)
    assert grants_expire_due() == 0


@pytest.mark.django_db
def test_an_extension_whose_grant_was_revoked_meanwhile_makes_a_fresh_grant(
    requester, owner, deploy
):
    old = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(hours=1))))
    ext = submit(requester, deploy, duration=timedelta(hours=2))
    grant_revoke(actor=owner, grant_id=old.pk, reason="Rotation")
    assert not _holds(requester, deploy)
    approve(owner, ext)
    ext.refresh_from_db()
    assert ext.grant_id != old.pk and grant_of(ext).state == GrantState.ACTIVE
    assert _holds(requester, deploy)


@pytest.mark.django_db
def test_a_new_request_after_the_grant_lapsed_is_approved_before_the_expiry_job(
    requester, owner, deploy
):
    old = grant_of(approve(owner, submit(requester, deploy, duration=timedelta(hours=1))))
    lapse(old)
    req = submit(requester, deploy, duration=timedelta(hours=1))
    assert req.kind == RequestKind.NEW
    approve(owner, req)
    req.refresh_from_db()
    assert req.state == RequestState.ACTIVE and grant_of(req).state == GrantState.ACTIVE
    assert Grant.objects.get(pk=old.pk).state == GrantState.EXPIRED
    assert _holds(requester, deploy)


# --- Duration and start -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_duration_starts_at_approval_not_at_submission(requester, owner, deploy):
    req = submit(requester, deploy, duration=timedelta(hours=8))
    age_request(req, timedelta(hours=30))  # it waited 30 hours for a decision
    approve(owner, req)
    req.refresh_from_db()
    approved_at = _last_approval_time(req)
    assert req.created_at < approved_at - timedelta(hours=29)
    assert grant_of(req).starts_at == approved_at
    assert grant_of(req).expires_at == approved_at + timedelta(hours=8)
    assert _holds(requester, deploy)


@pytest.mark.django_db
def test_a_future_start_schedules_the_grant_until_the_activation_job(requester, owner, deploy):
    start = now() + timedelta(hours=3)
    req = approve(
        owner, submit(requester, deploy, duration=timedelta(hours=2), requested_start=start)
    )
    req.refresh_from_db()
    grant = grant_of(req)
    assert req.state == RequestState.APPROVED and grant.state == GrantState.SCHEDULED
    assert grant.starts_at == start and grant.expires_at == start + timedelta(hours=2)
    assert not _holds(requester, deploy)
    assert grants_activate_due() == 0
    assert "grant.activated" not in actions(req)

    # The start time comes: access is held at once, whether or not the job has run...
    set_grant_window(
        grant, starts_at=now() - timedelta(minutes=1), expires_at=now() + timedelta(hours=2)
    )
    assert _holds(requester, deploy)
    # ...and the job brings the states up to date, once.
    assert grants_activate_due() == 1
    assert grants_activate_due() == 0
    req.refresh_from_db()
    grant.refresh_from_db()
    assert grant.state == GrantState.ACTIVE and req.state == RequestState.ACTIVE
    assert actions(req).count("grant.activated") == 1
    assert grant.provisioned_at is not None  # no connector: nothing to wait for


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        (-timedelta(hours=1), "The start time is in the past"),
        (timedelta(days=31), "within the next 30 days"),
    ],
)
@pytest.mark.django_db
def test_a_start_in_the_past_or_too_far_ahead_is_refused(requester, deploy, offset, message):
    with pytest.raises(WorkflowError, match=message):
        submit(requester, deploy, requested_start=now() + offset)
    assert not AccessRequest.objects.exists()


@pytest.mark.django_db
def test_a_duration_above_the_longest_grant_is_refused(requester, deploy):
    with pytest.raises(WorkflowError, match="The longest this access can be granted for is 1 day"):
        submit(requester, deploy, duration=DAY + timedelta(minutes=1))
    deploy.environment.max_duration = timedelta(hours=4)
    deploy.environment.save()
    with pytest.raises(WorkflowError, match="is 4 hours"):
        submit(requester, deploy, duration=timedelta(hours=5))
    assert not AccessRequest.objects.exists()


@pytest.mark.django_db
def test_submit_refuses_bad_input_with_messages(requester, manager, outsider, deploy):
    with pytest.raises(WorkflowError, match="at least 20 characters"):
        request_submit(
            actor=requester, entitlement=deploy, justification=" " + REASON[:19] + " ", duration=DAY
        )
    with pytest.raises(WorkflowError, match="people who report to you"):
        submit(outsider, deploy, beneficiary=requester)
    deploy.ticket_required = True
    deploy.save()
    with pytest.raises(WorkflowError, match="needs a ticket reference"):
        submit(requester, deploy)
    assert not AccessRequest.objects.exists()
    # A manager asks on behalf of a report.
    req = submit(manager, deploy, beneficiary=requester, ticket="CHG-42")
    assert req.requester == manager and req.beneficiary == requester and req.ticket == "CHG-42"


@pytest.mark.django_db
def test_a_withdrawn_request_never_grants(requester, owner, deploy):
    req = submit(requester, deploy)
    request_withdraw(actor=requester, request_id=req.pk)
    with pytest.raises(WorkflowError, match="no longer pending: it is withdrawn"):
        approve(owner, req)
    assert not Grant.objects.exists() and not _holds(requester, deploy)


# --- holds_scope: the one access check, on the database clock ----------------------------


@pytest.mark.django_db
def test_holds_scope_refuses_a_grant_past_its_end_before_the_expiry_job_ran(
    requester, owner, deploy, monkeypatch
):
    from django.utils import timezone

    grant = grant_of(approve(owner, submit(requester, deploy)))
    assert _holds(requester, deploy)
    lapse(grant, ago=timedelta(seconds=30))
    assert Grant.objects.get(pk=grant.pk).state == GrantState.ACTIVE  # job not run
    # The decision is the database's clock, not the web server's: a server clock running an
    # hour slow changes nothing.
    slow = timezone.now() - timedelta(hours=1)
    monkeypatch.setattr(timezone, "now", lambda: slow)
    assert not _holds(requester, deploy)


@pytest.mark.django_db
def test_holds_scope_refuses_revoked_grants_inactive_people_and_other_scopes(
    requester, owner, deploy
):
    other = UserFactory()
    grant = grant_of(approve(owner, submit(requester, deploy)))
    assert _holds(requester, deploy)
    assert not _holds(other, deploy)
    assert not holds_scope(
        user=requester, scope="rollback", system=deploy.system.slug, environment="low"
    )
    assert not holds_scope(
        user=requester, scope="deploy", system=deploy.system.slug, environment="prod"
    )

    requester.is_active = False
    requester.save()
    assert not _holds(requester, deploy)
    requester.is_active = True
    requester.save()
    assert _holds(requester, deploy)

    grant_revoke(actor=owner, grant_id=grant.pk, reason="Left the team")
    assert not _holds(requester, deploy)


@pytest.mark.django_db
def test_holds_scope_answers_exactly_what_scopes_held_lists(requester, owner):
    """holds_scope is hand-written SQL for speed; scopes_held is the ORM form of the same rule.
    Across grants that are live, not started, ended, revoked, of another person and of an
    entitlement with two scopes, the two agree on every scope, system and environment."""
    other = UserFactory()
    rollback = ScopeFactory(slug="rollback")
    payments, billing = SystemFactory(slug="payments"), SystemFactory(slug="billing")
    low = make_entitlement(tier=RiskTier.LOW, owners=[owner], system=payments)
    low.scopes.add(rollback)
    medium = make_entitlement(tier=RiskTier.MEDIUM, owners=[owner], system=payments)
    billing_low = make_entitlement(tier=RiskTier.LOW, owners=[owner], system=billing)
    live = grant_of(approve(owner, submit(requester, low)))
    ended = grant_of(approve(owner, submit(requester, medium)))
    lapse(ended)
    later = grant_of(approve(owner, submit(requester, billing_low)))
    set_grant_window(later, starts_at=now() + DAY, expires_at=now() + 2 * DAY)
    grant_of(approve(owner, submit(other, medium)))

    def agree() -> set[str]:
        held = set(scopes_held(user=requester))
        for scope in ("deploy", "rollback"):
            for system in ("payments", "billing"):
                for environment in ("low", "medium", "prod"):
                    triple = f"{scope}:{system}:{environment}"
                    where = {"scope": scope, "system": system, "environment": environment}
                    answer = holds_scope(user=requester, **where)
                    assert answer == (triple in held), triple
                    # The authorization API's form of the same statement names the grant.
                    grant_id = scope_grant_id(user=requester, **where)
                    assert (grant_id is not None) == answer, triple
                    if grant_id is not None:
                        grant = Grant.objects.get(pk=grant_id)
                        assert grant.beneficiary_id == requester.pk
                        assert grant.entitlement.system.slug == system
                        assert grant.entitlement.environment.slug == environment
                        assert grant.entitlement.scopes.filter(slug=scope).exists()
        return held

    assert agree() == {"deploy:payments:low", "rollback:payments:low"}
    set_grant_window(later, starts_at=now() - DAY, expires_at=now() + DAY)
    assert agree() == {"deploy:payments:low", "rollback:payments:low", "deploy:billing:low"}
    grant_revoke(actor=owner, grant_id=live.pk, reason="Left the team")
    assert agree() == {"deploy:billing:low"}


@pytest.mark.django_db
def test_scope_grant_id_refuses_what_holds_scope_refuses_and_prefers_the_grant_ending_last(
    requester, owner, deploy
):
    where = {"scope": "deploy", "system": deploy.system.slug, "environment": "low"}
    first = grant_of(approve(owner, submit(requester, deploy)))
    # A second entitlement carrying the same scope, on the same system and environment.
    wider = make_entitlement(tier=RiskTier.LOW, owners=[owner], system=deploy.system, name="all")
    second = grant_of(approve(owner, submit(requester, wider)))
    set_grant_window(second, starts_at=now() - DAY, expires_at=first.expires_at + DAY)
    assert scope_grant_id(user=requester, **where) == second.pk
    set_grant_window(second, starts_at=now() - DAY, expires_at=first.expires_at - HOUR)
    assert scope_grant_id(user=requester, **where) == first.pk

    requester.is_active = False
    requester.save()
    assert scope_grant_id(user=requester, **where) is None
    assert not holds_scope(user=requester, **where)
    requester.is_active = True
    requester.save()
    grant_revoke(actor=owner, grant_id=first.pk, reason="Left the team")
    assert scope_grant_id(user=requester, **where) == second.pk
    lapse(second)
    assert scope_grant_id(user=requester, **where) is None
    assert not holds_scope(user=requester, **where)
    assert scope_grant_id(user=None, **where) is None
