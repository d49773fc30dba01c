"""The security dashboard: each number checked against a constructed scenario, each link opened
as an auditor (and the list behind it holding exactly that many rows), the same lists in the
admin for a security admin, a constant number of queries, days in the project's time zone, and
the doors: anonymous to sign-in, everyone else 404, POST refused."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accessreq.models import Campaign
from accessreq.reports import dashboard as data
from accessreq.services.common import now
from audit.models import AuditEvent
from audit.services import record
from tests.accessreq.dashboard_scenario import (
    D,
    H,
    Scenario,
    add_rows,
    break_glass_this_month,
    build_scenario,
    today_minus,
)
from tests.audit.clock import step_database_clock

pytestmark = pytest.mark.django_db


@pytest.fixture
def scenario(monkeypatch, security_admin) -> Scenario:
    return build_scenario(monkeypatch, security_admin)


DASHBOARD = "/reports/dashboard/"


# --- The numbers -----------------------------------------------------------------------------


def test_each_number_matches_the_scenario(scenario: Scenario) -> None:
    at = scenario.at
    board = data.dashboard(campaigns=Campaign.objects.all(), at=at, days=7)
    assert board.requests.pending == {"under-1d": 1, "1-3d": 2, "3-7d": 1, "over-7d": 1}
    assert board.requests.pending_total == 5
    assert board.requests.approved == 4
    assert board.median == 4 * H  # the middle two of 1, 3, 5 and 10 hours
    assert board.grants.by_tier == {"low": 2, "medium": 0, "high": 2, "critical": 1}
    assert board.grants.expiring == 3  # ending in 1 h (critical), 1 day (low), 2 days (high)
    assert board.grants.break_glass == 1
    assert board.requests.break_glass == break_glass_this_month(at)
    [(campaign, progress)] = board.campaigns.rows
    assert campaign == scenario.campaign
    assert (progress.decided, progress.total, board.campaigns.percent) == (2, 4, 50)
    assert board.ledger == {
        "login-failed": 3,
        "mfa-failed": 1,
        "authorize-denied": 3,
        "deployment-refused": 1,
        "token-refused": 1,
        "exchange-refused": 0,
    }
    assert board.violations == 5
    by_day = {day.day: day.counts for day in board.sign_in_chart.days if day.total}
    assert by_day == {
        today_minus(at, 2): {"login-failed": 2, "mfa-failed": 0},
        today_minus(at, 1): {"login-failed": 0, "mfa-failed": 1},
        today_minus(at, 0): {"login-failed": 1, "mfa-failed": 0},
    }
    assert len(board.sign_in_chart.days) == 7
    assert board.sign_in_chart.days[0].day == today_minus(at, 6)
    violations = {day.day: day.total for day in board.violations_chart.days if day.total}
    assert violations == {today_minus(at, 5): 1, today_minus(at, 3): 3, today_minus(at, 0): 1}


def test_a_longer_period_takes_in_the_older_events_and_approvals(scenario: Scenario) -> None:
    at = scenario.at
    board = data.dashboard(campaigns=Campaign.objects.all(), at=at, days=90)
    assert board.ledger["login-failed"] == 4
    assert board.ledger["exchange-refused"] == 1
    assert board.requests.approved == 5
    assert board.median == 5 * H  # 1, 3, 5, 10 and 100 hours
    assert len(board.violations_chart.days) == 90
    # Pending requests and grants are as of now, whatever the period.
    assert board.requests.pending_total == 5
    assert board.grants.total == 5


def test_days_are_the_project_time_zone_s(settings, monkeypatch, db) -> None:
    """03:00 UTC is still the evening before in New York."""
    settings.TIME_ZONE = "America/New_York"
    at = now()
    utc_midnight = datetime.combine(at.astimezone(UTC).date(), time.min, tzinfo=UTC)
    early = utc_midnight - D + 3 * H  # 03:00 UTC yesterday
    with monkeypatch.context() as patch:
        step_database_clock(patch, [early])
        record(actor=None, action="auth.login.failed", data={})
    board = data.dashboard(campaigns=Campaign.objects.all(), at=at, days=7)
    [day] = [day.day for day in board.sign_in_chart.days if day.total]
    assert day == early.date() - D
    assert board.period.start.astimezone(board.period.tz).time() == time.min


# --- The page --------------------------------------------------------------------------------


@pytest.fixture
def auditor_client(verified_client, auditor) -> Client:
    return verified_client(auditor)


def hrefs(content: str) -> list[str]:
    main = content.split('id="main"', 1)[1]
    return [html.unescape(h) for h in re.findall(r'href="([^"#][^"]*)"', main)]


def test_the_page_shows_the_numbers_each_linked(scenario: Scenario, auditor_client) -> None:
    response = auditor_client.get(DASHBOARD, {"days": 7})
    assert response.status_code == 200
    stats = {s.key: s for s in response.context["board"].stats}
    assert stats["pending"].value == "5"
    assert stats["median"].value == "4 hours"
    assert stats["grants"].value == "5"
    assert stats["grants"].note == "3 high or critical"
    assert stats["expiring"].value == "3"
    assert stats["campaigns"].value == "50%"
    assert stats["login-failed"].value == "3"
    assert stats["mfa-failed"].value == "1"
    assert stats["violations"].value == "5"
    page = response.content.decode()
    for stat in stats.values():
        assert f'href="{html.escape(stat.url)}"' in page, stat.key
    assert '<span class="dash-stat__value">4 hours</span>' in page
    # The charts: titled, described, numbers as a table, each bar linked to its events.
    assert (
        '<title id="sign-in-chart-title">Failed sign-ins and MFA failures per day</title>' in page
    )
    assert 'aria-labelledby="violations-chart-title violations-chart-desc"' in page
    assert "The numbers per day" in page
    assert page.count('class="chart__bar chart__bar--login-failed"') == 2  # two days with some


def test_every_link_opens_for_an_auditor_with_the_rows_counted(
    scenario: Scenario, auditor_client
) -> None:
    dashboard = auditor_client.get(DASHBOARD, {"days": 7})
    links = sorted(set(hrefs(dashboard.content.decode())))
    assert len(links) > 20
    shown = {}
    for link in links:
        response = auditor_client.get(link)
        assert response.status_code == 200, link
        context = response.context
        if link.startswith("/reports/dashboard/") and "list" in context:
            shown[link] = context["page"].paginator.count
        elif link.startswith("/audit/?"):
            shown[link] = len(context["page"].events)
    board = dashboard.context["board"]
    stats = {s.key: s for s in board.stats}
    for key in ("pending", "grants", "expiring"):
        assert shown[stats[key].url] == int(stats[key].value), key
    assert shown[stats["median"].url] == 4
    assert shown[stats["break-glass"].url] == break_glass_this_month(scenario.at)
    assert shown[stats["login-failed"].url] == 3
    assert shown[stats["mfa-failed"].url] == 1
    assert shown[stats["violations"].url] == 5
    for row in [*board.pending_rows, *board.tier_rows, *board.violation_rows]:
        assert shown[row.url] == row.count, row.label
    # Each day's number in the chart opens that day's events.
    for day in board.sign_in_chart.days + board.violations_chart.days:
        for key, url in day.urls.items():
            assert shown[url] == day.counts[key], (day.day, key)


def test_the_lists_are_also_in_the_admin_for_a_security_admin(
    scenario: Scenario, verified_client, security_admin, auditor_client
) -> None:
    client = verified_client(security_admin)
    board = client.get(DASHBOARD, {"days": 7}).context["board"]
    stats = {s.key: s for s in board.stats}
    expected = {
        "pending": 5,
        "median": 4,
        "grants": 5,
        "expiring": 3,
        "break-glass": break_glass_this_month(scenario.at),
        "violations": 5,
    }
    for key, count in expected.items():
        listing = client.get(stats[key].url)
        admin_url = listing.context["admin_url"]
        assert admin_url.startswith(("/admin/accessreq/", "/admin/audit/")), key
        admin = client.get(admin_url)
        assert admin.status_code == 200, admin_url
        assert admin.context["cl"].result_count == count, key
    high = next(r for r in board.tier_rows if r.key == "high")
    admin = client.get(client.get(high.url).context["admin_url"])
    assert admin.context["cl"].result_count == 2
    # Auditors do not open the admin, so their lists don't offer it.
    assert auditor_client.get(stats["grants"].url).context["admin_url"] == ""


def test_a_list_that_does_not_exist_is_404_and_a_bad_filter_400(auditor_client, db) -> None:
    assert auditor_client.get("/reports/dashboard/everything/").status_code == 404
    assert auditor_client.get("/reports/dashboard/pending/", {"age": "ages"}).status_code == 400
    response = auditor_client.get(
        "/reports/dashboard/approved/", {"since": "2030-01-02", "until": "2030-01-01"}
    )
    assert response.status_code == 400


def test_an_unknown_period_is_400(auditor_client, db) -> None:
    response = auditor_client.get(DASHBOARD, {"days": "5"})
    assert response.status_code == 400
    assert "Choose one of the periods above." in response.content.decode()


def test_an_empty_portal_shows_the_empty_states(auditor_client, db) -> None:
    response = auditor_client.get(DASHBOARD)
    assert response.status_code == 200
    board = response.context["board"]
    assert board.period.days == 30
    assert board.sign_in_chart.empty and board.violations_chart.empty
    page = response.content.decode()
    assert "No failed sign-ins or MFA failures in this period." in page
    assert "No denied or refused calls in this period." in page
    assert "No campaign is open." in page
    assert '<svg class="chart__svg"' not in page
    stats = {s.key: s.value for s in board.stats}
    assert stats["median"] == "—" and stats["campaigns"] == "—"


# --- Queries ---------------------------------------------------------------------------------


def test_the_number_of_queries_does_not_grow_with_rows(auditor_client, security_admin) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert auditor_client.get(DASHBOARD).status_code == 200
        return len(captured)

    add_rows(1, security_admin)
    one = queries()
    add_rows(12, security_admin)
    assert queries() == one
    board = auditor_client.get(DASHBOARD).context["board"]
    assert board.requests.pending_total == 13  # the rows really were counted
    assert len(board.campaigns.rows) == 2


def test_the_lists_query_count_does_not_grow_with_rows(auditor_client, security_admin) -> None:
    lists = ["pending", "grants", "expiring", "approved", "break-glass", "violations"]

    def queries() -> dict[str, int]:
        counts = {}
        for kind in lists:
            with CaptureQueriesContext(connection) as captured:
                assert auditor_client.get(f"/reports/dashboard/{kind}/").status_code == 200
            counts[kind] = len(captured)
        return counts

    add_rows(1, security_admin)
    one = queries()
    add_rows(12, security_admin)
    assert queries() == one


# --- Who may look ----------------------------------------------------------------------------


@pytest.mark.parametrize("url", [DASHBOARD, "/reports/dashboard/pending/"])
def test_anonymous_goes_to_sign_in(client, db, url) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["outsider", "manager", "owner", "requester"])
@pytest.mark.parametrize("url", [DASHBOARD, "/reports/dashboard/grants/"])
def test_everyone_else_gets_404_whatever_the_method(request, verified_client, persona, url) -> None:
    client = verified_client(request.getfixturevalue(persona))
    assert client.get(url).status_code == 404
    assert client.post(url).status_code == 404


@pytest.mark.parametrize("persona", ["auditor", "security_admin"])
def test_readers_may_look_but_post_is_refused(request, verified_client, persona) -> None:
    client = verified_client(request.getfixturevalue(persona))
    assert client.get(DASHBOARD).status_code == 200
    before = AuditEvent.objects.count()
    for url in (DASHBOARD, "/reports/dashboard/pending/"):
        response = client.post(url)
        assert response.status_code == 405
        assert response["Allow"] == "GET"
    assert AuditEvent.objects.count() == before


def test_the_navigation_offers_the_dashboard_to_readers_only(
    verified_client, auditor, outsider
) -> None:
    assert 'href="/reports/dashboard/"' in verified_client(auditor).get("/").content.decode()
    assert 'href="/reports/dashboard/"' not in verified_client(outsider).get("/").content.decode()


def test_links_carry_exact_times(scenario: Scenario, auditor_client) -> None:
    """The audit search links bound each day in UTC; the last ends at the dashboard's clock."""
    board = auditor_client.get(DASHBOARD, {"days": 7}).context["board"]
    stat = next(s for s in board.stats if s.key == "login-failed")
    query = parse_qs(urlsplit(stat.url).query)
    assert query["action"] == ["auth.login.failed"]
    assert query["since"] == [f"{today_minus(scenario.at, 6):%Y-%m-%d} 00:00:00"]
    until = datetime.fromisoformat(query["until"][0]).replace(tzinfo=UTC)
    assert abs(until - board.at) < timedelta(microseconds=1)


def test_each_chart_s_axis_fits_its_own_series(scenario: Scenario) -> None:
    """The two charts share one query's counts; each scales to its own busiest day."""
    board = data.dashboard(campaigns=Campaign.objects.all(), at=scenario.at, days=7)
    assert board.sign_in_chart.busiest == 2
    assert board.sign_in_chart.peak == 2
    assert board.violations_chart.busiest == 3
    assert board.violations_chart.peak == 3
    assert [value for value, _ in board.violations_chart.grid] == [0, 1, 2, 3]
