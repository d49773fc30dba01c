"""Report filters: a period or a moment, and the catalog and people they may narrow to.

Times are UTC like everywhere else (``portal.widgets``); an empty period means the last 30 days
up to now, so a report opened from the menu shows something useful at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms

from accessreq.models import Environment, RiskTier, System
from audit.forms import UTCDateTimeField
from portal.models import Team

DEFAULT_DAYS = 30
# The longest period one report covers: wider questions are several reports.
MAX_PERIOD = timedelta(days=3 * 366)


class _CatalogFilters(forms.Form):
    system = forms.ModelChoiceField(
        queryset=System.objects.order_by("name"), required=False, empty_label="All systems"
    )
    environment = forms.ModelChoiceField(
        queryset=Environment.objects.order_by("name"),
        required=False,
        empty_label="All environments",
    )
    tier = forms.ChoiceField(
        label="Risk tier", choices=[("", "All tiers"), *RiskTier.choices], required=False
    )
    team = forms.ModelChoiceField(
        queryset=Team.objects.order_by("name"), required=False, empty_label="All teams"
    )
    person = forms.CharField(
        required=False,
        max_length=254,
        help_text="Part of a name or email address.",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name or email"}),
    )


class PeriodForm(_CatalogFilters):
    since = UTCDateTimeField(
        label="From (UTC)", required=False, help_text="Empty: 30 days before the end."
    )
    until = UTCDateTimeField(label="To (UTC)", required=False, help_text="Empty: now.")

    def __init__(self, *args: Any, at: datetime, **kwargs: Any) -> None:
        self.at = at
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        until = data.get("until") or self.at
        since = data.get("since") or until - timedelta(days=DEFAULT_DAYS)
        if since >= until:
            raise forms.ValidationError("The period must end after it starts.")
        if until - since > MAX_PERIOD:
            raise forms.ValidationError("A report covers at most three years; narrow the period.")
        data["since"], data["until"] = since, until
        return data


class AsOfForm(_CatalogFilters):
    as_of = UTCDateTimeField(
        label="As of (UTC)",
        required=False,
        help_text="The moment to look at. Empty: now.",
    )

    def __init__(self, *args: Any, at: datetime, **kwargs: Any) -> None:
        self.at = at
        super().__init__(*args, **kwargs)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        as_of = data.get("as_of") or self.at
        if as_of > self.at:
            self.add_error("as_of", "Pick a moment in the past: reports show what happened.")
        data["as_of"] = as_of
        return data
