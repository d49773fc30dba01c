"""The evidence report's content: the scope as launched, dates, reviewers, and one row per item
(what was reviewed, the decision with its second-factor context, the remediation), written as
CSV (formula-safe) or standalone HTML. Rows are read in primary-key pages."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.template.loader import render_to_string

from accessreq.campaign_states import CampaignState, ReviewDecision
from accessreq.evidence.dashboard import (
    Progress,
    ReviewerProgress,
    campaign_progress,
    reviewer_progress,
)
from accessreq.models import (
    LIVE_GRANT_STATES,
    Cadence,
    Campaign,
    DeadlineAction,
    GrantState,
    Operation,
    ProvisioningTask,
    ReviewerRule,
    ReviewItem,
    RiskTier,
)
from accessreq.services.common import now
from audit import verify_bundle as bundle_format
from portal.models import User

ROW_CHUNK = 2000


@dataclass(frozen=True)
class Scope:
    """The template's filters and rules as they stood when the campaign launched."""

    template: str
    environments: list[str]
    tiers: list[str]
    systems: list[str]
    entitlements: list[str]
    include_service_accounts: bool
    reviewer_rule: str
    fallback_reviewer: str
    owner: str
    cadence: str
    duration_days: int
    deadline_action: str
    critical_per_item: bool
    as_of: datetime | None

    def lines(self) -> list[tuple[str, str]]:
        def listed(values: list[str]) -> str:
            return ", ".join(values) if values else "all"

        return [
            ("Environments", listed(self.environments)),
            ("Risk tiers", listed(self.tiers)),
            ("Systems", listed(self.systems)),
            ("Entitlements", listed(self.entitlements)),
            ("Service accounts", "included" if self.include_service_accounts else "excluded"),
            ("Reviewer", self.reviewer_rule),
            ("Fallback reviewer", self.fallback_reviewer),
            ("Campaign owner", self.owner),
            ("Cadence", f"{self.cadence}, {self.duration_days} days to review"),
            ("Deadline action", self.deadline_action),
            (
                "Critical-tier items",
                "decided one by one" if self.critical_per_item else "may be certified in bulk",
            ),
        ]


def _choice_label(choices: Any, value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


def campaign_scope(campaign: Campaign) -> Scope:
    """The template as of the launch (its history), or as it is now if no history reaches back."""
    template = campaign.template
    at = campaign.launched_at or campaign.created_at
    past = (
        template.history.filter(history_date__lte=at)
        .select_related("fallback_reviewer", "owner")
        .order_by("-history_date", "-history_id")
        .first()
    )
    source: Any = past or template
    if past is not None:
        environments = past.environments.values_list("environment__name", flat=True)
        systems = past.systems.values_list("system__name", flat=True)
        entitlements = past.entitlements.select_related(
            "entitlement__system", "entitlement__environment"
        )
        entitlement_names = [str(row.entitlement) for row in entitlements]
    else:
        environments = template.environments.values_list("name", flat=True)
        systems = template.systems.values_list("name", flat=True)
        entitlement_names = [
            str(e) for e in template.entitlements.select_related("system", "environment")
        ]
    return Scope(
        template=source.name,
        environments=sorted(environments),
        tiers=[_choice_label(RiskTier, tier) for tier in source.tiers or []],
        systems=sorted(systems),
        entitlements=sorted(entitlement_names),
        include_service_accounts=source.include_service_accounts,
        reviewer_rule=_choice_label(ReviewerRule, source.reviewer_rule),
        fallback_reviewer=_person(source.fallback_reviewer),
        owner=_person(source.owner),
        cadence=_choice_label(Cadence, source.cadence),
        duration_days=source.duration_days,
        deadline_action=_choice_label(DeadlineAction, source.deadline_action),
        critical_per_item=source.critical_per_item,
        as_of=past.history_date if past is not None else None,
    )


def _person(user: User | None) -> str:
    if user is None:
        return ""
    return f"{user.display_name} <{user.email}>" if user.display_name else user.email


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


@dataclass(frozen=True)
class EvidenceRow:
    """One review item as the report shows it: what was reviewed (the launch snapshot), the
    decision with its second-factor context, and what happened to the access."""

    item_id: int
    holder: str
    holder_email: str
    holder_status: str
    team: str
    entitlement: str
    system: str
    environment: str
    tier: str
    break_glass: bool
    granted_at: datetime | None
    granted_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    reviewer: str
    reviewer_email: str
    assigned_by: str
    decision: str
    decision_label: str
    decided_by: str
    decided_at: datetime | None
    comment: str
    mfa_method: str
    mfa_age_seconds: int | None
    reassigned_to: str
    escalated_at: datetime | None
    deadline_action: str
    revoked: bool
    revoked_at: datetime | None
    remediation: str
    remediated_at: datetime | None

    @property
    def closed_by_deadline(self) -> bool:
        return self.decision == ReviewDecision.EXPIRED

    @property
    def mfa(self) -> str:
        if not self.mfa_method:
            return ""
        if self.mfa_age_seconds is None:
            return self.mfa_method
        return f"{self.mfa_method}, {_age(self.mfa_age_seconds)} old"


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


_ASSIGNED = {"rule": "by the rule", "fallback": "fallback reviewer", "reassigned": "handed on"}


def _remediation(item: Any, open_campaign: bool) -> tuple[str, datetime | None]:
    """What became of the access after the decision, and when the removal was confirmed."""
    grant = item.grant
    decision = item.decision
    if decision == ReviewDecision.PENDING:
        return ("Undecided" if open_campaign else "Not decided (campaign ended without it)"), None
    if decision == ReviewDecision.CERTIFIED:
        return "Kept (certified)", None
    if decision == ReviewDecision.REASSIGNED:
        return f"Handed to {item.reassigned_to_name or 'another reviewer'}", None
    if decision == ReviewDecision.EXPIRED and item.deadline_action != DeadlineAction.REVOKE:
        return "Kept and flagged by the deadline action", None
    if grant.state in LIVE_GRANT_STATES:
        return "Not revoked: the access was still live", None
    if grant.deprovisioned_at is None:
        return "Waiting for connector", None
    if item.removal_task:
        return "Removed, confirmed by the connector", grant.deprovisioned_at
    return "Removed (no connector: access checks refuse it)", grant.deprovisioned_at


def _row(item: Any, open_campaign: bool) -> EvidenceRow:
    snap = item.snapshot or {}
    grant = item.grant
    remediation, remediated_at = _remediation(item, open_campaign)
    status = str(snap.get("holder_status") or "")
    if snap.get("holder_active") is False:
        status = f"{status}, inactive" if status else "inactive"
    granted_by = snap.get("granted_by") or []
    return EvidenceRow(
        item_id=item.pk,
        holder=str(snap.get("holder", "")),
        holder_email=str(snap.get("holder_email", "")),
        holder_status=status,
        team=str(snap.get("team") or item.team_name or ""),
        entitlement=str(snap.get("entitlement", "")),
        system=str(snap.get("system", "")),
        environment=str(snap.get("environment", "")),
        tier=str(snap.get("tier") or item.tier),
        break_glass=bool(snap.get("break_glass")),
        granted_at=_parse_time(snap.get("granted_at")),
        granted_by=", ".join(str(name) for name in granted_by)
        if isinstance(granted_by, list)
        else str(granted_by),
        expires_at=_parse_time(snap.get("expires_at")),
        last_used_at=_parse_time(snap.get("last_used_at")),
        reviewer=item.reviewer.display_name or item.reviewer.email,
        reviewer_email=item.reviewer.email,
        assigned_by=_ASSIGNED.get(item.reviewer_reason, item.reviewer_reason),
        decision=item.decision,
        decision_label=_choice_label(ReviewDecision, item.decision),
        decided_by=str(item.decided_by) if item.decided_by_id else "",
        decided_at=item.decided_at,
        comment=item.comment,
        mfa_method=item.mfa_method,
        mfa_age_seconds=item.mfa_age_seconds,
        reassigned_to=item.reassigned_to_name or "",
        escalated_at=item.escalated_at,
        deadline_action=_choice_label(DeadlineAction, item.deadline_action)
        if item.deadline_action
        else "",
        revoked=grant.state == GrantState.REVOKED,
        revoked_at=grant.revoked_at,
        remediation=remediation,
        remediated_at=remediated_at,
    )


def _report_items(campaign: Campaign) -> QuerySet[ReviewItem]:
    removal = ProvisioningTask.objects.filter(
        grant=OuterRef("grant"), operation=Operation.DEPROVISION
    )
    handed_to = (
        ReviewItem.objects.filter(reassigned_from=OuterRef("pk"))
        .order_by("pk")
        .values("reviewer__display_name")[:1]
    )
    return (
        ReviewItem.objects.filter(campaign=campaign)
        .select_related("reviewer", "decided_by", "grant")
        .annotate(removal_task=Exists(removal), reassigned_to_name=Subquery(handed_to))
        .order_by("pk")
    )


@dataclass
class EvidenceReport:
    """Everything the evidence report says about one campaign; rows are read on demand."""

    campaign: Campaign
    scope: Scope
    progress: Progress
    reviewers: list[ReviewerProgress]
    generated_at: datetime
    generated_by: str
    _deadline_rows: list[EvidenceRow] | None = field(default=None, repr=False)

    @property
    def title(self) -> str:
        return f"{self.campaign.template.name} {self.campaign.period}"

    @property
    def final(self) -> bool:
        return self.campaign.state in (CampaignState.CLOSED, CampaignState.CANCELLED)

    @property
    def item_count(self) -> int:
        return self.progress.total + self.progress.reassigned

    def rows(self, decision: str | None = None) -> Iterator[EvidenceRow]:
        """Every item (or those with ``decision``) in id order, read ``ROW_CHUNK`` at a time."""
        items = _report_items(self.campaign)
        if decision is not None:
            items = items.filter(decision=decision)
        open_campaign = self.campaign.state not in (CampaignState.CLOSED, CampaignState.CANCELLED)
        last = 0
        while True:
            batch = list(items.filter(pk__gt=last)[:ROW_CHUNK])
            for item in batch:
                yield _row(item, open_campaign)
            if len(batch) < ROW_CHUNK:
                return
            last = batch[-1].pk

    def all_rows(self) -> Iterator[EvidenceRow]:
        return self.rows()

    def deadline_rows(self) -> list[EvidenceRow]:
        """Items closed by the deadline action (``expired``)."""
        if self._deadline_rows is None:
            self._deadline_rows = list(self.rows(ReviewDecision.EXPIRED))
        return self._deadline_rows

    def dates(self) -> list[tuple[str, str]]:
        campaign = self.campaign
        return [
            ("State", campaign.get_state_display()),
            ("Period", campaign.period),
            (
                "Launched",
                f"{utc_text(campaign.launched_at)}"
                + (f" by {_person(campaign.launched_by)}" if campaign.launched_by_id else ""),
            ),
            ("Deadline", utc_text(campaign.deadline)),
            (
                "Closed" if campaign.state != CampaignState.CANCELLED else "Cancelled",
                utc_text(campaign.closed_at) if campaign.closed_at else "not yet",
            ),
        ]


def evidence_report(campaign: Campaign, *, actor: Any) -> EvidenceReport:
    clock = now()
    return EvidenceReport(
        campaign=campaign,
        scope=campaign_scope(campaign),
        progress=campaign_progress(campaign, at=clock),
        reviewers=reviewer_progress(campaign, at=clock),
        generated_at=clock,
        generated_by=_person(actor),
    )


def utc_text(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _iso(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else ""


# --- CSV ---------------------------------------------------------------------------------------

CSV_COLUMNS: tuple[tuple[str, Any], ...] = (
    ("item", lambda r: str(r.item_id)),
    ("holder", lambda r: r.holder),
    ("holder email", lambda r: r.holder_email),
    ("holder status at launch", lambda r: r.holder_status),
    ("team", lambda r: r.team),
    ("entitlement", lambda r: r.entitlement),
    ("system", lambda r: r.system),
    ("environment", lambda r: r.environment),
    ("tier", lambda r: r.tier),
    ("break-glass", lambda r: "yes" if r.break_glass else "no"),
    ("granted at", lambda r: _iso(r.granted_at)),
    ("granted by", lambda r: r.granted_by),
    ("expires at", lambda r: _iso(r.expires_at)),
    ("last used at", lambda r: _iso(r.last_used_at)),
    ("reviewer", lambda r: r.reviewer),
    ("reviewer email", lambda r: r.reviewer_email),
    ("reviewer assigned", lambda r: r.assigned_by),
    ("decision", lambda r: r.decision),
    ("decided by", lambda r: r.decided_by),
    ("decided at", lambda r: _iso(r.decided_at)),
    ("comment", lambda r: r.comment),
    ("mfa method", lambda r: r.mfa_method),
    ("mfa age seconds", lambda r: "" if r.mfa_age_seconds is None else str(r.mfa_age_seconds)),
    ("reassigned to", lambda r: r.reassigned_to),
    ("escalated at", lambda r: _iso(r.escalated_at)),
    ("closed by deadline action", lambda r: r.deadline_action),
    ("revoked", lambda r: "yes" if r.revoked else "no"),
    ("revoked at", lambda r: _iso(r.revoked_at)),
    ("remediation", lambda r: r.remediation),
    ("remediated at", lambda r: _iso(r.remediated_at)),
)


def write_csv(report: EvidenceReport, handle: IO[bytes]) -> None:
    """A short header block (campaign, dates, scope, reviewers), a blank line, then one row per
    item. Every cell a spreadsheet would run as a formula is neutralised with a leading quote."""
    text = io.StringIO()
    writer = csv.writer(text)

    def put(cells: list[str]) -> None:
        writer.writerow([bundle_format.neutralise(str(cell)) for cell in cells])

    def flush() -> None:
        handle.write(text.getvalue().encode("utf-8"))
        text.seek(0)
        text.truncate()

    handle.write("\ufeff".encode())  # a BOM, so spreadsheet programs read UTF-8
    put(["Access review evidence", report.title])
    put(["Campaign id", str(report.campaign.pk)])
    for label, value in report.dates():
        put([label, value])
    for label, value in report.scope.lines():
        put([f"Scope: {label}", value])
    progress = report.progress
    put(
        [
            "Items",
            f"{progress.total} to review: {progress.certified} certified, {progress.revoked} "
            f"revoked, {progress.expired} closed by the deadline action, {progress.pending} "
            f"pending; {progress.reassigned} handed on",
        ]
    )
    for reviewer in report.reviewers:
        p = reviewer.progress
        put(
            [
                "Reviewer",
                f"{reviewer.name} <{reviewer.email}>",
                f"{p.decided} of {p.total} decided",
            ]
        )
    put(["Generated", f"{utc_text(report.generated_at)} by {report.generated_by}"])
    put([])
    put([name for name, _ in CSV_COLUMNS])
    for count, row in enumerate(report.rows(), start=1):
        put([get(row) for _, get in CSV_COLUMNS])
        if count % ROW_CHUNK == 0:
            flush()
    flush()


# --- HTML --------------------------------------------------------------------------------------


def write_html(report: EvidenceReport, handle: IO[bytes]) -> None:
    """A standalone HTML document (its styles inside), for the signed bundle and offline reading."""
    html = render_to_string(
        "accessreq/campaigns/evidence_standalone.html",
        {"report": report, "rows": report.rows(), "closed": report.deadline_rows()},
    )
    handle.write(html.encode("utf-8"))
