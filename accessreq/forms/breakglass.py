"""Forms of the break-glass pages: take emergency access, review a use after the fact."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms
from django.conf import settings

from accessreq.forms.approvals import code_field
from accessreq.models import Entitlement, EntitlementQuerySet
from accessreq.services.breakglass import break_glass_limit
from accessreq.services.requests import MIN_JUSTIFICATION
from portal.templatetags.gatehouse import duration as human_duration

PRESET_MINUTES = (30, 60, 120)
NEEDS_CODE = "Enter the code from your authenticator app: break-glass needs a fresh second factor."


def duration_choices(cap: timedelta) -> list[tuple[int, str]]:
    """The presets up to ``cap``; the cap itself when it is shorter than every preset."""
    limit = int(cap.total_seconds() // 60)
    minutes = [m for m in PRESET_MINUTES if m <= limit] or [limit]
    return [(m, human_duration(timedelta(minutes=m))) for m in minutes]


class EmergencyEntitlementField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Entitlement) -> str:
        return f"{obj} (up to {human_duration(break_glass_limit(obj))})"


class BreakGlassForm(forms.Form):
    """What an on-call person fills in to take emergency access at once."""

    entitlement = EmergencyEntitlementField(
        label="Access you need",
        queryset=Entitlement.objects.none(),
        empty_label="Choose the access…",
    )
    incident = forms.CharField(
        label="Incident reference",
        max_length=100,
        help_text="The incident or page you are responding to, for example INC-1234.",
        error_messages={"required": "Give the incident reference (for example INC-1234)."},
    )
    reason = forms.CharField(
        label="What is broken and what you will do",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=f"At least {MIN_JUSTIFICATION} characters. Reviewers read this first.",
        error_messages={"required": "Describe the emergency."},
    )
    duration = forms.TypedChoiceField(
        label="For how long",
        coerce=int,
        widget=forms.RadioSelect,
        help_text="Access ends by itself at the end of this time.",
    )
    code = code_field()

    def __init__(
        self,
        *args: Any,
        entitlements: EntitlementQuerySet,
        need_code: bool,
        cap: timedelta | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        entitlement_field = self.fields["entitlement"]
        assert isinstance(entitlement_field, EmergencyEntitlementField)
        entitlement_field.queryset = entitlements
        duration_field = self.fields["duration"]
        assert isinstance(duration_field, forms.TypedChoiceField)
        overall = timedelta(minutes=settings.BREAK_GLASS_MAX_MINUTES)
        duration_field.choices = duration_choices(min(cap, overall) if cap else overall)
        self.need_code = need_code

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"]).strip()
        if len(reason) < MIN_JUSTIFICATION:
            raise forms.ValidationError(
                f"Describe the emergency in at least {MIN_JUSTIFICATION} characters "
                f"(you wrote {len(reason)})."
            )
        return reason

    def clean_incident(self) -> str:
        return str(self.cleaned_data["incident"]).strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        entitlement, minutes = data.get("entitlement"), data.get("duration")
        if isinstance(entitlement, Entitlement) and isinstance(minutes, int):
            limit = break_glass_limit(entitlement)
            if timedelta(minutes=minutes) > limit:
                self.add_error(
                    "duration", f"{entitlement} can be taken for at most {human_duration(limit)}."
                )
        if self.need_code and not data.get("code"):
            self.add_error("code", NEEDS_CODE)
        return data

    def taken_for(self) -> timedelta:
        return timedelta(minutes=self.cleaned_data["duration"])


class BreakGlassReviewForm(forms.Form):
    """An approver's after-the-fact review of one break-glass use."""

    comment = forms.CharField(
        label="Review comment",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Was the use justified? What was done? This comment is the record.",
        error_messages={
            "required": "Write what you found; the review comment is the record of it."
        },
    )
    revoke = forms.BooleanField(label="Revoke this access now", required=False)
    code = code_field()

    def clean_comment(self) -> str:
        return str(self.cleaned_data["comment"]).strip()
