"""Forms for the second-factor pages."""

from django import forms


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code",
        max_length=20,
        help_text="The 6-digit code from your authenticator app, or one of your backup codes.",
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "text",
                "autofocus": True,
                "spellcheck": "false",
                "autocapitalize": "off",
            }
        ),
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if "\x00" in code:
            raise forms.ValidationError("The code contains characters that are not allowed.")
        return code


class EnrolForm(CodeForm):
    code = forms.CharField(
        label="6-digit code",
        max_length=10,
        help_text="After scanning, enter the code your app shows now.",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )
