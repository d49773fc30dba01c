"""Forms for the provisioning task list."""

from __future__ import annotations

from django import forms


class TaskConfirmForm(forms.Form):
    """Mark a provisioning task done by hand, with an optional note for the record."""

    note = forms.CharField(
        label="Note (optional)",
        required=False,
        max_length=500,
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "e.g. removed from the deploy group"}),
    )
