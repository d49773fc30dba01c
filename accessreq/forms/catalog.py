"""Forms for the access pages."""

from django import forms

from accessreq.models import RiskTier


class CatalogFilterForm(forms.Form):
    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": "System, environment, name or scope"}
        ),
    )
    tier = forms.ChoiceField(
        label="Risk tier", required=False, choices=[("", "All tiers"), *RiskTier.choices]
    )

    def clean_q(self) -> str:
        value = self.cleaned_data["q"]
        if "\x00" in value:
            raise forms.ValidationError("The search contains characters that are not allowed.")
        return value.strip()
