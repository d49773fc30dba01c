"""The security dashboard's period and the filters of the lists behind its numbers."""

from __future__ import annotations

from django import forms

from accessreq.models import RiskTier
from accessreq.reports.dashboard import AGE_BUCKETS, DEFAULT_DAYS, PERIOD_DAYS
from audit.forms import UTCDateTimeField


class DashboardPeriodForm(forms.Form):
    """How many days back the dashboard looks (one of the presets)."""

    days = forms.TypedChoiceField(
        label="Period",
        choices=[(days, f"Last {days} days") for days in PERIOD_DAYS],
        coerce=int,
        required=False,
        empty_value=DEFAULT_DAYS,  # type: ignore[arg-type]  # django-stubs say str only
    )


class DrillDownForm(forms.Form):
    """What the link from a number narrows its list to; every field optional."""

    age = forms.ChoiceField(
        required=False, choices=[("", "Any age"), *[(b.key, b.label) for b in AGE_BUCKETS]]
    )
    tier = forms.ChoiceField(required=False, choices=[("", "Any tier"), *RiskTier.choices])
    since = UTCDateTimeField(required=False)
    until = UTCDateTimeField(required=False)

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "“To” must be later than “From”.")
        return data
