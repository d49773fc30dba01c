"""The lifecycle reports' rows against constructed histories: break-glass uses reviewed, revoked,
overdue and still due; leavers whose access was removed or not and movers who kept theirs; grants
dormant by their last recorded use or never used. Times are moved by rewriting the database,
never by patching; the pages' queries stay the same with more rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accessreq.models import AccessRequest, Grant, RiskTier
from accessreq.reports.base import Report
from accessreq.reports.breakglass import BreakGlass
from accessreq.reports.dormant import Dormant
from accessreq.reports.leavers import LeaversMovers
from accessreq.services.breakglass import (
    break_glass_overdue_alerts,
    break_glass_review,
    break_glass_take,
)
from accessreq.services.common import now
from accessreq.services.grants import grant_revoke
from accessreq.services.reports import build_report
from portal.models import User
from portal.roles import ON_CALL
from portal.services.people import user_set_employment_status
from tests.accessreq.workflow_helpers import (
    FRESH,
    REASON,
    direct_grant,
    make_entitlement,
    submit,
)
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
SECOND = timedelta(seconds=1)


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


# --- Leavers and movers -----------------------------------------------------------------------


def at_time(person: User, when) -> None:
    """Date the person's newest version ``when`` (time moved by rewriting the history)."""
    latest = person.history.order_by("-history_date", "-history_id").first()
    User.history.model.objects.filter(history_id=latest.history_id).update(history_date=when)


def created_at(person: User, when) -> None:
    """Date every version of the person so far ``when`` (made long ago)."""
    User.history.model.objects.filter(id=person.pk).update(history_date=when)


def leavers_rows(**query) -> list[dict[str, object]]:
    report = build_report("leavers-movers", query, at=now())
    assert isinstance(report, LeaversMovers)
    return rows(report)


def test_leavers_show_what_they_held_what_is_left_and_how_fast_it_went(owner, security_admin):
    clock = now()
    deploy = make_entitlement(tier=RiskTier.HIGH, owners=[owner], name="deploy")
    read = make_entitlement(tier=RiskTier.LOW, owners=[owner], name="read")
    team = TeamFactory(name="Payments")
    lea = UserFactory(display_name="Lea Leaver", team=team)
    kim = UserFactory(display_name="Kim Kept")
    ned = UserFactory(display_name="Ned Nothing")
    for person in (lea, kim, ned):
        created_at(person, clock - 30 * DAY)
    lea_deploy = window(direct_grant(lea, deploy), clock - 20 * DAY, clock + 10 * DAY)
    lea_read = window(direct_grant(lea, read), clock - 20 * DAY, clock + 10 * DAY)
    kim_deploy = window(direct_grant(kim, deploy), clock - 20 * DAY, clock + 10 * DAY)

    # Lea: marked leaving ten days ago (access stays), marked left today (everything revoked).
    user_set_employment_status(user=lea, status="leaving", actor=security_admin)
    at_time(lea, clock - 10 * DAY)
    user_set_employment_status(user=lea, status="left", actor=security_admin)
    # Kim: set to Left by an edit that skipped the service, five days ago: nothing revoked.
    kim.employment_status = User.EmploymentStatus.LEFT
    kim.save()
    at_time(kim, clock - 5 * DAY)
    # Ned held nothing.
    user_set_employment_status(user=ned, status="left", actor=security_admin)

    found = leavers_rows()
    assert [(name(row), row["change"]) for row in found] == [
        ("Lea Leaver", "Marked leaving"),
        ("Kim Kept", "Marked left"),
        ("Lea Leaver", "Marked left"),
        ("Ned Nothing", "Marked left"),
    ]
    leaving, kept, left, nothing = found
    labels = [
        f"#{lea_deploy.pk} {deploy.system.name} / high / deploy",
        f"#{lea_read.pk} {read.system.name} / low / read",
    ]
    assert leaving["at"] == utc(clock - 10 * DAY)
    assert leaving["by"] == "Sam Security <sam@example.com>"
    assert leaving["then_count"] == 2 and leaving["then"] == "\n".join(labels)
    assert leaving["held_count"] == 0 and leaving["held"] == ""
    assert leaving["removed"] == "10d 0h"  # revoked when marked left, today
    assert leaving["breaches"] == "None"
    assert left["then_count"] == 2 and left["held_count"] == 0
    assert left["removed"] in ("0s", "1s")
    assert left["breaches"] == "None"

    assert kept["then_count"] == 1 and kept["held_count"] == 1
    assert kept["held"] == f"#{kim_deploy.pk} {deploy.system.name} / high / deploy"
    assert kept["removed"] == "Not removed: 1 of 1 still held"
    assert kept["breaches"] == "Left but still holds 1"

    assert nothing["then_count"] == 0 and nothing["removed"] == "Nothing to remove"
    assert nothing["breaches"] == "None"

    # When the access ended by itself later, that counts as its removal.
    Grant.objects.filter(pk=kim_deploy.pk).update(expires_at=clock - 2 * DAY)
    kept = next(row for row in leavers_rows() if name(row) == "Kim Kept")
    assert kept["removed"] == "3d 0h" and kept["breaches"] == "None"
    # The period is about when the change was saved.
    since = (clock - 7 * DAY).strftime("%Y-%m-%d %H:%M")
    assert [name(row) for row in leavers_rows(since=since)] == [
        "Kim Kept",
        "Lea Leaver",
        "Ned Nothing",
    ]
    assert [name(row) for row in leavers_rows(team=str(team.pk))] == ["Lea Leaver"] * 2


def test_a_revocation_a_slower_database_clock_stamped_before_the_change_still_counts(
    owner, security_admin
):
    """The change's time is the app's clock, revocations the database's: a leaver's access
    revoked by the change itself counts as held at it even if the two clocks disagree a little;
    access revoked a minute before does not."""
    deploy = make_entitlement(tier=RiskTier.HIGH, owners=[owner], name="deploy")
    read = make_entitlement(tier=RiskTier.LOW, owners=[owner], name="read")
    person = UserFactory(display_name="Sol Skewed")
    created_at(person, now() - 30 * DAY)
    by_change = window(direct_grant(person, deploy), now() - 20 * DAY, now() + DAY)
    earlier = window(direct_grant(person, read), now() - 20 * DAY, now() + DAY)
    user_set_employment_status(user=person, status="left", actor=security_admin)
    change = person.history.filter(employment_status="left").earliest("history_date").history_date
    Grant.objects.filter(pk=by_change.pk).update(revoked_at=change - 2 * SECOND)
    Grant.objects.filter(pk=earlier.pk).update(revoked_at=change - 60 * SECOND)

    (row,) = leavers_rows()
    assert row["then"] == f"#{by_change.pk} {deploy.system.name} / high / deploy"
    assert row["removed"] == "0s"


def test_a_leaver_still_leaving_is_flagged_but_one_back_at_work_is_not(owner):
    deploy = make_entitlement(tier=RiskTier.HIGH, owners=[owner], name="deploy")
    leaving = UserFactory(display_name="Lou Leaving")
    back = UserFactory(display_name="Bea Back")
    for person in (leaving, back):
        created_at(person, now() - 30 * DAY)
        window(direct_grant(person, deploy), now() - 20 * DAY, now() + 10 * DAY)
        person.employment_status = User.EmploymentStatus.LEAVING
        person.save()
    back.employment_status = User.EmploymentStatus.ACTIVE
    back.save()

    flags = {name(row): row["breaches"] for row in leavers_rows()}
    assert flags == {
        "Lou Leaving": "Leaving and still holds 1: remove by their last day",
        "Bea Back": "None",
    }


def test_movers_show_the_team_or_manager_change_and_keep_access_without_a_flag(
    owner, manager, security_admin
):
    clock = now()
    deploy = make_entitlement(tier=RiskTier.HIGH, owners=[owner], name="deploy")
    old_team, new_team = TeamFactory(name="Payments"), TeamFactory(name="Ledger")
    max_ = UserFactory(display_name="Max Mover", team=old_team, manager=manager)
    mia = UserFactory(display_name="Mia Manager-change", team=new_team, manager=manager)
    robot = UserFactory(display_name="Deploy bot", team=old_team, kind=User.Kind.SERVICE)
    for person in (max_, mia, robot):
        created_at(person, clock - 30 * DAY)
    held = window(direct_grant(max_, deploy), clock - 20 * DAY, clock + 10 * DAY)
    mias = window(direct_grant(mia, deploy), clock - 20 * DAY, clock + 10 * DAY)

    max_.team = new_team
    max_.save()
    at_time(max_, clock - 4 * DAY)
    mia.manager = security_admin
    mia.save()
    at_time(mia, clock - 3 * DAY)
    grant_revoke(actor=owner, grant_id=mias.pk, reason="Moved to another manager's area")
    Grant.objects.filter(pk=mias.pk).update(revoked_at=clock - DAY)
    robot.team = new_team  # service accounts are not people who move
    robot.save()

    found = {name(row): row for row in leavers_rows()}
    assert set(found) == {"Max Mover", "Mia Manager-change"}
    assert found["Max Mover"]["change"] == "Team: Payments → Ledger"
    assert found["Max Mover"]["then"] == f"#{held.pk} {deploy.system.name} / high / deploy"
    assert found["Max Mover"]["held_count"] == 1
    assert found["Max Mover"]["removed"] == "n/a (mover): 1 of 1 kept"
    assert found["Max Mover"]["breaches"] == "None"
    assert found["Mia Manager-change"]["change"] == (
        "Manager: Mina Manager <mina@example.com> → Sam Security <sam@example.com>"
    )
    assert found["Mia Manager-change"]["removed"] == "2d 0h"
    # Filters: movers only, leavers only, by the team before the move.
    assert {name(row) for row in leavers_rows(change="movers")} == set(found)
    assert leavers_rows(change="leavers") == []
    assert [name(row) for row in leavers_rows(team=str(old_team.pk))] == ["Max Mover"]


# --- Dormant access ---------------------------------------------------------------------------


def dormant_rows(**query) -> dict[int, dict[str, object]]:
    report = build_report("dormant", query, at=now())
    assert isinstance(report, Dormant)
    return {row["grant"]: row for row in rows(report)}


def test_dormant_lists_active_grants_unused_or_never_used_for_n_days(owner, security_admin):
    clock = now()
    deploy = make_entitlement(tier=RiskTier.HIGH, owners=[owner], name="deploy")
    people = [UserFactory(display_name=f"Holder {n}") for n in range(7)]

    def grant(n: int, started_days: float, *, used_days: float | None = None, **end) -> Grant:
        made = window(
            direct_grant(people[n], deploy),
            clock - started_days * DAY,
            end.get("until", clock + 10 * DAY),
        )
        if used_days is not None:
            Grant.objects.filter(pk=made.pk).update(last_used_at=clock - used_days * DAY)
        return Grant.objects.get(pk=made.pk)

    idle = grant(0, 60, used_days=40)
    never = grant(1, 45)
    recent = grant(2, 60, used_days=5)
    young = grant(3, 10)
    revoked = grant(4, 60)
    grant_revoke(actor=security_admin, grant_id=revoked.pk, reason="No longer needed")
    grant(5, 60, until=clock - DAY)  # ended
    later = grant(6, 60)
    Grant.objects.filter(pk=later.pk).update(starts_at=clock + DAY, expires_at=clock + 2 * DAY)

    found = dormant_rows()
    assert list(found) == [never.pk, idle.pk]  # the longest idle first
    assert found[idle.pk]["last_used"] == utc(clock - 40 * DAY)
    assert found[idle.pk]["idle"] == 40
    assert found[idle.pk]["since"] == utc(clock - 60 * DAY)
    assert found[idle.pk]["until"] == utc(clock + 10 * DAY)
    assert found[idle.pk]["request"] == idle.request_id
    assert found[idle.pk]["tier"] == "High"
    assert found[never.pk]["last_used"] == "Never used"
    assert found[never.pk]["idle"] == 45

    assert set(dormant_rows(days="7")) == {idle.pk, never.pk, young.pk}
    assert set(dormant_rows(days="41")) == {never.pk}
    assert recent.pk in dormant_rows(days="4")
    assert set(dormant_rows(person="holder 1")) == {never.pk}
    assert dormant_rows(tier=RiskTier.LOW) == {}
    for bad in ("0", "3651", "soon"):
        with pytest.raises(Exception, match="not valid"):
            build_report("dormant", {"days": bad}, at=now())


# --- The pages --------------------------------------------------------------------------------


def test_the_pages_run_the_same_queries_with_more_rows(verified_client, auditor, owner):
    client = verified_client(auditor)
    urgent = make_entitlement(
        tier=RiskTier.HIGH, system_owners=[owner], emergency_capable=True, name="deploy"
    )
    team = TeamFactory(name="Payments")

    def more(count: int) -> None:
        for _ in range(count):
            person = UserFactory(team=team, groups=[ON_CALL])
            created_at(person, now() - 30 * DAY)
            take(person, urgent)
            window(direct_grant(person, make_entitlement()), now() - 40 * DAY, now() + DAY)
            person.employment_status = User.EmploymentStatus.LEFT
            person.team = TeamFactory()
            person.save()

    def queries() -> tuple[int, str]:
        pages = []
        with CaptureQueriesContext(connection) as captured:
            for slug in ("break-glass", "leavers-movers", "dormant"):
                response = client.get(f"/reports/{slug}/")
                assert response.status_code == 200
                pages.append(response.content.decode())
        return len(captured), "".join(pages)

    more(1)
    queries()  # once first: the database's one-time feature checks (SQLite's JSON) are not rows
    few, _ = queries()
    more(8)
    many, page = queries()
    assert many == few
    # Each left holding their break-glass and their other grant.
    assert page.count("Left but still holds 2") == 9
    assert page.count('class="breach"') == 9
