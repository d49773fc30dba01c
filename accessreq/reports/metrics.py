"""Prometheus metrics for ``/metrics``: the dashboard's numbers, computed when scraped.

Gauges are the state now (pending approvals by age, grants in force by tier, campaigns' items);
counters are ledger events since the beginning (the ledger is append-only, so they only grow).
A registry of our own, not prometheus_client's global one: nothing else (no process or platform
collectors, no other library's metrics) is exposed, and nothing is kept between scrapes, so
every web process answers alike. One scrape costs six queries, whatever the data.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

from accessreq.models import Campaign, RiskTier
from accessreq.reports.dashboard import (
    AGE_BUCKETS,
    DEFAULT_DAYS,
    EXPIRING_DAYS,
    POLICY_VIOLATIONS,
    campaign_completion,
    grant_counts,
    ledger_totals,
    median_time_to_approve,
    month_start,
    period_ending,
    request_counts,
)
from accessreq.services.common import now

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
_LOGIN_FAILED = "auth.login.failed"
_MFA_FAILED = "auth.mfa.failed"
_ALLOWED = "api.authorize.allowed"
_DENIED = "api.authorize.denied"
_BREAK_GLASS = "request.break_glass"


class GatehouseCollector(Collector):
    """Reads the numbers from the database on each scrape (``gatehouse_`` metrics)."""

    def collect(self) -> Iterator[Metric]:
        at = now()
        period = period_ending(at, days=DEFAULT_DAYS)
        window = (period.start, at)
        requests = request_counts(at=at, approved_in=window, break_glass_in=(month_start(at), at))
        median = median_time_to_approve(*window, count=requests.approved)
        grants = grant_counts(at=at)
        completion = campaign_completion(Campaign.objects.all(), at=at)
        violations = [s.action for s in POLICY_VIOLATIONS]
        totals = ledger_totals(
            {_LOGIN_FAILED, _MFA_FAILED, _ALLOWED, _DENIED, _BREAK_GLASS, *violations}
        )

        pending = GaugeMetricFamily(
            "gatehouse_pending_approvals",
            "Access requests waiting for a decision, by how long ago they were submitted.",
            labels=["age"],
        )
        for bucket in AGE_BUCKETS:
            pending.add_metric([bucket.key], requests.pending[bucket.key])
        yield pending

        yield GaugeMetricFamily(
            "gatehouse_approved_requests_last_30_days",
            f"Requests (not break-glass) approved at their last stage in the last "
            f"{DEFAULT_DAYS} days (from midnight, project time zone).",
            value=requests.approved,
        )
        median_gauge = GaugeMetricFamily(
            "gatehouse_approval_time_median_seconds",
            f"Median time from submission to approval of the requests approved in the last "
            f"{DEFAULT_DAYS} days; no sample when there were none.",
        )
        if median is not None:
            median_gauge.add_metric([], median.total_seconds())
        yield median_gauge

        active = GaugeMetricFamily(
            "gatehouse_active_grants",
            "Grants in force now by the clock (started, not ended, not revoked), by the risk tier "
            "of their environment.",
            labels=["tier"],
        )
        for tier in RiskTier:
            active.add_metric([tier.value], grants.by_tier[tier.value])
        yield active
        yield GaugeMetricFamily(
            "gatehouse_grants_expiring_within_7_days",
            f"Grants in force that end within the next {EXPIRING_DAYS} days.",
            value=grants.expiring,
        )
        yield GaugeMetricFamily(
            "gatehouse_break_glass_grants_active",
            "Break-glass (emergency) grants in force now.",
            value=grants.break_glass,
        )
        yield GaugeMetricFamily(
            "gatehouse_break_glass_uses_this_month",
            "Break-glass uses since midnight on the first of this month (project time zone).",
            value=requests.break_glass,
        )

        yield GaugeMetricFamily(
            "gatehouse_open_campaigns",
            "Recertification campaigns open for review.",
            value=len(completion.rows),
        )
        yield GaugeMetricFamily(
            "gatehouse_open_campaign_items",
            "Review items in open campaigns (handed-on items counted once, as their new item).",
            value=completion.total,
        )
        yield GaugeMetricFamily(
            "gatehouse_open_campaign_items_decided",
            "Review items in open campaigns that have a decision.",
            value=completion.decided,
        )

        yield CounterMetricFamily(
            "gatehouse_failed_logins",
            f"Password sign-ins that failed (ledger events {_LOGIN_FAILED}).",
            value=totals[_LOGIN_FAILED],
        )
        yield CounterMetricFamily(
            "gatehouse_mfa_failures",
            f"Wrong, reused or throttled second-factor codes (ledger events {_MFA_FAILED}).",
            value=totals[_MFA_FAILED],
        )
        refused = CounterMetricFamily(
            "gatehouse_policy_violations",
            "Calls refused by policy, by ledger action: denied authorization checks, refused "
            "deployment approvals, dead API tokens presented, CI identities refused.",
            labels=["action"],
        )
        for action in violations:
            refused.add_metric([action], totals[action])
        yield refused
        decisions = CounterMetricFamily(
            "gatehouse_authorization_decisions",
            "Pipeline authorization checks answered, by outcome.",
            labels=["outcome"],
        )
        decisions.add_metric(["allowed"], totals[_ALLOWED])
        decisions.add_metric(["denied"], totals[_DENIED])
        yield decisions
        yield CounterMetricFamily(
            "gatehouse_break_glass_uses",
            f"Break-glass uses ever (ledger events {_BREAK_GLASS}).",
            value=totals[_BREAK_GLASS],
        )


# No describe(): registering must not query the database (the module is imported at start-up).
REGISTRY = CollectorRegistry(auto_describe=False)
REGISTRY.register(GatehouseCollector())


def exposition() -> bytes:
    """Every metric in the Prometheus text format 0.0.4 (``CONTENT_TYPE``)."""
    return generate_latest(REGISTRY)
