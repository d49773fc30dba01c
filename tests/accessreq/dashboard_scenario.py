"""The security dashboard's constructed scenario, shared by the dashboard's and the metrics'
tests: rows written directly (the workflow is beside the point), ledger events at chosen times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import pytest

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models import (
    AccessRequest,
    Campaign,
    CampaignTemplate,
    Entitlement,
    Grant,
    GrantState,
    RequestKind,
    ReviewItem,
    RiskTier,
)
from accessreq.reports import dashboard as data
from accessreq.services.common import now
from accessreq.states import RequestState
from audit.services import record
from portal.models import User
from tests.accessreq.workflow_helpers import REASON, make_entitlement
from tests.audit.clock import step_database_clock
from tests.factories import UserFactory

H = timedelta(hours=1)
D = timedelta(days=1)


def make_request(
    beneficiary: User,
    entitlement: Entitlement,
    *,
    at: datetime,
    state: str,
    submitted_ago: timedelta,
    wait: timedelta | None = None,
    kind: str = RequestKind.NEW,
) -> AccessRequest:
    """A request submitted ``submitted_ago`` before ``at`` and, with ``wait``, decided that
    long after it was submitted (written directly: the workflow is beside the point here)."""
    created = at - submitted_ago
    return AccessRequest.objects.create(
        requester=beneficiary,
        beneficiary=beneficiary,
        entitlement=entitlement,
        kind=kind,
        justification=REASON,
        duration=timedelta(hours=8),
        state=state,
        created_at=created,
        decided_at=created + wait if wait is not None else None,
        stages=[{"position": 1, "rule": "manager", "quorum": 1, "step_up": False}],
        current_stage=1,
    )


def make_grant(
    entitlement: Entitlement,
    *,
    at: datetime,
    starts: timedelta,
    ends: timedelta,
    state: str = GrantState.ACTIVE,
    break_glass: bool = False,
    revoked: bool = False,
) -> Grant:
    """A grant from ``at + starts`` until ``at + ends`` for a new holder, with its request: a
    break-glass one taken when the grant starts, else one approved 200 days ago (outside every
    period, so only the scenario's own approvals are counted)."""
    holder = UserFactory()
    request = make_request(
        holder,
        entitlement,
        at=at,
        state=RequestState.ACTIVE,
        submitted_ago=-starts if break_glass else 200 * D,
        wait=timedelta(0) if break_glass else H,
        kind=RequestKind.BREAK_GLASS if break_glass else RequestKind.NEW,
    )
    return Grant.objects.create(
        beneficiary=holder,
        entitlement=entitlement,
        request=request,
        state=GrantState.REVOKED if revoked else state,
        break_glass=break_glass,
        starts_at=at + starts,
        expires_at=at + ends,
        revoked_at=at - H if revoked else None,
        created_at=at + starts,
    )


def make_campaign(
    owner: User, grants: list[Grant], decisions: list[str], *, at: datetime, state: str, name: str
) -> Campaign:
    template = CampaignTemplate.objects.create(name=name, fallback_reviewer=owner, owner=owner)
    campaign = Campaign.objects.create(
        template=template,
        period="2030-Q1",
        state=state,
        launched_at=at - 3 * D,
        deadline=at + 4 * D,
    )
    for grant, decision in zip(grants, decisions, strict=True):
        ReviewItem.objects.create(
            campaign=campaign,
            grant=grant,
            reviewer=owner,
            tier=grant.entitlement.environment.risk_tier,
            system=grant.entitlement.system,
            decision=decision,
            decided_at=None if decision == ReviewDecision.PENDING else at - H,
        )
    return campaign


def ledger_times(at: datetime) -> dict[int, datetime]:
    """A past moment on each day from ``at``'s day (0) back to 10 days before it, UTC."""
    midnight = datetime.combine(at.astimezone(UTC).date(), time.min, tzinfo=UTC)
    times = {days: midnight - days * D + 12 * H for days in range(1, 11)}
    times[0] = midnight + (at - midnight) / 2
    return times


# Ledger events: (days before today, action, how many). Inside the last 7 days unless noted.
LEDGER = [
    (10, "auth.login.failed", 1),  # outside 7 days, inside 30
    (9, "api.token.exchange_refused", 1),  # outside 7 days, inside 30
    (5, "api.token.refused", 1),
    (3, "api.authorize.denied", 3),
    (3, "api.authorize.allowed", 2),  # not a violation
    (2, "auth.login.failed", 2),
    (1, "auth.mfa.failed", 1),
    (1, "auth.login", 1),  # not a failure
    (0, "auth.login.failed", 1),
    (0, "deployment.refused", 1),
]


def seed_ledger(monkeypatch: pytest.MonkeyPatch, at: datetime) -> None:
    """Append ``LEDGER`` with those times (oldest first), before anything else is recorded."""
    times = ledger_times(at)
    stamps, actions = [], []
    for days, action, count in LEDGER:
        for n in range(count):
            stamps.append(times[days] + n * timedelta(seconds=1))
            actions.append(action)
    with monkeypatch.context() as patch:
        step_database_clock(patch, stamps)
        for action in actions:
            record(actor=None, action=action, data={"scenario": True})


@dataclass
class Scenario:
    at: datetime
    campaign: Campaign


def build_scenario(monkeypatch: pytest.MonkeyPatch, security_admin: User) -> Scenario:
    """The ledger above, then (by the clock of ``at``):

    - pending requests waiting 2 h, 30 h, 2 days, 4 days and 8 days; a denied one 9 days old;
    - approved requests in the period after 1 h, 3 h, 5 h and 10 h (approved, active, expired
      and revoked since), one approved 40 days ago after 100 h, a denied one and a break-glass
      one in the period (neither is an approval);
    - grants in force: low x2 (ending in 1 and 20 days, the second still "scheduled" though
      started: the job is late), high x2 (ending in 2 and 20 days), critical x1 (break-glass,
      ending in 1 h); not in force: a
      revoked one, one starting tomorrow, one that ended an hour ago with the job late;
    - an open campaign with items certified, revoked, pending, pending and one reassigned, and a
      closed campaign (left out).
    """
    at = now()
    seed_ledger(monkeypatch, at)
    low = make_entitlement(tier=RiskTier.LOW)
    high = make_entitlement(tier=RiskTier.HIGH)
    critical = make_entitlement(tier=RiskTier.CRITICAL)
    for ago in (2 * H, 30 * H, 2 * D, 4 * D, 8 * D):
        make_request(UserFactory(), low, at=at, state=RequestState.PENDING, submitted_ago=ago)
    make_request(UserFactory(), low, at=at, state=RequestState.DENIED, submitted_ago=9 * D)
    approvals = [
        (RequestState.APPROVED, H),
        (RequestState.ACTIVE, 3 * H),
        (RequestState.EXPIRED, 5 * H),
        (RequestState.REVOKED, 10 * H),
    ]
    for state, wait in approvals:
        make_request(UserFactory(), high, at=at, state=state, submitted_ago=2 * D, wait=wait)
    make_request(
        UserFactory(), high, at=at, state=RequestState.EXPIRED, submitted_ago=45 * D, wait=100 * H
    )
    make_request(
        UserFactory(), high, at=at, state=RequestState.DENIED, submitted_ago=D, wait=20 * H
    )
    in_force = [
        make_grant(low, at=at, starts=-D, ends=D),
        make_grant(low, at=at, starts=-H, ends=20 * D, state=GrantState.SCHEDULED),
        make_grant(high, at=at, starts=-D, ends=2 * D),
        make_grant(high, at=at, starts=-D, ends=20 * D),
        make_grant(critical, at=at, starts=-timedelta(seconds=5), ends=H, break_glass=True),
    ]
    make_grant(high, at=at, starts=-D, ends=D, revoked=True)
    make_grant(high, at=at, starts=D, ends=2 * D, state=GrantState.SCHEDULED)
    make_grant(low, at=at, starts=-D, ends=-H)
    # A break-glass use 40 days ago: not this month.
    make_grant(critical, at=at, starts=-40 * D, ends=-40 * D + H, break_glass=True)
    c = ReviewDecision
    campaign = make_campaign(
        security_admin,
        [*in_force[:4], in_force[3]],
        [c.CERTIFIED, c.REVOKED, c.PENDING, c.REASSIGNED, c.PENDING],
        at=at,
        state=CampaignState.OPEN,
        name="Quarterly prod review",
    )
    make_campaign(
        security_admin,
        in_force[:2],
        [c.PENDING, c.PENDING],
        at=at,
        state=CampaignState.CLOSED,
        name="Last quarter",
    )
    return Scenario(at=at, campaign=campaign)


def break_glass_this_month(at: datetime) -> int:
    """The scenario's break-glass uses since the first of the month: the one 5 s before ``at``
    (unless the month began in those seconds)."""
    return int(at - timedelta(seconds=5) >= data.month_start(at))


def today_minus(at: datetime, days: int) -> date:
    return at.astimezone(UTC).date() - timedelta(days=days)


def add_rows(n: int, owner: User) -> None:
    """``n`` more of every kind of row the dashboard counts."""
    at = now()
    entitlements = [make_entitlement(tier=tier) for tier in RiskTier]
    grants = []
    for i in range(n):
        entitlement = entitlements[i % len(entitlements)]
        make_request(
            UserFactory(), entitlement, at=at, state=RequestState.PENDING, submitted_ago=i * D
        )
        make_request(
            UserFactory(), entitlement, at=at, state=RequestState.ACTIVE, submitted_ago=D, wait=H
        )
        grants.append(make_grant(entitlement, at=at, starts=-H, ends=(i + 1) * D))
        make_grant(entitlement, at=at, starts=-H, ends=H, break_glass=True)
        for action in ("auth.login.failed", "auth.mfa.failed", "api.authorize.denied"):
            record(actor=None, action=action, data={})
    make_campaign(
        owner,
        grants,
        [ReviewDecision.PENDING] * n,
        at=at,
        state=CampaignState.OPEN,
        name=f"Campaign {Campaign.objects.count()}",
    )
