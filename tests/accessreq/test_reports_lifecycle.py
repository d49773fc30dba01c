"""The lifecycle reports' rows against constructed histories: break-glass uses reviewed, revoked,
overdue and still due. Times are moved by rewriting the database, never by patching."""

from __future__ import annotations

from datetime import timedelta

import pytest

from accessreq.models import AccessRequest, Grant, RiskTier
from accessreq.reports.base import Report
from accessreq.reports.breakglass import BreakGlass
from accessreq.services.breakglass import (
    break_glass_overdue_alerts,
    break_glass_review,
    break_glass_take,
)
from accessreq.services.common import now
from accessreq.services.reports import build_report
from portal.roles import ON_CALL
from tests.accessreq.workflow_helpers import (
    FRESH,
    REASON,
    make_entitlement,
    submit,
)
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)


def rows(report: Report) -> list[dict[str, object]]:
    keys = [column.key for column in report.columns]
    return [dict(zip(keys, cells, strict=True)) for cells in report.rows()]


def utc(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def name(row: dict[str, object], key: str = "person") -> str:
    return str(row[key]).split(" <")[0]


def window(grant: Grant, start, end) -> Grant:
    """Move a grant (and its request) to ``start``..``end``, as if made at ``start``."""
    Grant.objects.filter(pk=grant.pk).update(starts_at=start, expires_at=end, created_at=start)
    AccessRequest.objects.filter(pk=grant.request_id).update(created_at=start, decided_at=start)
    return Grant.objects.get(pk=grant.pk)


# --- Break-glass ------------------------------------------------------------------------------


def take(person, entitlement, incident: str = "INC-42", hours: int = 1) -> AccessRequest:
    return break_glass_take(
        actor=person,
        entitlement=entitlement,
        reason=REASON,
        incident=incident,
        duration=timedelta(hours=hours),
        mfa=FRESH,
    )


def break_glass_rows(**query) -> dict[str, dict[str, object]]:
    report = build_report("break-glass", query, at=now())
    assert isinstance(report, BreakGlass)
    return {name(row): row for row in rows(report)}


def test_break_glass_lists_each_use_with_its_duration_and_review(requester, owner, security_admin):
    urgent = make_entitlement(
        tier=RiskTier.CRITICAL,
        system_owners=[owner],
        emergency_capable=True,
        max_duration=timedelta(hours=8),
        name="db-admin",
    )
    ada, bob, cyd, dee, eve = (
        UserFactory(display_name=who, groups=[ON_CALL])
        for who in ("Ada", "Bob", "Cyd", "Dee", "Eve")
    )
    clock = now()
    # Ada's use is reviewed and still running.
    held = take(ada, urgent, incident="INC-1")
    break_glass_review(
        actor=security_admin, request_id=held.pk, comment="Matches the incident log", mfa=FRESH
    )
    # Bob's started two hours ago; the review came after it was due and revoked it.
    revoked = take(bob, urgent, incident="INC-2", hours=2)
    AccessRequest.objects.filter(pk=revoked.pk).update(
        created_at=clock - 2 * HOUR, review_due_at=clock - HOUR
    )
    Grant.objects.filter(pk=revoked.grant_id).update(
        starts_at=clock - 2 * HOUR, expires_at=clock + 0.5 * HOUR
    )
    break_glass_review(
        actor=security_admin,
        request_id=revoked.pk,
        comment="Not an emergency",
        revoke=True,
        mfa=FRESH,
    )
    Grant.objects.filter(pk=revoked.grant_id).update(revoked_at=clock - 1.5 * HOUR)
    # Cyd's was three days ago, ran its hour out and was never reviewed: the alert was raised.
    overdue = take(cyd, urgent, incident="INC-3")
    AccessRequest.objects.filter(pk=overdue.pk).update(
        created_at=clock - 3 * DAY, review_due_at=clock - 2 * DAY
    )
    Grant.objects.filter(pk=overdue.grant_id).update(
        starts_at=clock - 3 * DAY, expires_at=clock - 3 * DAY + HOUR
    )
    assert break_glass_overdue_alerts() == 1
    overdue.refresh_from_db()
    # Dee's is new and its review is due tomorrow.
    due = take(dee, urgent, incident="INC-4")
    # Eve's was two months ago: outside the default period.
    old = take(eve, urgent, incident="INC-5")
    AccessRequest.objects.filter(pk=old.pk).update(created_at=clock - 60 * DAY)
    Grant.objects.filter(pk=old.grant_id).update(
        starts_at=clock - 60 * DAY, expires_at=clock - 60 * DAY + HOUR
    )
    # An ordinary request is not a break-glass use.
    submit(requester, make_entitlement(tier=RiskTier.LOW, owners=[owner], name="read"))

    found = break_glass_rows()
    assert set(found) == {"Ada", "Bob", "Cyd", "Dee"}
    assert found["Ada"]["request"] == held.pk and found["Ada"]["grant"] == held.grant_id
    assert found["Ada"]["incident"] == "INC-1" and found["Ada"]["reason"] == REASON
    assert found["Ada"]["tier"] == "Critical"
    assert found["Ada"]["lasted"] == "Still held"
    assert str(found["Ada"]["ended"]).startswith("Still held until ")
    held.refresh_from_db()
    assert found["Ada"]["review"] == (
        f"Reviewed by Sam Security <sam@example.com> at {utc(held.reviewed_at)}: "
        "Matches the incident log"
    )

    assert found["Bob"]["started"] == utc(clock - 2 * HOUR)
    assert found["Bob"]["lasted"] == "30m 00s"
    assert found["Bob"]["ended"] == (
        f"Revoked {utc(clock - 1.5 * HOUR)} by Sam Security <sam@example.com>"
    )
    assert str(found["Bob"]["review"]).startswith("Reviewed by Sam Security <sam@example.com> at ")
    assert f", late (was due by {utc(clock - HOUR)}): Not an emergency" in str(
        found["Bob"]["review"]
    )

    assert found["Cyd"]["lasted"] == "1h 00m"
    assert found["Cyd"]["ended"] == f"Expired {utc(clock - 3 * DAY + HOUR)}"
    assert found["Cyd"]["review"] == (
        f"Overdue since {utc(clock - 2 * DAY)} (alert raised {utc(overdue.review_overdue_at)})"
    )

    due.refresh_from_db()
    assert found["Dee"]["review"] == f"Due by {utc(due.review_due_at)}"

    # The period is about when it was taken; filters narrow it.
    since = (clock - 61 * DAY).strftime("%Y-%m-%d %H:%M")
    assert set(break_glass_rows(since=since)) == {"Ada", "Bob", "Cyd", "Dee", "Eve"}
    assert set(break_glass_rows(person="cyd")) == {"Cyd"}
    assert break_glass_rows(tier=RiskTier.LOW) == {}


def test_a_review_overdue_before_the_alert_job_ran_says_overdue():
    urgent = make_entitlement(tier=RiskTier.HIGH, emergency_capable=True, name="deploy")
    person = UserFactory(display_name="Fay", groups=[ON_CALL])
    use = take(person, urgent)
    AccessRequest.objects.filter(pk=use.pk).update(review_due_at=now() - HOUR)
    (row,) = break_glass_rows().values()
    assert row["review"] == f"Overdue since {utc(now() - HOUR)}"
