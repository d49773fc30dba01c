"""Races, for real: threads with their own database connections (PostgreSQL row locks and
advisory locks; on SQLite the IMMEDIATE write lock). Only legal outcomes, each effect once, and
no error a person would see other than a WorkflowError message."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from functools import partial

import pytest

from accessreq.errors import WorkflowError
from accessreq.models import (
    AccessRequest,
    Approval,
    ApproverRule,
    Grant,
    GrantState,
    RequestKind,
    RiskTier,
)
from accessreq.services.common import now
from accessreq.services.grants import grants_expire_due
from accessreq.services.requests import request_withdraw
from accessreq.states import RequestState
from audit.models import AuditEvent
from tests.accessreq.workflow_helpers import (
    REASON,
    Outcome,
    approve,
    events,
    make_entitlement,
    make_policy,
    people,
    run_together,
    submit,
)
from tests.factories import UserFactory


def _only_workflow_errors(outcomes: list[Outcome]) -> list[Outcome]:
    unexpected = [o.error for o in outcomes if o.error and not isinstance(o.error, WorkflowError)]
    assert not unexpected, unexpected
    return [o for o in outcomes if o.error is None]


@pytest.mark.parametrize("quorum", [1, 3])
@pytest.mark.django_db(transaction=True)
def test_twenty_approvers_at_once_complete_the_stage_once(requester, quorum):
    approvers = people(20, "Owner")
    policy = make_policy(f"Owners x{quorum}", (ApproverRule.ENTITLEMENT_OWNER, quorum, False))
    ent = make_entitlement(tier=RiskTier.MEDIUM, owners=approvers, policy=policy)
    req = submit(requester, ent)
    assert req.assignments.count() == 20

    outcomes = run_together([partial(approve, person, req) for person in approvers])

    accepted = _only_workflow_errors(outcomes)
    assert len(accepted) == quorum
    assert sum(1 for o in outcomes if o.error) == 20 - quorum
    req.refresh_from_db()
    assert req.state == RequestState.ACTIVE
    assert Grant.objects.filter(request=req).count() == 1
    assert Approval.objects.filter(request=req).count() == quorum
    given = events("request.approval_given")
    assert len(given) == quorum
    assert len({e.actor_id for e in given}) == quorum
    assert [e.data["approvals"] for e in given] == list(range(1, quorum + 1))
    assert [e.data["stage_complete"] for e in given].count(True) == 1
    assert len(events("request.approved")) == 1 and len(events("grant.activated")) == 1


@pytest.mark.django_db(transaction=True)
def test_approve_and_withdraw_interleaved_have_only_legal_outcomes(requester, owner):
    # (approve delay, withdraw delay): approve first, withdraw first, then truly together.
    rounds = [(0, 0.2), (0.2, 0), (0, 0.2), (0.2, 0), (0, 0), (0, 0)]
    seen = []
    for n, delays in enumerate(rounds):
        ent = make_entitlement(tier=RiskTier.LOW, owners=[owner], name=f"Round {n}")
        req = submit(requester, ent)
        approved, withdrawn = run_together(
            [
                partial(approve, owner, req),
                partial(request_withdraw, actor=requester, request_id=req.pk),
            ],
            delays=list(delays),
        )
        _only_workflow_errors([approved, withdrawn])
        req.refresh_from_db()
        grants = Grant.objects.filter(entitlement=ent)
        if req.state == RequestState.ACTIVE:
            assert approved.error is None and isinstance(withdrawn.error, WorkflowError)
            assert "Only a pending request can be withdrawn" in str(withdrawn.error)
            assert grants.count() == 1 and grants.get().state == GrantState.ACTIVE
        else:
            assert req.state == RequestState.WITHDRAWN
            assert withdrawn.error is None and isinstance(approved.error, WorkflowError)
            assert "no longer pending: it is withdrawn" in str(approved.error)
            assert not grants.exists() and not Approval.objects.filter(request=req).exists()
        seen.append(req.state)
    # The delayed side lost each forced round, so both orders really happened.
    assert seen[:4] == [
        RequestState.ACTIVE,
        RequestState.WITHDRAWN,
        RequestState.ACTIVE,
        RequestState.WITHDRAWN,
    ]


def _due_grants(count: int) -> list[Grant]:
    """``count`` active grants whose end has passed (the expiry job has not run), built in bulk:
    20 people x count/20 entitlements, each grant with its approved request."""
    holders = [UserFactory() for _ in range(20)]
    owner = UserFactory()
    entitlements = [make_entitlement(owners=[owner]) for _ in range(count // 20)]
    clock = now()
    pairs = [(h, e) for h in holders for e in entitlements]
    requests = AccessRequest.objects.bulk_create(
        AccessRequest(
            requester=h,
            beneficiary=h,
            entitlement=e,
            kind=RequestKind.NEW,
            justification=REASON,
            duration=timedelta(hours=1),
            state=RequestState.ACTIVE,
            created_at=clock - timedelta(hours=2),
            decided_at=clock - timedelta(hours=2),
        )
        for h, e in pairs
    )
    grants = Grant.objects.bulk_create(
        Grant(
            beneficiary=h,
            entitlement=e,
            request=r,
            state=GrantState.ACTIVE,
            starts_at=clock - timedelta(hours=2),
            expires_at=clock - timedelta(minutes=n % 50 + 1),
            created_at=clock - timedelta(hours=2),
        )
        for n, ((h, e), r) in enumerate(zip(pairs, requests, strict=True))
    )
    for access_request, grant in zip(requests, grants, strict=True):
        access_request.grant = grant
    AccessRequest.objects.bulk_update(requests, ["grant"])
    return grants


@pytest.mark.django_db(transaction=True)
def test_two_expiry_workers_expire_each_grant_exactly_once():
    grants = _due_grants(200)

    outcomes = run_together([partial(grants_expire_due, batch=25)] * 2)

    _only_workflow_errors(outcomes)
    assert not [o.error for o in outcomes if o.error]
    assert sum(o.result for o in outcomes) == 200
    expired = events("grant.expired")
    assert len(expired) == 200
    targets = Counter(e.target_id for e in expired)
    assert set(targets.values()) == {1}
    assert set(targets) == {str(g.request_id) for g in grants}
    assert set(Grant.objects.values_list("state", flat=True)) == {GrantState.EXPIRED}
    assert set(AccessRequest.objects.values_list("state", flat=True)) == {RequestState.EXPIRED}
    assert grants_expire_due() == 0


@pytest.mark.django_db(transaction=True)
def test_two_submits_of_the_same_request_at_once_make_one_pending_request(requester, owner):
    ent = make_entitlement(tier=RiskTier.LOW, owners=[owner])

    outcomes = run_together([partial(submit, requester, ent)] * 2)

    accepted = _only_workflow_errors(outcomes)
    assert len(accepted) == 1
    [refused] = [o.error for o in outcomes if o.error]
    assert f"{requester} already has a pending request for {ent}" in str(refused)
    assert AccessRequest.objects.filter(state=RequestState.PENDING).count() == 1
    assert AuditEvent.objects.filter(action="request.submitted").count() == 1
