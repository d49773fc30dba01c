"""``/metrics``: closed without a token, 401 without the right one, and with it the dashboard's
numbers for a constructed scenario in the Prometheus text format, from our own registry only,
through the short middleware, in a constant number of queries."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from prometheus_client.parser import text_string_to_metric_families

from tests.accessreq.dashboard_scenario import (
    Scenario,
    add_rows,
    break_glass_this_month,
    build_scenario,
)
from tests.portal.test_config import _start

pytestmark = pytest.mark.django_db

URL = "/metrics"
TOKEN = secrets.token_urlsafe(32)


@pytest.fixture
def scenario(monkeypatch, security_admin) -> Scenario:
    return build_scenario(monkeypatch, security_admin)


@pytest.fixture
def token(settings) -> str:
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def scrape(client: Client, token: str = TOKEN, scheme: str = "Bearer") -> Any:
    return client.get(URL, HTTP_AUTHORIZATION=f"{scheme} {token}")


def samples(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


# --- The door --------------------------------------------------------------------------------


def test_without_a_configured_token_the_endpoint_is_closed(client, settings) -> None:
    settings.METRICS_TOKEN = ""
    for response in (client.get(URL), scrape(client), scrape(client, token="")):
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
        assert b"gatehouse_" not in response.content


def test_a_missing_or_wrong_token_is_401_and_says_why(client, token) -> None:
    missing = client.get(URL)
    assert missing.status_code == 401
    assert missing["WWW-Authenticate"] == 'Bearer realm="gatehouse-metrics"'
    assert missing.json()["error"]["code"] == "authentication_required"
    for wrong in (scrape(client, token=token[:-1]), scrape(client, token=token + "x")):
        assert wrong.status_code == 401
        assert wrong.json()["error"] == {
            "code": "invalid_token",
            "message": "This is not the metrics token.",
        }
        assert b"gatehouse_" not in wrong.content
    assert scrape(client, scheme="Basic").status_code == 401


def test_a_signed_in_session_is_no_substitute_for_the_token(
    verified_client, security_admin, token
) -> None:
    response = verified_client(security_admin).get(URL)
    assert response.status_code == 401


def test_only_get(client, token) -> None:
    response = client.post(URL, HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 405
    assert response["Allow"] == "GET"


def test_the_scrape_skips_the_pages_middleware(client, token) -> None:
    response = scrape(client)
    assert response.status_code == 200
    assert "X-Request-ID" in response  # API_MIDDLEWARE ran
    assert "Content-Security-Policy" not in response  # the pages' stack did not
    assert not response.cookies  # no session, no CSRF cookie
    assert response["Cache-Control"] == "no-store"


def test_a_short_token_stops_start_up(tmp_path: Path) -> None:
    result = _start({"METRICS_TOKEN": "too-short"}, tmp_path)
    assert result.returncode != 0
    assert "METRICS_TOKEN must be at least 32 characters" in result.stderr


# --- The numbers -----------------------------------------------------------------------------


def test_the_metrics_are_the_scenario_s_numbers(client, token, scenario: Scenario) -> None:
    response = scrape(client, scheme="bearer")  # the scheme is case-insensitive
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    body = response.content.decode()
    found = samples(body)

    def value(name: str, **labels: str) -> float:
        return found[(name, tuple(sorted(labels.items())))]

    pending = {"under-1d": 1, "1-3d": 2, "3-7d": 1, "over-7d": 1}
    for age, count in pending.items():
        assert value("gatehouse_pending_approvals", age=age) == count, age
    assert value("gatehouse_approved_requests_last_30_days") == 4
    assert value("gatehouse_approval_time_median_seconds") == 4 * 3600
    tiers = {"low": 2, "medium": 0, "high": 2, "critical": 1}
    for tier, count in tiers.items():
        assert value("gatehouse_active_grants", tier=tier) == count, tier
    assert value("gatehouse_grants_expiring_within_7_days") == 3
    assert value("gatehouse_break_glass_grants_active") == 1
    assert value("gatehouse_break_glass_uses_this_month") == break_glass_this_month(scenario.at)
    assert value("gatehouse_open_campaigns") == 1
    assert value("gatehouse_open_campaign_items") == 4
    assert value("gatehouse_open_campaign_items_decided") == 2
    # Counters: every event in the ledger, whatever its age.
    assert value("gatehouse_failed_logins_total") == 4
    assert value("gatehouse_mfa_failures_total") == 1
    violations = {
        "api.authorize.denied": 3,
        "deployment.refused": 1,
        "api.token.refused": 1,
        "api.token.exchange_refused": 1,
    }
    for action, count in violations.items():
        assert value("gatehouse_policy_violations_total", action=action) == count, action
    assert value("gatehouse_authorization_decisions_total", outcome="allowed") == 2
    assert value("gatehouse_authorization_decisions_total", outcome="denied") == 3
    assert value("gatehouse_break_glass_uses_total") == 0
    # The lines themselves, as Prometheus reads them.
    assert 'gatehouse_active_grants{tier="high"} 2.0\n' in body
    assert "# TYPE gatehouse_failed_logins_total counter\n" in body
    assert "# HELP gatehouse_pending_approvals Access requests waiting for a decision" in body


def test_only_our_metrics_each_with_help(client, token, db) -> None:
    body = scrape(client).content.decode()
    families = list(text_string_to_metric_families(body))
    assert families
    for family in families:
        assert family.name.startswith("gatehouse_"), family.name
        assert family.documentation, family.name
    assert "python_gc" not in body and "process_" not in body
    # No approvals yet: the median has no sample rather than a made-up zero.
    assert "\ngatehouse_approval_time_median_seconds " not in body
    assert "gatehouse_approved_requests_last_30_days 0.0" in body


def test_a_scrape_costs_the_same_queries_for_few_and_many_rows(
    client, token, security_admin
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert scrape(client).status_code == 200
        return len(captured)

    add_rows(1, security_admin)
    one = queries()
    add_rows(12, security_admin)
    assert queries() == one <= 6
    assert 'gatehouse_pending_approvals{age="under-1d"}' in scrape(client).content.decode()
