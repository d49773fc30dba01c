"""Campaign dashboards: who may look, progress overall and per reviewer, the items that need
attention, and decisions per day drawn as stacked bars. Each is a fixed number of queries."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.models import (
    Campaign,
    CampaignTemplate,
    ReviewItem,
)
from accessreq.models.campaigns import CampaignQuerySet
from portal.charts import MAX_DAYS, DayChart, Series, day_chart
from portal.roles import can_read_audit

# The chart shows at most this many days (the most recent ones).
CHART_DAYS = MAX_DAYS
_DECIDED = (ReviewDecision.CERTIFIED, ReviewDecision.REVOKED, ReviewDecision.EXPIRED)
_CHART_KINDS = (ReviewDecision.CERTIFIED, ReviewDecision.REVOKED, ReviewDecision.REASSIGNED)


def campaigns_visible_to(user: Any) -> CampaignQuerySet:
    """Campaigns a person may open: all for security admins and auditors, none for others."""
    if not can_read_audit(user):
        return Campaign.objects.none()
    return Campaign.objects.all()


def templates_visible_to(user: Any) -> QuerySet[CampaignTemplate]:
    if not can_read_audit(user):
        return CampaignTemplate.objects.none()
    return CampaignTemplate.objects.all()


# --- Progress ----------------------------------------------------------------------------------


def _counts(prefix: str = "") -> dict[str, Count]:
    """Aggregates over review items (through ``prefix``, e.g. ``items__``) by decision."""
    pk = f"{prefix}pk"

    def decided(value: Any) -> Q:
        return Q(**{f"{prefix}decision": value})

    return {
        "n_total": Count(pk, filter=~decided(ReviewDecision.REASSIGNED)),
        "n_pending": Count(pk, filter=decided(ReviewDecision.PENDING)),
        "n_decided": Count(pk, filter=Q(**{f"{prefix}decision__in": _DECIDED})),
        "n_certified": Count(pk, filter=decided(ReviewDecision.CERTIFIED)),
        "n_revoked": Count(pk, filter=decided(ReviewDecision.REVOKED)),
        "n_expired": Count(pk, filter=decided(ReviewDecision.EXPIRED)),
        "n_reassigned": Count(pk, filter=decided(ReviewDecision.REASSIGNED)),
        # Escalated at some point, whether decided since or not.
        "n_escalated": Count(pk, filter=Q(**{f"{prefix}escalated_at__isnull": False})),
    }


@dataclass(frozen=True)
class Progress:
    """Items of a campaign (or one reviewer) by decision. A reassigned item is replaced by a new
    pending one, so ``total`` leaves reassigned items out. ``escalated`` counts items ever
    escalated; ``overdue`` those still pending after an open campaign's deadline."""

    total: int = 0
    pending: int = 0
    certified: int = 0
    revoked: int = 0
    expired: int = 0
    reassigned: int = 0
    escalated: int = 0
    overdue: int = 0

    @property
    def decided(self) -> int:
        return self.certified + self.revoked + self.expired

    @property
    def percent(self) -> int:
        return math.floor(100 * self.decided / self.total) if self.total else 100

    @classmethod
    def of(cls, row: Any, *, overdue: bool) -> Progress:
        get = row.get if isinstance(row, dict) else lambda name: getattr(row, name)
        pending = int(get("n_pending") or 0)
        return cls(
            total=int(get("n_total") or 0),
            pending=pending,
            certified=int(get("n_certified") or 0),
            revoked=int(get("n_revoked") or 0),
            expired=int(get("n_expired") or 0),
            reassigned=int(get("n_reassigned") or 0),
            escalated=int(get("n_escalated") or 0),
            overdue=pending if overdue else 0,
        )


def is_overdue(campaign: Campaign, at: datetime) -> bool:
    """Pending items are overdue once an open campaign's deadline has passed."""
    return campaign.state == CampaignState.OPEN and campaign.deadline <= at


def with_progress(campaigns: QuerySet[Campaign]) -> QuerySet[Campaign]:
    """Campaigns annotated with their item counts (``n_total``, ``n_pending``...), one query."""
    return campaigns.annotate(**_counts("items__"))


def campaign_progress(campaign: Campaign, *, at: datetime) -> Progress:
    row = ReviewItem.objects.filter(campaign=campaign).aggregate(**_counts())
    return Progress.of(row, overdue=is_overdue(campaign, at))


@dataclass(frozen=True)
class ReviewerProgress:
    reviewer_id: int
    name: str
    email: str
    progress: Progress


def reviewer_progress(campaign: Campaign, *, at: datetime) -> list[ReviewerProgress]:
    """One row per reviewer, most outstanding first; one query."""
    rows = (
        ReviewItem.objects.filter(campaign=campaign)
        .values("reviewer", "reviewer__display_name", "reviewer__email")
        .annotate(**_counts())
        .order_by("-n_pending", "reviewer__display_name", "reviewer__email", "reviewer")
    )
    overdue = is_overdue(campaign, at)
    return [
        ReviewerProgress(
            reviewer_id=row["reviewer"],
            name=row["reviewer__display_name"] or row["reviewer__email"],
            email=row["reviewer__email"],
            progress=Progress.of(row, overdue=overdue),
        )
        for row in rows
    ]


def attention_items(campaign: Campaign, *, at: datetime) -> QuerySet[ReviewItem]:
    """Pending items that are overdue or escalated, escalated and oldest first."""
    condition = Q(escalated_at__isnull=False)
    if is_overdue(campaign, at):
        condition |= Q(pk__isnull=False)
    return (
        ReviewItem.objects.filter(campaign=campaign, decision=ReviewDecision.PENDING)
        .filter(condition)
        .select_related("reviewer__manager")
        .order_by("escalated_at", "pk")
    )


# --- Decisions over time -----------------------------------------------------------------------


_SERIES = (
    Series(str(ReviewDecision.CERTIFIED), "Certified"),
    Series(str(ReviewDecision.REVOKED), "Revoked"),
    Series(str(ReviewDecision.REASSIGNED), "Handed on"),
)


def decisions_by_day(campaign: Campaign, *, at: datetime) -> DayChart:
    """Certified, revoked and reassigned items per UTC day from launch until today (or the
    close), the last ``CHART_DAYS`` days at most, with the deadline marked; one query."""
    counts: dict[date, dict[str, int]] = {}
    rows = (
        ReviewItem.objects.filter(
            campaign=campaign, decision__in=_CHART_KINDS, decided_at__isnull=False
        )
        .annotate(day=TruncDate("decided_at", tzinfo=UTC))
        .values("day", "decision")
        .annotate(n=Count("pk"))
        .order_by("day")
    )
    for row in rows:
        counts.setdefault(row["day"], {})[row["decision"]] = row["n"]
    start = (campaign.launched_at or campaign.created_at).astimezone(UTC).date()
    end = (campaign.closed_at or at).astimezone(UTC).date()
    if counts:
        start, end = min(start, min(counts)), max(end, max(counts))
    # Bars are wide for a short campaign and narrow for a long one; the plot aims at ~640 units.
    chart = day_chart(
        counts,
        series=_SERIES,
        first=start,
        last=end,
        max_days=CHART_DAYS,
        min_step=12.0,
        max_step=40.0,
    )
    first = chart.days[0].day
    deadline = campaign.deadline.astimezone(UTC)
    if not first <= deadline.date() <= end:
        return chart
    offset = (deadline - datetime.combine(first, datetime.min.time(), tzinfo=UTC)) / timedelta(
        days=1
    )
    return replace(chart, marker_x=chart.x_at(offset), marker_label="deadline")
