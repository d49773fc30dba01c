"""Forms for holding access: revoke or give up a grant, ask to extend it, filter managed grants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django import forms

from portal.templatetags.gatehouse import duration as human_duration

# The lengths people pick from when they ask for more time; never above the entitlement's limit.
EXTENSION_PRESETS = (
    timedelta(hours=1),
    timedelta(hours=8),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
)


class RevokeForm(forms.Form):
    """End a grant now, with the reason the holder and the auditors will read."""

    reason = forms.CharField(
        label="Reason",
        max_length=500,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={
            "required": "Give a reason for revoking; the holder and auditors will see it."
        },
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)


class ExtendForm(forms.Form):
    """Ask for more time on a grant; the request goes through approval again."""

    justification = forms.CharField(
        label="Why do you need it longer?",
        max_length=2000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="Approvers read this. At least 20 characters.",
    )
    duration = forms.TypedChoiceField(
        label="Extend by",
        coerce=lambda seconds: timedelta(seconds=int(seconds)),
        help_text=(
            "Added to your current end time once approved (counted from approval if your access "
            "has ended), never beyond the entitlement's limit."
        ),
    )
    ticket = forms.CharField(label="Ticket reference", max_length=100, required=False)

    def __init__(
        self,
        *args: Any,
        longest: timedelta,
        previous: timedelta,
        ticket_required: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        choices = {d for d in EXTENSION_PRESETS if d <= longest}
        choices.add(min(previous, longest))
        duration = self.fields["duration"]
        assert isinstance(duration, forms.ChoiceField)
        duration.choices = [
            (str(int(d.total_seconds())), human_duration(d)) for d in sorted(choices)
        ]
        duration.initial = str(int(min(previous, longest).total_seconds()))
        if ticket_required:
            self.fields["ticket"].required = True
            self.fields["ticket"].help_text = "This entitlement needs a ticket for every request."
        else:
            del self.fields["ticket"]


class ManagedFilterForm(forms.Form):
    q = forms.CharField(
        label="Filter",
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "System, environment, entitlement or person"}
        ),
    )

    def clean_q(self) -> str:
        value = self.cleaned_data["q"]
        if "\x00" in value:
            raise forms.ValidationError("The filter contains characters that are not allowed.")
        return str(value).strip()
