"""Builders shared by the service-level workflow tests: catalog entries, policies, moving time
(by rewriting timestamps in the database, never by patching the clock) and running threads."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F

from accessreq.models import (
    AccessRequest,
    ApprovalPolicy,
    Entitlement,
    Grant,
    RiskTier,
)
from accessreq.services.common import MfaContext, now
from accessreq.services.requests import request_approve, request_submit
from audit.models import AuditEvent
from portal.models import User
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory, UserFactory

FRESH = MfaContext("totp", 10)
STALE = MfaContext("totp", 3600)
REASON = "Deploy the hotfix for the payments outage"
SECOND = timedelta(seconds=2)


def make_entitlement(
    *,
    tier: str = RiskTier.LOW,
    owners: Iterable[Any] = (),
    system_owners: Iterable[Any] = (),
    policy: ApprovalPolicy | None = None,
    system: Any = None,
    **fields: Any,
) -> Entitlement:
    """An entitlement in the environment named after ``tier`` (one environment per tier)."""
    environment = EnvironmentFactory(name=str(tier), slug=str(tier), risk_tier=tier)
    system = system or SystemFactory()
    system.owners.add(*system_owners)
    entitlement = EntitlementFactory(
        system=system, environment=environment, policy=policy, **fields
    )
    entitlement.owners.add(*owners)
    return entitlement


def make_policy(
    name: str, *stages: tuple[str, int, bool], tier: str | None = None
) -> ApprovalPolicy:
    policy = ApprovalPolicy.objects.create(name=name, tier=tier)
    for position, (rule, quorum, step_up) in enumerate(stages, start=1):
        policy.stages.create(position=position, approver_rule=rule, quorum=quorum, step_up=step_up)
    return policy


def people(count: int, prefix: str = "Approver") -> list[User]:
    return [
        UserFactory(display_name=f"{prefix} {n:02d}", email=f"{prefix.lower()}{n}@example.com")
        for n in range(count)
    ]


def submit(
    actor: User, entitlement: Entitlement, *, duration: timedelta = timedelta(hours=8), **kw: Any
) -> AccessRequest:
    return request_submit(
        actor=actor, entitlement=entitlement, justification=REASON, duration=duration, **kw
    )


def approve(actor: User, access_request: AccessRequest, **kw: Any) -> AccessRequest:
    kw.setdefault("mfa", FRESH)
    return request_approve(actor=actor, request_id=access_request.pk, **kw)


def grant_of(access_request: AccessRequest) -> Grant:
    """The grant a request created or extends (the caller knows it has one)."""
    grant = access_request.grant
    assert grant is not None, f"{access_request} has no grant"
    return grant


def actions(target: Any) -> list[str]:
    """The audit actions recorded on ``target``, in ledger order."""
    return list(
        AuditEvent.objects.filter(target_type=target._meta.label_lower, target_id=str(target.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def age_request(access_request: AccessRequest, by: timedelta) -> None:
    """Move time ``by`` forward for this request: it was submitted, its stage opened, and its
    timeout and review deadlines fall ``by`` earlier."""
    AccessRequest.objects.filter(pk=access_request.pk).update(
        **{
            field: F(field) - by
            for field in ("created_at", "stage_opened_at", "timeout_at", "review_due_at")
        }
    )
    access_request.refresh_from_db()


def age_grant(grant: Grant, by: timedelta) -> None:
    """Move time ``by`` forward for this grant: its window and the expiry times it was warned
    about all fall ``by`` earlier (moving only ``expires_at`` would look like an extension)."""
    Grant.objects.filter(pk=grant.pk).update(
        **{
            field: F(field) - by
            for field in ("starts_at", "expires_at", "warned_24h_for", "warned_1h_for")
        }
    )
    grant.refresh_from_db()


def set_grant_window(grant: Grant, *, starts_at: datetime, expires_at: datetime) -> None:
    Grant.objects.filter(pk=grant.pk).update(starts_at=starts_at, expires_at=expires_at)
    grant.refresh_from_db()


def lapse(grant: Grant, ago: timedelta = timedelta(minutes=1)) -> None:
    """Move the grant's window so it ended ``ago`` (the expiry job has not run)."""
    length = grant.expires_at - grant.starts_at
    end = now() - ago
    set_grant_window(grant, starts_at=end - length, expires_at=end)


def close_to(value: datetime | None, expected: datetime, slack: timedelta = SECOND) -> bool:
    return value is not None and abs(value - expected) <= slack


@dataclass
class Outcome:
    result: Any = None
    error: BaseException | None = None


def run_together(
    calls: list[Callable[[], Any]], *, delays: list[float] | None = None
) -> list[Outcome]:
    """Run each call in its own thread, released together by a barrier (after its delay, if
    any); each thread closes its database connection. Returns one outcome per call, in order."""
    import time

    barrier = threading.Barrier(len(calls))
    outcomes = [Outcome() for _ in calls]

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            if delays and delays[index]:
                time.sleep(delays[index])
            outcomes[index].result = calls[index]()
        except BaseException as exc:  # collected and asserted by the caller
            outcomes[index].error = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    return outcomes


def direct_grant(
    holder: User, entitlement: Entitlement, *, started_ago: timedelta = timedelta(minutes=5)
) -> Grant:
    """An active grant with its active request, written directly (for campaign tests, where the
    approval chain is beside the point)."""
    from accessreq.models import GrantState, RequestKind
    from accessreq.states import RequestState

    clock = now()
    start = clock - started_ago
    request = AccessRequest.objects.create(
        requester=holder,
        beneficiary=holder,
        entitlement=entitlement,
        kind=RequestKind.NEW,
        justification=REASON,
        duration=timedelta(hours=8),
        state=RequestState.ACTIVE,
        created_at=start,
        decided_at=start,
    )
    grant = Grant.objects.create(
        beneficiary=holder,
        entitlement=entitlement,
        request=request,
        state=GrantState.ACTIVE,
        starts_at=start,
        expires_at=start + timedelta(hours=8),
        created_at=start,
    )
    request.grant = grant
    request.save(update_fields=["grant"])
    return grant
