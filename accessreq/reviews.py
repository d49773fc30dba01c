"""What a reviewer sees on "My reviews", read in a fixed number of queries.

:func:`reviewer_items` is the filtered, ordered list of one reviewer's items (the view pages it);
:func:`review_rows` adds, for one page of them, what the snapshot can't say on its own: whether
the holder has left or changed team since, separation-of-duties conflicts with what they hold
now, and whom a reassigned item went to. Each kind of context is one query for the whole page,
so the page costs the same whether the reviewer has ten items or five thousand.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Case, Count, IntegerField, Q, QuerySet, Value, When

from accessreq.campaign_states import FINAL_CAMPAIGN_STATES, CampaignState, ReviewDecision
from accessreq.models import (
    LIVE_GRANT_STATES,
    Campaign,
    ConflictRule,
    Grant,
    ReviewItem,
    RiskTier,
    System,
)
from accessreq.services.campaigns import item_needs_step_up
from portal.models import User

_FINAL_ORDER = (
    ReviewDecision.CERTIFIED,
    ReviewDecision.REVOKED,
    ReviewDecision.REASSIGNED,
    ReviewDecision.EXPIRED,
)

# The decision filter: "pending" by default, "all", or one final decision.
DECISION_FILTERS = (
    ("pending", "Waiting for me"),
    ("all", "All"),
    ("certified", "Certified"),
    ("revoked", "Revoked"),
    ("reassigned", "Reassigned"),
    ("expired", "Expired by deadline"),
)


def deadline_phrase(deadline: datetime, at: datetime) -> tuple[str, bool]:
    """``("in 3 days", False)``, ``("today", False)`` or ``("overdue by 2 days", True)``."""
    left = deadline - at
    if left >= timedelta(0):
        if left < timedelta(hours=1):
            return "in less than an hour", False
        if left < timedelta(days=1):
            hours = int(left.total_seconds() // 3600)
            return f"in {hours} hour{'s' if hours != 1 else ''}", False
        return f"in {left.days} day{'s' if left.days != 1 else ''}", False
    late = -left
    if late < timedelta(days=1):
        hours = max(1, int(late.total_seconds() // 3600))
        return f"overdue by {hours} hour{'s' if hours != 1 else ''}", True
    return f"overdue by {late.days} day{'s' if late.days != 1 else ''}", True


@dataclass
class CampaignProgress:
    """One campaign as a reviewer sees it: their own items only."""

    campaign: Campaign
    total: int
    pending: int
    deadline_text: str
    overdue: bool
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def decided(self) -> int:
        return self.total - self.pending

    @property
    def outcomes(self) -> list[tuple[str, str, int]]:
        """``[("certified", "certified", 8), ...]``: the final decisions that occur, in order."""
        return [
            (d.value, d.label.lower(), self.counts[d]) for d in _FINAL_ORDER if self.counts.get(d)
        ]

    @property
    def is_past(self) -> bool:
        return self.campaign.state in FINAL_CAMPAIGN_STATES

    @property
    def accepts_decisions(self) -> bool:
        return self.campaign.state == CampaignState.OPEN

    @property
    def percent(self) -> int:
        return round(100 * self.decided / self.total) if self.total else 100


def campaign_progress(user: User, *, at: datetime) -> list[CampaignProgress]:
    """The reviewer's campaigns with their own decided/total counts, in one query: open ones
    first, soonest deadline first; then past ones, newest first."""
    campaigns = (
        Campaign.objects.filter(items__reviewer=user)
        .annotate(
            my_total=Count("items"),
            past=_past_rank(""),
            **{
                f"my_{d}": Count("items", filter=Q(items__decision=d))
                for d in ReviewDecision.values
            },
        )
        .select_related("template")
        .order_by("past", "deadline", "pk")
    )
    result = []
    for campaign in campaigns:
        text, overdue = deadline_phrase(campaign.deadline, at)
        result.append(
            CampaignProgress(
                campaign=campaign,
                total=campaign.my_total,  # type: ignore[attr-defined]
                pending=campaign.my_pending,  # type: ignore[attr-defined]
                deadline_text=text,
                overdue=overdue and campaign.state == CampaignState.OPEN,
                counts={d: getattr(campaign, f"my_{d}") for d in ReviewDecision.values},
            )
        )
    # Past campaigns read newest first; the query sorted every group by deadline.
    current = [p for p in result if not p.is_past]
    past = sorted((p for p in result if p.is_past), key=lambda p: p.campaign.deadline)
    return current + past[::-1]


def _past_rank(prefix: str) -> Case:
    return Case(
        When(**{f"{prefix}state__in": list(FINAL_CAMPAIGN_STATES)}, then=Value(1)),
        default=Value(0),
        output_field=IntegerField(),
    )


@dataclass(frozen=True)
class ReviewFilters:
    tier: str = ""
    system: int | None = None
    team: str = ""
    decision: str = "pending"
    campaign: int | None = None

    @property
    def narrowed(self) -> bool:
        return bool(self.tier or self.system or self.team or self.campaign) or (
            self.decision != "pending"
        )


def reviewer_items(user: User, filters: ReviewFilters) -> QuerySet[ReviewItem]:
    """The reviewer's items matching ``filters``: current campaigns first (soonest deadline),
    then past ones, pending items before decided ones, then by holder."""
    items = ReviewItem.objects.for_reviewer(user)
    if filters.tier:
        items = items.filter(tier=filters.tier)
    if filters.system:
        items = items.filter(system=filters.system)
    if filters.team:
        items = items.filter(team_name=filters.team)
    if filters.campaign:
        items = items.filter(campaign=filters.campaign)
    if filters.decision != "all":
        items = items.filter(decision=filters.decision)
    return items.select_related(
        "campaign__template",
        "grant__beneficiary__team",
        "decided_by",
        "reassigned_from__decided_by",
    ).order_by(
        _past_rank("campaign__"),
        "campaign__deadline",
        "campaign_id",
        Case(
            When(decision=ReviewDecision.PENDING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
        "grant__beneficiary__display_name",
        "pk",
    )


def filter_choices(user: User) -> tuple[list[tuple[int, str]], list[str]]:
    """The systems and teams that occur in the reviewer's items (two queries)."""
    mine = ReviewItem.objects.for_reviewer(user)
    systems = list(
        System.objects.filter(pk__in=mine.values("system"))
        .order_by("name")
        .values_list("pk", "name")
    )
    teams = list(
        mine.exclude(team_name="")
        .order_by("team_name")
        .values_list("team_name", flat=True)
        .distinct()
    )
    return systems, teams


def _when(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass
class ReviewRow:
    """One review item and the context shown beside it."""

    item: ReviewItem
    reviewer_id: int
    granted_at: datetime | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    # "Left the company" / "Account deactivated"; empty when the holder is still here.
    holder_gone: str = ""
    # Still here, but HR says they are leaving.
    holder_leaving: bool = False
    # The holder's team now, when it differs from the team at launch.
    team_now: str | None = None
    sod_conflicts: list[str] = field(default_factory=list)
    handed_to: User | None = None

    @property
    def snapshot(self) -> dict[str, object]:
        return self.item.snapshot

    @property
    def entitlement_name(self) -> str:
        """The entitlement's own name, without the "system / environment /" the snapshot adds."""
        full = str(self.item.snapshot.get("entitlement") or "")
        prefix = f"{self.item.snapshot.get('system')} / {self.item.snapshot.get('environment')} / "
        return full.removeprefix(prefix)

    @property
    def email_parts(self) -> tuple[str, str]:
        """The holder's email split at "@", so a narrow column breaks it there."""
        local, _, domain = str(self.item.snapshot.get("holder_email") or "").partition("@")
        return local, domain

    @property
    def granted_by(self) -> list[str]:
        names = self.item.snapshot.get("granted_by") or []
        return [str(n) for n in names] if isinstance(names, list) else []

    @property
    def own_access(self) -> bool:
        return self.item.grant.beneficiary_id == self.reviewer_id

    @property
    def pending(self) -> bool:
        return self.item.decision == ReviewDecision.PENDING

    @property
    def decidable(self) -> bool:
        return (
            self.pending and self.item.campaign.state == CampaignState.OPEN and not self.own_access
        )

    @property
    def needs_step_up(self) -> bool:
        return item_needs_step_up(self.item)

    @property
    def per_item_only(self) -> bool:
        """Critical items of a template that wants them decided one by one."""
        return self.item.tier == RiskTier.CRITICAL and self.item.campaign.template.critical_per_item

    @property
    def bulk_eligible(self) -> bool:
        return self.decidable and not self.per_item_only

    @property
    def has_warnings(self) -> bool:
        return bool(
            self.holder_gone
            or self.holder_leaving
            or self.team_now is not None
            or self.sod_conflicts
        )


def review_rows(items: Iterable[ReviewItem], *, reviewer: User, at: datetime) -> list[ReviewRow]:
    """The context of each item (loaded by :func:`reviewer_items`): at most three queries."""
    page = list(items)
    rows = [_row(item, reviewer) for item in page]
    if rows:
        _add_sod_conflicts(rows, at=at)
        _add_handed_to(rows)
    return rows


def _row(item: ReviewItem, reviewer: User) -> ReviewRow:
    snap = item.snapshot
    holder = item.grant.beneficiary
    row = ReviewRow(
        item=item,
        reviewer_id=reviewer.pk,
        granted_at=_when(snap.get("granted_at")),
        expires_at=_when(snap.get("expires_at")),
        last_used_at=_when(snap.get("last_used_at")),
    )
    if (
        snap.get("holder_status") == User.EmploymentStatus.LEFT
        or holder.employment_status == User.EmploymentStatus.LEFT
    ):
        row.holder_gone = "Has left the company"
    elif not holder.is_active:
        row.holder_gone = "Account deactivated"
    elif User.EmploymentStatus.LEAVING in (snap.get("holder_status"), holder.employment_status):
        row.holder_leaving = True
    team_now = holder.team.name if holder.team else ""
    if team_now != (snap.get("team") or ""):
        row.team_now = team_now
    return row


def _add_sod_conflicts(rows: list[ReviewRow], *, at: datetime) -> None:
    """Conflict rules naming the reviewed entitlement where the holder holds the other one now
    (a live grant, not revoked, not ended)."""
    entitlements = {row.item.grant.entitlement_id for row in rows}
    rules = list(
        ConflictRule.objects.filter(Q(first__in=entitlements) | Q(second__in=entitlements))
        .select_related(
            "first__system", "first__environment", "second__system", "second__environment"
        )
        .order_by("pk")
    )
    if not rules:
        return
    others = {r.first_id for r in rules} | {r.second_id for r in rules}
    holders = {row.item.grant.beneficiary_id for row in rows}
    held = set(
        Grant.objects.filter(
            beneficiary__in=holders,
            entitlement__in=others,
            state__in=LIVE_GRANT_STATES,
            revoked_at__isnull=True,
            expires_at__gt=at,
        ).values_list("beneficiary", "entitlement")
    )
    by_entitlement: dict[int, list[ConflictRule]] = defaultdict(list)
    for rule in rules:
        by_entitlement[rule.first_id].append(rule)
        by_entitlement[rule.second_id].append(rule)
    for row in rows:
        entitlement_id = row.item.grant.entitlement_id
        holder_id = row.item.grant.beneficiary_id
        for rule in by_entitlement[entitlement_id]:
            other = rule.second if rule.first_id == entitlement_id else rule.first
            if (holder_id, other.pk) in held:
                row.sod_conflicts.append(f"Also holds {other}: {rule.reason}")


def _add_handed_to(rows: list[ReviewRow]) -> None:
    """Who got each reassigned item."""
    reassigned = [row.item.pk for row in rows if row.item.decision == ReviewDecision.REASSIGNED]
    if not reassigned:
        return
    handed = {
        new.reassigned_from_id: new.reviewer
        for new in ReviewItem.objects.filter(reassigned_from__in=reassigned).select_related(
            "reviewer"
        )
    }
    for row in rows:
        row.handed_to = handed.get(row.item.pk)


def reassign_candidates(reviewer: User, *, limit: int) -> list[User]:
    """Active people the reviewer may hand items to (the holder is refused per item)."""
    return list(
        User.objects.humans()
        .filter(is_active=True)
        .exclude(pk=reviewer.pk)
        .order_by("display_name", "email")
        .only("pk", "email", "display_name")[:limit]
    )
