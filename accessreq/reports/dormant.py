"""Access held now and not used for a while: candidates to revoke.

A grant is active now when it has started, has not ended and is not revoked. It is dormant when
its last recorded use is more than ``days`` days ago, or when it was never used and was granted
more than ``days`` days ago. Uses are recorded by the authorization API (``grant_touch``, at most
hourly), so access used only outside Gatehouse's API shows as never used.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from django import forms
from django.db.models import F, Q, QuerySet
from django.db.models.functions import Coalesce

from accessreq.models import Grant
from accessreq.reports import common
from accessreq.reports.base import Column, Report, register
from accessreq.reports.forms import _CatalogFilters

DEFAULT_IDLE_DAYS = 30
NEVER_USED = "Never used"


class DormantForm(_CatalogFilters):
    days = forms.IntegerField(
        label="Not used for (days)",
        required=False,
        min_value=1,
        max_value=3650,
        help_text=f"Empty: {DEFAULT_IDLE_DAYS}.",
    )

    def __init__(self, *args: Any, at: datetime, **kwargs: Any) -> None:
        self.at = at
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if data.get("days") is None and "days" not in self.errors:
            data["days"] = DEFAULT_IDLE_DAYS
        return data


def dormant_grants(at: datetime, days: int) -> QuerySet[Grant]:
    """Grants active at ``at`` whose last use (or, never used, whose start) is more than
    ``days`` days before it, annotated with ``idle_since``."""
    cutoff = at - timedelta(days=days)
    return (
        Grant.objects.filter(revoked_at__isnull=True, starts_at__lte=at, expires_at__gt=at)
        .filter(Q(last_used_at__lt=cutoff) | Q(last_used_at__isnull=True, starts_at__lt=cutoff))
        .annotate(idle_since=Coalesce(F("last_used_at"), F("starts_at")))
    )


@register
class Dormant(Report):
    slug = "dormant"
    title = "Dormant access"
    summary = (
        "Access held now that has not been used for a number of days (by the uses the "
        "authorization API records), or was never used since it was granted that long ago."
    )
    form_class = DormantForm
    columns: ClassVar[list[Column]] = [
        Column("person", "Person", 1.6),
        Column("entitlement", "Entitlement", 1.8),
        Column("tier", "Tier", 0.6),
        Column("grant", "Grant", 0.5, link="grant_detail"),
        Column("since", "Held since", 1.0),
        Column("last_used", "Last used", 1.0),
        Column("idle", "Days idle", 0.5),
        Column("until", "Until", 1.0),
        Column("request", "Request", 0.5, link="request_detail"),
    ]

    fields = (
        "pk",
        "beneficiary__display_name",
        "beneficiary__email",
        *common.ENTITLEMENT_FIELDS,
        "starts_at",
        "last_used_at",
        "idle_since",
        "expires_at",
        "request_id",
    )

    def queryset(self) -> QuerySet[Grant]:
        grants = common.catalog_filters(
            dormant_grants(self.at, self.params["days"]),
            self.params,
            entitlement="entitlement",
            person="beneficiary",
        )
        return grants.order_by("idle_since", "pk")

    def facts(self) -> list[tuple[str, str]]:
        return [
            ("Active at", common.utc(self.at)),
            ("Not used for", f"more than {self.params['days']} days"),
            *common.catalog_facts(self.params),
        ]

    def cells(self, grant: dict[str, Any]) -> list[Any]:
        return [
            common.named(grant["beneficiary__display_name"], grant["beneficiary__email"]),
            common.entitlement_text(grant),
            common.tier_text(grant),
            grant["pk"],
            common.utc(grant["starts_at"]),
            common.utc(grant["last_used_at"]) if grant["last_used_at"] else NEVER_USED,
            (self.at - grant["idle_since"]).days,
            common.utc(grant["expires_at"]),
            grant["request_id"],
        ]
