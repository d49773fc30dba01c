"""What needs a person's attention, shown on the home page.

Each later feature (approvals waiting, reviews due, grants expiring) adds its items here.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse

from portal import roles
from portal.auth import signed_in_user
from portal.models import TOTPDevice, User
from portal.services.mfa import backup_codes_left


@dataclass(frozen=True)
class Attention:
    title: str
    detail: str
    url: str
    level: str = "info"  # info | warning


def _access_items(user: User) -> list[Attention]:
    """Approvals waiting, break-glass reviews due, and the user's access about to end."""
    from datetime import timedelta

    from accessreq.models import Grant, GrantState, ProvisioningTask, TaskStatus
    from accessreq.selectors import break_glass_to_review, inbox
    from accessreq.services.common import now

    at = now()
    items: list[Attention] = []
    waiting = inbox(user=user, at=at).count()
    if waiting:
        items.append(
            Attention(
                title=f"{waiting} request{'s' if waiting != 1 else ''} waiting for your decision",
                detail="Oldest first in your approvals inbox.",
                url=reverse("approvals"),
                level="warning",
            )
        )
    reviews = break_glass_to_review(user=user, at=at).count()
    if reviews:
        items.append(
            Attention(
                title=f"{reviews} break-glass use{'s' if reviews != 1 else ''} to review",
                detail="Emergency access must be reviewed within a day of its use.",
                url=reverse("approvals"),
                level="warning",
            )
        )
    ending = (
        Grant.objects.filter(
            beneficiary=user,
            state=GrantState.ACTIVE,
            expires_at__gt=at,
            expires_at__lte=at + timedelta(hours=24),
        )
        .select_related("entitlement__system", "entitlement__environment")
        .order_by("expires_at")
    )
    for grant in ending[:3]:
        items.append(
            Attention(
                title=f"Your access to {grant.entitlement} ends at {grant.expires_at:%H:%M} UTC",
                detail="Request an extension if you still need it; it goes through approval.",
                url=reverse("grant_extend", args=[grant.pk]),
            )
        )
    if roles.is_security_admin(user):
        failed = ProvisioningTask.objects.filter(status=TaskStatus.FAILED).count()
        manual = ProvisioningTask.objects.filter(
            status=TaskStatus.PENDING, connector__kind="manual"
        ).count()
        if failed:
            items.append(
                Attention(
                    title=f"{failed} provisioning task{'s' if failed != 1 else ''} failed",
                    detail="A connector gave up after its retries; do it by hand or retry.",
                    url=reverse("provisioning"),
                    level="warning",
                )
            )
        if manual:
            items.append(
                Attention(
                    title=f"{manual} manual provisioning task{'s' if manual != 1 else ''} to do",
                    detail="Set up or remove access by hand, then mark it done.",
                    url=reverse("provisioning"),
                )
            )
    return items


def items_for(request: HttpRequest) -> list[Attention]:
    user = signed_in_user(request)
    items: list[Attention] = _access_items(user)
    left = backup_codes_left(user)
    if left <= 3:
        items.append(
            Attention(
                title=f"{left} backup code{'s' if left != 1 else ''} left",
                detail="Generate a new set so you can still sign in if you lose your phone.",
                url=reverse("account_security"),
                level="warning",
            )
        )
    if roles.is_security_admin(user):
        enrolled = TOTPDevice.objects.filter(confirmed=True).values("user_id")
        missing = User.objects.humans().filter(is_active=True).exclude(pk__in=enrolled).count()
        if missing:
            items.append(
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
            items.append(
                Attention(
                    title=f"{leaving} {'person is' if leaving == 1 else 'people are'} leaving",
                    detail="Check what they still hold before their last day.",
                    url=reverse("admin:portal_user_changelist") + "?employment_status=leaving",
                    level="warning",
                )
            )
    return items
