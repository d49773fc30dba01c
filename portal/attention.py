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


def items_for(request: HttpRequest) -> list[Attention]:
    user = signed_in_user(request)
    items: list[Attention] = []
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
