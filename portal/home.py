"""The home page: what needs me, and what do I hold.

Each section appears for the people it concerns (``portal.capabilities``) and says plainly when it
is empty. Reads only; a fixed number of queries whatever the numbers of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Prefetch
from django.http import HttpRequest
from django.urls import reverse

from portal.auth import signed_in_user
from portal.capabilities import Capabilities, for_request
from portal.models import BackupCodeDevice, TOTPDevice, User

SHOWN = 5  # rows per list; the section links to the full page
ENDING_SOON = timedelta(days=3)


@dataclass(frozen=True)
class Attention:
    """One thing waiting for the person, with where to act on it."""

    title: str
    detail: str
    url: str
    level: str = "info"  # info | warning


@dataclass
class Home:
    capabilities: Capabilities
    at: datetime
    waiting: list[Attention] = field(default_factory=list)
    approvals: list[Any] = field(default_factory=list)  # the oldest requests waiting for me
    approvals_total: int = 0
    open_requests: list[Any] = field(default_factory=list)  # (request, progress) pairs
    open_total: int = 0
    holding: list[Any] = field(default_factory=list)  # live grants, soonest end first
    holding_total: int = 0
    account: list[Attention] = field(default_factory=list)

    @property
    def shows_waiting(self) -> bool:
        c = self.capabilities
        return bool(c.approver or c.reviewer or c.security_admin or self.waiting)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _approvals(home: Home, user: User) -> None:
    from accessreq.selectors import break_glass_to_review, inbox

    waiting = inbox(user=user, at=home.at)
    home.approvals_total = waiting.count()
    home.approvals = list(waiting[:SHOWN]) if home.approvals_total else []
    reviews = break_glass_to_review(user=user, at=home.at).count()
    if reviews:
        home.waiting.append(
            Attention(
                title=f"{_plural(reviews, 'break-glass use')} to review",
                detail="Emergency access must be reviewed within a day of its use.",
                url=reverse("approvals"),
                level="warning",
            )
        )


def _reviews(home: Home, user: User) -> None:
    from accessreq.campaign_states import CampaignState, ReviewDecision
    from accessreq.models import Campaign, ReviewItem

    if not home.capabilities.reviews_pending:
        return
    per_campaign = (
        ReviewItem.objects.filter(
            reviewer=user, decision=ReviewDecision.PENDING, campaign__state=CampaignState.OPEN
        )
        .values("campaign")
        .annotate(items=Count("pk"), deadline=Min("campaign__deadline"))
        .order_by("deadline")
    )
    rows = list(per_campaign[:SHOWN])
    names = {
        c.pk: str(c)
        for c in Campaign.objects.filter(pk__in=[r["campaign"] for r in rows]).select_related(
            "template"
        )
    }
    for row in rows:
        late = row["deadline"] <= home.at
        home.waiting.append(
            Attention(
                title=f"{_plural(row['items'], 'access review')} in {names[row['campaign']]}",
                detail=(
                    "The deadline has passed: decide now, before the deadline action applies."
                    if late
                    else f"Due by {row['deadline'].astimezone(UTC):%Y-%m-%d %H:%M} UTC."
                ),
                url=reverse("my_reviews"),
                level="warning" if late or row["deadline"] - home.at < ENDING_SOON else "info",
            )
        )


def _security_admin(home: Home) -> None:
    from accessreq.models import ProvisioningTask, TaskStatus

    failed = ProvisioningTask.objects.filter(status=TaskStatus.FAILED).count()
    manual = ProvisioningTask.objects.filter(
        status=TaskStatus.PENDING, connector__kind="manual"
    ).count()
    if failed:
        home.waiting.append(
            Attention(
                title=f"{_plural(failed, 'provisioning task')} failed",
                detail="A connector gave up after its retries; do it by hand or retry.",
                url=reverse("provisioning"),
                level="warning",
            )
        )
    if manual:
        home.waiting.append(
            Attention(
                title=f"{_plural(manual, 'manual provisioning task')} to do",
                detail="Set up or remove access by hand, then mark it done.",
                url=reverse("provisioning"),
            )
        )
    enrolled = TOTPDevice.objects.filter(confirmed=True).values("user_id")
    missing = User.objects.humans().filter(is_active=True).exclude(pk__in=enrolled).count()
    if missing:
        home.waiting.append(
            Attention(
                title=f"{missing} active {'person has' if missing == 1 else 'people have'} "
                "no second factor yet",
                detail="They will be asked to enrol at their next sign-in.",
                url=reverse("admin:portal_user_changelist") + "?mfa=missing",
            )
        )
    leaving = (
        User.objects.humans()
        .filter(is_active=True, employment_status=User.EmploymentStatus.LEAVING)
        .count()
    )
    if leaving:
        home.waiting.append(
            Attention(
                title=f"{leaving} {'person is' if leaving == 1 else 'people are'} leaving",
                detail="Check what they still hold before their last day.",
                url=reverse("admin:portal_user_changelist") + "?employment_status=leaving",
                level="warning",
            )
        )
    inactive = User.objects.humans().filter(is_active=True, inactive_since__isnull=False).count()
    if inactive:
        home.waiting.append(
            Attention(
                title=f"{inactive} {'person has' if inactive == 1 else 'people have'} not "
                "signed in for a long time",
                detail="Their managers were told; ask whether they left or still need access.",
                url=reverse("admin:portal_user_changelist") + "?activity=flagged",
            )
        )
    from accessreq.models import ApiToken

    orphaned = (
        ApiToken.objects.usable()
        .filter(flagged_at__isnull=False)
        .values("service_account")
        .distinct()
        .count()
    )
    if orphaned:
        home.waiting.append(
            Attention(
                title=f"{_plural(orphaned, 'service account')} without an owner",
                detail="Their only owner left and their tokens still work: name a new owner, "
                "then rotate or revoke the flagged tokens.",
                url=reverse("service_accounts"),
                level="warning",
            )
        )


def _open_requests(home: Home, user: User) -> None:
    from accessreq.models import Approval
    from accessreq.progress import stage_progress
    from accessreq.selectors import my_requests
    from accessreq.states import WAITING_STATES

    mine = my_requests(user=user).filter(state__in=WAITING_STATES)
    home.open_total = mine.count()
    if not home.open_total:
        return
    rows = mine.prefetch_related(
        Prefetch(
            "approvals",
            queryset=Approval.objects.only("pk", "request_id", "stage", "decision"),
        )
    )[:SHOWN]
    home.open_requests = [(r, stage_progress(r, list(r.approvals.all()))) for r in rows]


def _holding(home: Home, user: User) -> None:
    from accessreq.models import Grant

    live = Grant.objects.live().filter(beneficiary=user, expires_at__gt=home.at)
    home.holding_total = live.count()
    if home.holding_total:
        home.holding = [
            {
                "grant": grant,
                "left": grant.expires_at - home.at,
                "ending_soon": grant.expires_at - home.at < timedelta(hours=24),
                "scheduled": grant.starts_at > home.at,
            }
            for grant in live.for_listing().order_by("expires_at", "pk")[:SHOWN]
        ]


def _account(home: Home, user: User) -> None:
    from portal.services.mfa import backup_codes_left

    url = reverse("account_security")
    if not BackupCodeDevice.objects.filter(user=user).exists():
        home.account.append(
            Attention(
                title="You have no backup codes",
                detail="Generate a set on Sign-in security: each code signs you in once "
                "if your phone is lost or flat.",
                url=url,
                level="warning",
            )
        )
        return
    left = backup_codes_left(user)
    if left == 0:
        home.account.append(
            Attention(
                title="All your backup codes are used",
                detail="Generate a new set on Sign-in security so you can still sign in "
                "without your phone.",
                url=url,
                level="warning",
            )
        )
    elif left <= 3:
        home.account.append(
            Attention(
                title=f"{_plural(left, 'backup code')} left",
                detail="Generate a new set soon so you can still sign in without your phone.",
                url=url,
                level="warning",
            )
        )


def home_for(request: HttpRequest) -> Home:
    """Everything the home page shows for the signed-in person."""
    from accessreq.services.common import now

    user = signed_in_user(request)
    capabilities = for_request(request)
    home = Home(capabilities=capabilities, at=now())
    if capabilities.approver:
        _approvals(home, user)
    _reviews(home, user)
    if capabilities.security_admin:
        _security_admin(home)
    if capabilities.requester:
        _open_requests(home, user)
    if capabilities.holder:
        _holding(home, user)
    _account(home, user)
    return home
