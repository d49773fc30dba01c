"""The security dashboard: pending approvals by age, time to approve, grants held by risk tier
and about to expire, break-glass uses, campaign completion, and sign-in failures and policy
violations per day from the ledger.

Every number is an aggregate (COUNT ... GROUP BY), so the page costs the same few queries
whatever the row counts; ``/metrics`` (``accessreq.reports.metrics``) reads the same functions.
Each number has the rows behind it: the ``*_q`` conditions below are shared by the counts and
by the lists the numbers link to (``accessreq.reports.dashboard_lists``), so a list always
holds what its number says.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from urllib.parse import urlencode

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, QuerySet
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from accessreq.campaign_states import CampaignState
from accessreq.evidence.dashboard import Progress, is_overdue, with_progress
from accessreq.models import AccessRequest, Campaign, Grant, RequestKind, RiskTier
from accessreq.states import RequestState
from audit.models import AuditEvent
from portal.charts import DayChart, Series, day_chart

PERIOD_DAYS = (7, 30, 90)
DEFAULT_DAYS = 30
EXPIRING_DAYS = 7
# A request that passed its last stage stays approved in these states, whatever followed.
APPROVED_STATES = (
    RequestState.APPROVED,
    RequestState.ACTIVE,
    RequestState.EXPIRED,
    RequestState.REVOKED,
)


@dataclass(frozen=True)
class AgeBucket:
    """Pending requests submitted at least ``from_days`` and less than ``to_days`` ago."""

    key: str
    label: str
    from_days: int
    to_days: int | None

    def q(self, at: datetime) -> Q:
        condition = Q(created_at__lte=at - timedelta(days=self.from_days))
        if self.to_days is not None:
            condition &= Q(created_at__gt=at - timedelta(days=self.to_days))
        return condition


AGE_BUCKETS = (
    AgeBucket("under-1d", "Under 1 day", 0, 1),
    AgeBucket("1-3d", "1–3 days", 1, 3),
    AgeBucket("3-7d", "3–7 days", 3, 7),
    AgeBucket("over-7d", "Over 7 days", 7, None),
)
BUCKETS_BY_KEY = {b.key: b for b in AGE_BUCKETS}


@dataclass(frozen=True)
class LedgerSeries(Series):
    """A series counted from the ledger: events whose action is ``action``."""

    action: str = ""


SIGN_IN_FAILURES = (
    LedgerSeries("login-failed", "Failed sign-ins", "auth.login.failed"),
    LedgerSeries("mfa-failed", "MFA failures", "auth.mfa.failed"),
)
# Calls refused by policy: denied authorization checks, refused deployment approvals, dead
# tokens presented and CI identities refused at the exchange. (A separation-of-duties conflict
# is refused before a request exists and writes no event, so the ledger cannot count it.)
POLICY_VIOLATIONS = (
    LedgerSeries("authorize-denied", "Authorization denied", "api.authorize.denied"),
    LedgerSeries("deployment-refused", "Deployment refused", "deployment.refused"),
    LedgerSeries("token-refused", "Dead API token used", "api.token.refused"),
    LedgerSeries("exchange-refused", "CI identity refused", "api.token.exchange_refused"),
)
LEDGER_SERIES = SIGN_IN_FAILURES + POLICY_VIOLATIONS


# --- Time ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Period:
    """The last ``days`` days in the project's time zone: from midnight ``days - 1`` days ago
    until ``end`` (the clock), so "7 days" is today and the six days before it."""

    days: int
    start: datetime
    end: datetime
    tz: tzinfo

    @property
    def first(self) -> date:
        return self.start.astimezone(self.tz).date()

    @property
    def last(self) -> date:
        return self.end.astimezone(self.tz).date()

    def day_bounds(self, day: date) -> tuple[datetime, datetime]:
        """The part of ``day`` (in the time zone) inside the period, as UTC times."""
        since = datetime.combine(day, time.min, tzinfo=self.tz).astimezone(UTC)
        until = datetime.combine(day + timedelta(days=1), time.min, tzinfo=self.tz)
        return max(since, self.start), min(until.astimezone(UTC), self.end)


def period_ending(at: datetime, *, days: int, tz: tzinfo | None = None) -> Period:
    zone = tz or timezone.get_default_timezone()
    first = at.astimezone(zone).date() - timedelta(days=days - 1)
    start = datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC)
    return Period(days=days, start=start, end=at, tz=zone)


def month_start(at: datetime, tz: tzinfo | None = None) -> datetime:
    """Midnight on the first of ``at``'s month in the project's time zone, as UTC."""
    zone = tz or timezone.get_default_timezone()
    first = at.astimezone(zone).date().replace(day=1)
    return datetime.combine(first, time.min, tzinfo=zone).astimezone(UTC)


# --- The rows behind the numbers -------------------------------------------------------------


def pending_q(at: datetime, bucket: AgeBucket | None = None) -> Q:
    condition = Q(state=RequestState.PENDING)
    return condition & bucket.q(at) if bucket else condition


def approved_q(since: datetime, until: datetime) -> Q:
    """Requests (not break-glass) whose last stage was approved in ``[since, until)``."""
    return Q(state__in=APPROVED_STATES, decided_at__gte=since, decided_at__lt=until) & ~Q(
        kind=RequestKind.BREAK_GLASS
    )


def break_glass_q(since: datetime, until: datetime) -> Q:
    return Q(kind=RequestKind.BREAK_GLASS, created_at__gte=since, created_at__lt=until)


def held_q(at: datetime) -> Q:
    """Grants in force at ``at`` by the clock (the rule of ``selectors.holds_scope``), whether
    or not the activation and expiry jobs have caught up."""
    return Q(revoked_at__isnull=True, starts_at__lte=at, expires_at__gt=at)


def expiring_q(at: datetime) -> Q:
    return held_q(at) & Q(expires_at__lte=at + timedelta(days=EXPIRING_DAYS))


def ledger_q(series: Iterable[LedgerSeries], since: datetime, until: datetime) -> Q:
    actions = [s.action for s in series]
    return Q(action__in=actions, occurred_at__gte=since, occurred_at__lt=until)


# --- Aggregates ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestCounts:
    pending: dict[str, int]  # by age bucket key
    approved: int
    break_glass: int

    @property
    def pending_total(self) -> int:
        return sum(self.pending.values())


def request_counts(
    *,
    at: datetime,
    approved_in: tuple[datetime, datetime],
    break_glass_in: tuple[datetime, datetime],
) -> RequestCounts:
    """Pending requests by age, approvals and break-glass uses in their periods; one query."""
    buckets = {
        f"pending_{n}": Count("pk", filter=pending_q(at, b)) for n, b in enumerate(AGE_BUCKETS)
    }
    row = AccessRequest.objects.order_by().aggregate(
        **buckets,
        approved=Count("pk", filter=approved_q(*approved_in)),
        break_glass=Count("pk", filter=break_glass_q(*break_glass_in)),
    )
    return RequestCounts(
        pending={b.key: row[f"pending_{n}"] for n, b in enumerate(AGE_BUCKETS)},
        approved=row["approved"],
        break_glass=row["break_glass"],
    )


def median_time_to_approve(since: datetime, until: datetime, *, count: int) -> timedelta | None:
    """The median of submitted -> approved over the ``count`` requests approved in the period:
    the middle one or two rows by duration, one query (no percentile function on SQLite)."""
    if not count:
        return None
    waits = (
        AccessRequest.objects.filter(approved_q(since, until))
        .annotate(
            wait=ExpressionWrapper(F("decided_at") - F("created_at"), output_field=DurationField())
        )
        .order_by("wait", "pk")
        .values_list("wait", flat=True)
    )
    middle = list(waits[(count - 1) // 2 : count // 2 + 1])
    if not middle:  # rows changed between the count and now
        return None
    return sum(middle, timedelta()) / len(middle)


@dataclass(frozen=True)
class GrantCounts:
    by_tier: dict[str, int]
    expiring: int
    break_glass: int

    @property
    def total(self) -> int:
        return sum(self.by_tier.values())


def grant_counts(*, at: datetime) -> GrantCounts:
    """Grants in force now by their environment's risk tier, those ending within
    ``EXPIRING_DAYS`` and break-glass ones; one query."""
    tiers = {
        f"tier_{tier.value}": Count("pk", filter=Q(entitlement__environment__risk_tier=tier))
        for tier in RiskTier
    }
    row = (
        Grant.objects.filter(held_q(at))
        .order_by()
        .aggregate(
            **tiers,
            expiring=Count("pk", filter=Q(expires_at__lte=at + timedelta(days=EXPIRING_DAYS))),
            break_glass=Count("pk", filter=Q(break_glass=True)),
        )
    )
    return GrantCounts(
        by_tier={tier.value: row[f"tier_{tier.value}"] for tier in RiskTier},
        expiring=row["expiring"],
        break_glass=row["break_glass"],
    )


@dataclass(frozen=True)
class CampaignCompletion:
    rows: list[tuple[Campaign, Progress]]

    @property
    def decided(self) -> int:
        return sum(p.decided for _, p in self.rows)

    @property
    def total(self) -> int:
        return sum(p.total for _, p in self.rows)

    @property
    def percent(self) -> int | None:
        """Items decided of all items in open campaigns, rounded down (None: none open)."""
        if not self.rows:
            return None
        return math.floor(100 * self.decided / self.total) if self.total else 100


def campaign_completion(campaigns: QuerySet[Campaign], *, at: datetime) -> CampaignCompletion:
    """Open campaigns with their items decided of total, soonest deadline first; one query."""
    open_campaigns = with_progress(
        campaigns.filter(state=CampaignState.OPEN).select_related("template")
    ).order_by("deadline", "pk")
    return CampaignCompletion(
        [(c, Progress.of(c, overdue=is_overdue(c, at))) for c in open_campaigns]
    )


def ledger_by_day(series: Iterable[LedgerSeries], period: Period) -> dict[date, dict[str, int]]:
    """Events of each series' action per day (in the period's time zone); one query."""
    series = list(series)
    key_of = {s.action: s.key for s in series}
    rows = (
        AuditEvent.objects.filter(ledger_q(series, period.start, period.end))
        .annotate(day=TruncDate("occurred_at", tzinfo=period.tz))
        .values("day", "action")
        .annotate(n=Count("pk"))
        .order_by()
    )
    counts: dict[date, dict[str, int]] = {}
    for row in rows:
        counts.setdefault(row["day"], {})[key_of[row["action"]]] = row["n"]
    return counts


def ledger_totals(actions: Iterable[str]) -> dict[str, int]:
    """Events per action over the whole ledger (for counters); one query."""
    wanted = list(actions)
    rows = (
        AuditEvent.objects.filter(action__in=wanted)
        .values("action")
        .annotate(n=Count("pk"))
        .order_by()
    )
    totals = dict.fromkeys(wanted, 0)
    totals.update({row["action"]: row["n"] for row in rows})
    return totals


# --- Links -----------------------------------------------------------------------------------


def _utc(value: datetime) -> str:
    """A time as the audit search reads it (UTC, to the microsecond when it has them)."""
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%d %H:%M:%S.%f}" if value.microsecond else f"{value:%Y-%m-%d %H:%M:%S}"


def audit_search_url(action: str, since: datetime, until: datetime) -> str:
    query = urlencode({"action": action, "since": _utc(since), "until": _utc(until)})
    return f"{reverse('audit:search')}?{query}"


def list_url(kind: str, **params: str) -> str:
    url = reverse("reports_dashboard_list", args=[kind])
    query = urlencode({k: v for k, v in params.items() if v})
    return f"{url}?{query}" if query else url


def _window(since: datetime, until: datetime) -> dict[str, str]:
    return {"since": _utc(since), "until": _utc(until)}


# --- The page --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stat:
    """One headline number, what it counts, and the list behind it."""

    key: str
    label: str
    value: str
    url: str
    note: str = ""
    alert: bool = False


@dataclass(frozen=True)
class Row:
    """One line of a breakdown: its count, the list behind it, and its bar's length (percent
    of the largest line's count)."""

    label: str
    count: int
    url: str
    key: str = ""
    share: int = 0


def _shared(rows: list[Row]) -> list[Row]:
    largest = max((r.count for r in rows), default=0)
    return [replace(r, share=round(100 * r.count / largest) if largest else 0) for r in rows]


@dataclass(frozen=True)
class Dashboard:
    at: datetime
    period: Period
    month_start: datetime
    requests: RequestCounts
    median: timedelta | None
    grants: GrantCounts
    campaigns: CampaignCompletion
    ledger: dict[str, int]  # totals in the period by series key
    sign_in_chart: DayChart
    violations_chart: DayChart
    stats: list[Stat] = field(default_factory=list)
    pending_rows: list[Row] = field(default_factory=list)
    tier_rows: list[Row] = field(default_factory=list)
    sign_in_rows: list[Row] = field(default_factory=list)
    violation_rows: list[Row] = field(default_factory=list)

    @property
    def violations(self) -> int:
        return sum(self.ledger[s.key] for s in POLICY_VIOLATIONS)

    @property
    def violations_url(self) -> str:
        return list_url("violations", **_window(self.period.start, self.period.end))


def _chart(
    counts: Mapping[date, Mapping[str, int]],
    series: tuple[LedgerSeries, ...],
    period: Period,
) -> DayChart:
    action_of = {s.key: s.action for s in series}

    def link(day: date, key: str) -> str:
        return audit_search_url(action_of[key], *period.day_bounds(day))

    # ~780 units whatever the period, about the width the chart gets on a laptop: its text
    # stays near its nominal size for 7 days as for 90.
    return day_chart(
        counts,
        series=series,
        first=period.first,
        last=period.last,
        plot_width=720.0,
        max_step=120.0,
        link=link,
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def dashboard(*, campaigns: QuerySet[Campaign], at: datetime, days: int) -> Dashboard:
    """Everything on the page for the last ``days`` days up to ``at``: five queries."""
    period = period_ending(at, days=days)
    month = month_start(at, period.tz)
    window = (period.start, period.end)
    requests = request_counts(at=at, approved_in=window, break_glass_in=(month, at))
    median = median_time_to_approve(*window, count=requests.approved)
    grants = grant_counts(at=at)
    completion = campaign_completion(campaigns, at=at)
    by_day = ledger_by_day(LEDGER_SERIES, period)
    totals = {s.key: sum(c.get(s.key, 0) for c in by_day.values()) for s in LEDGER_SERIES}
    board = Dashboard(
        at=at,
        period=period,
        month_start=month,
        requests=requests,
        median=median,
        grants=grants,
        campaigns=completion,
        ledger=totals,
        sign_in_chart=_chart(by_day, SIGN_IN_FAILURES, period),
        violations_chart=_chart(by_day, POLICY_VIOLATIONS, period),
        pending_rows=_shared(
            [
                Row(b.label, requests.pending[b.key], list_url("pending", age=b.key), b.key)
                for b in AGE_BUCKETS
            ]
        ),
        tier_rows=_shared(
            [
                Row(t.label, grants.by_tier[t.value], list_url("grants", tier=t.value), t.value)
                for t in RiskTier
            ]
        ),
        sign_in_rows=[
            Row(s.label, totals[s.key], audit_search_url(s.action, *window), s.key)
            for s in SIGN_IN_FAILURES
        ],
        violation_rows=[
            Row(s.label, totals[s.key], audit_search_url(s.action, *window), s.key)
            for s in POLICY_VIOLATIONS
        ],
    )
    board.stats.extend(_stats(board))
    return board


def _stats(board: Dashboard) -> list[Stat]:
    from portal.templatetags.gatehouse import duration

    requests, grants, period = board.requests, board.grants, board.period
    window = (period.start, period.end)
    waiting_long = requests.pending["3-7d"] + requests.pending["over-7d"]
    risky = grants.by_tier[RiskTier.HIGH] + grants.by_tier[RiskTier.CRITICAL]
    completion = board.campaigns
    login, mfa = SIGN_IN_FAILURES
    return [
        Stat(
            "pending",
            "Pending approvals",
            str(requests.pending_total),
            list_url("pending"),
            f"{waiting_long} waiting 3 days or more",
            alert=requests.pending["over-7d"] > 0,
        ),
        Stat(
            "median",
            "Median time to approve",
            duration(board.median) if board.median is not None else "—",
            list_url("approved", **_window(*window)),
            f"over {_plural(requests.approved, 'approved request')}",
        ),
        Stat(
            "grants",
            "Active grants",
            str(grants.total),
            list_url("grants"),
            f"{risky} high or critical",
        ),
        Stat(
            "expiring",
            "Expiring within 7 days",
            str(grants.expiring),
            list_url("expiring"),
            "grants in force that end this week",
        ),
        Stat(
            "break-glass",
            "Break-glass this month",
            str(requests.break_glass),
            list_url("break-glass", **_window(board.month_start, board.at)),
            f"since {board.month_start.astimezone(period.tz):%-d %b}; "
            f"{_plural(grants.break_glass, 'grant')} in force",
            alert=grants.break_glass > 0,
        ),
        Stat(
            "campaigns",
            "Review completion",
            "—" if completion.percent is None else f"{completion.percent}%",
            reverse("campaigns"),
            f"{completion.decided} of {_plural(completion.total, 'item')} decided in "
            f"{_plural(len(completion.rows), 'open campaign')}"
            if completion.rows
            else "no open campaigns",
        ),
        Stat(
            "login-failed",
            "Failed sign-ins",
            str(board.ledger[login.key]),
            audit_search_url(login.action, *window),
            f"in the last {period.days} days",
        ),
        Stat(
            "mfa-failed",
            "MFA failures",
            str(board.ledger[mfa.key]),
            audit_search_url(mfa.action, *window),
            f"in the last {period.days} days",
        ),
        Stat(
            "violations",
            "Policy violations",
            str(board.violations),
            board.violations_url,
            f"refused or denied in the last {period.days} days",
            alert=board.violations > 0,
        ),
    ]
