"""Forms of the campaign pages: launch a template now, cancel a campaign, close one early."""

from __future__ import annotations

from django import forms

from accessreq.models import CampaignTemplate


class LaunchForm(forms.Form):
    """Launch this period's campaign of an active template (or open the one that exists)."""

    template = forms.ModelChoiceField(
        queryset=CampaignTemplate.objects.filter(is_active=True),
        widget=forms.HiddenInput,
        error_messages={
            "invalid_choice": "That template is paused or gone; nothing was launched.",
            "required": "Choose a template to launch.",
        },
    )


class CancelForm(forms.Form):
    reason = forms.CharField(
        label="Reason",
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit ledger. Pending items stay undecided; nothing is revoked.",
        error_messages={"required": "Say why the campaign is cancelled."},
    )

    def clean_reason(self) -> str:
        return str(self.cleaned_data["reason"]).strip()


class CloseEarlyForm(forms.Form):
    confirm = forms.BooleanField(
        label="Yes, close it now and apply the deadline action to every item still pending",
        error_messages={"required": "Tick the box to confirm closing the campaign early."},
    )
