"""The one transition table: every other edge is refused, and the services refuse illegal moves
with a message a person can act on, changing nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accessreq.errors import WorkflowError
from accessreq.models import AccessRequest, Grant, GrantState, RiskTier
from accessreq.selectors import holds_scope
from accessreq.services.common import move, now
from accessreq.services.grants import grant_revoke, grants_expire_due
from accessreq.services.requests import request_deny, request_withdraw
from accessreq.states import (
    START,
    TRANSITIONS,
    IllegalTransition,
    RequestState,
    check_transition,
)
from audit.actions import describe
from audit.models import AuditEvent
from tests.accessreq.workflow_helpers import (
    actions,
    approve,
    grant_of,
    lapse,
    make_entitlement,
    submit,
)

STATES = [START, *RequestState.values]


def _label(state: str) -> str:
    return RequestState(state).label.lower() if state else "new"


def test_every_edge_missing_from_the_table_is_refused_naming_both_states() -> None:
    allowed = {(t.source, t.target) for t in TRANSITIONS}
    refused = 0
    for source in STATES:
        for target in STATES:
            if (source, target) in allowed:
                continue
            with pytest.raises(IllegalTransition) as caught:
                check_transition(source, target)
            message = str(caught.value)
            assert _label(source) in message and _label(target) in message, (source, target)
            refused += 1
    assert refused == len(STATES) ** 2 - len(allowed) == 70


def test_each_edge_of_the_table_is_allowed_and_records_a_registered_action() -> None:
    for transition in TRANSITIONS:
        assert check_transition(transition.source, transition.target) == transition
        describe(transition.action)  # raises for an unregistered audit code
    # The lifecycle the issue names, and nothing leaves a final state.
    edges = {(t.source, t.target) for t in TRANSITIONS}
    assert (RequestState.PENDING, RequestState.APPROVED) in edges
    assert (RequestState.ACTIVE, RequestState.EXPIRED) in edges
    finals = {"expired", "revoked", "denied", "withdrawn", "timed_out"}
    assert not [e for e in edges if e[0] in finals]


def test_an_illegal_transition_is_a_workflow_error_views_can_show() -> None:
    # Views catch WorkflowError and show its message; an unforeseen illegal move must not 500.
    with pytest.raises(WorkflowError, match="A denied request cannot become approved"):
        check_transition(RequestState.DENIED, RequestState.APPROVED)


@pytest.fixture
def prod(owner):
    return make_entitlement(tier=RiskTier.HIGH, system_owners=[owner])


@pytest.fixture
def low(owner):
    return make_entitlement(tier=RiskTier.LOW, owners=[owner])


@pytest.mark.django_db
def test_move_refuses_an_edge_outside_the_table_and_saves_nothing(requester, low) -> None:
    req = submit(requester, low)
    events_before = AuditEvent.objects.count()
    with pytest.raises(IllegalTransition, match="A pending request cannot become active"):
        move(req, RequestState.ACTIVE, actor=requester)
    assert AccessRequest.objects.get(pk=req.pk).state == RequestState.PENDING
    assert AuditEvent.objects.count() == events_before


@pytest.mark.django_db
def test_approving_a_denied_request_is_refused(requester, manager, owner, prod) -> None:
    req = submit(requester, prod)
    request_deny(actor=manager, request_id=req.pk, comment="Use staging first")
    with pytest.raises(WorkflowError, match="no longer pending: it is denied"):
        approve(manager, req)
    req.refresh_from_db()
    assert req.state == RequestState.DENIED
    assert req.grant_id is None and not Grant.objects.exists()
    assert actions(req) == ["request.submitted", "request.denied"]


@pytest.mark.django_db
def test_withdrawing_an_active_request_is_refused(requester, owner, low) -> None:
    req = approve(owner, submit(requester, low))
    assert req.state == RequestState.ACTIVE
    with pytest.raises(
        WorkflowError, match="Only a pending request can be withdrawn; this one is active"
    ):
        request_withdraw(actor=requester, request_id=req.pk)
    req.refresh_from_db()
    assert req.state == RequestState.ACTIVE
    assert holds_scope(user=requester, scope="deploy", system=low.system.slug, environment="low")


@pytest.mark.django_db
def test_withdrawing_twice_and_denying_a_withdrawn_request_are_refused(requester, owner, low):
    req = submit(requester, low)
    request_withdraw(actor=requester, request_id=req.pk)
    with pytest.raises(WorkflowError, match="this one is withdrawn"):
        request_withdraw(actor=requester, request_id=req.pk)
    with pytest.raises(WorkflowError, match="no longer pending: it is withdrawn"):
        request_deny(actor=owner, request_id=req.pk, comment="too late")
    assert actions(req) == ["request.submitted", "request.withdrawn"]


@pytest.mark.django_db
def test_revoking_an_expired_grant_is_refused(requester, owner, low) -> None:
    req = approve(owner, submit(requester, low))
    grant = grant_of(req)
    lapse(grant)
    grants_expire_due()
    with pytest.raises(WorkflowError, match=r"already ended \(expired\)"):
        grant_revoke(actor=owner, grant_id=grant.pk, reason="cleanup")
    grant.refresh_from_db()
    assert grant.state == GrantState.EXPIRED and grant.revoked_at is None
    assert AuditEvent.objects.filter(action="grant.revoked").count() == 0


@pytest.mark.django_db
def test_revoking_a_lapsed_grant_says_it_expired(requester, owner, low) -> None:
    """The expiry job has not run yet: the access has ended all the same, and the message says
    so instead of calling it active."""
    grant = grant_of(approve(owner, submit(requester, low)))
    lapse(grant)
    with pytest.raises(WorkflowError, match=r"already ended \(expired\)"):
        grant_revoke(actor=owner, grant_id=grant.pk, reason="cleanup")
    assert Grant.objects.get(pk=grant.pk).revoked_at is None


@pytest.mark.django_db
def test_revoking_a_scheduled_grant_never_claims_access_started(requester, owner, low) -> None:
    """The table's approved -> revoked edge: access revoked before its start never 'started'."""
    req = approve(owner, submit(requester, low, requested_start=now() + timedelta(hours=2)))
    assert req.state == RequestState.APPROVED
    grant_revoke(actor=owner, grant_id=grant_of(req).pk, reason="Plans changed")
    req.refresh_from_db()
    assert req.state == RequestState.REVOKED
    assert actions(req) == [
        "request.submitted",
        "request.approval_given",
        "request.approved",
        "grant.revoked",
    ]
    revoked = AuditEvent.objects.get(action="grant.revoked")
    assert revoked.data["from"] == RequestState.APPROVED
