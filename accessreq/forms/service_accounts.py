"""Forms for service accounts (tokens, trust rules) and trusted CI issuers."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings

from accessreq.forms.approvals import code_field
from accessreq.models import ClaimFormat, TrustedIssuer

_PATTERN_HELP = "Leave empty for any. * matches anything, e.g. refs/tags/v*."


MINT_NEEDS_CODE = (
    "Enter the code from your authenticator app: minting a long-lived token needs a fresh "
    "second factor."
)


class MintTokenForm(forms.Form):
    """Mint a long-lived token for a service account (shown once)."""

    name = forms.CharField(
        max_length=100,
        help_text="Where it will be used, so you can tell tokens apart: e.g. nightly-deploy.",
    )
    lifetime_days = forms.IntegerField(label="Lifetime (days)", min_value=1)
    code = code_field()

    def __init__(self, *args: Any, need_code: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.need_code = need_code
        # The limit is read per form, so a changed setting applies without a restart.
        limit = settings.API_MINTED_TOKEN_MAX_DAYS
        self.fields["lifetime_days"] = forms.IntegerField(
            label="Lifetime (days)",
            min_value=1,
            max_value=limit,
            initial=limit,
            help_text=f"At most {limit} days. Shorter is safer; rotate it before it ends.",
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.need_code and not data.get("code"):
            self.add_error("code", MINT_NEEDS_CODE)
        return data


class OwnersField(forms.CharField):
    """Owners as email addresses, separated by commas, spaces or new lines; each must be an
    active person."""

    def clean(self, value: Any) -> list[Any]:
        from portal.models import User

        text = super().clean(value)
        emails = sorted({part.lower() for part in re.split(r"[\s,;]+", text or "") if part})
        if not emails:
            raise forms.ValidationError("Name at least one owner by email address.")
        found = {
            person.email.lower(): person
            for person in User.objects.filter(
                email__in=emails, kind=User.Kind.HUMAN, is_active=True
            )
        }
        unknown = [email for email in emails if email not in found]
        if unknown:
            raise forms.ValidationError(f"No active person has the address {', '.join(unknown)}.")
        return [found[email] for email in emails]


class ServiceAccountForm(forms.Form):
    """A new service account (security admins)."""

    name = forms.CharField(
        max_length=64,
        help_text="Lower-case letters, digits and hyphens, after what it deploys: "
        "payments-deployer.",
    )
    owners = OwnersField(
        max_length=2000,
        help_text="Email addresses of the people who answer for it, separated by commas.",
    )
    description = forms.CharField(max_length=200, required=False, help_text="What it is for.")


class OwnersForm(forms.Form):
    owners = OwnersField(
        max_length=2000,
        help_text="Email addresses, separated by commas. At least one; all active people.",
    )


class RevokeTokenForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False, strip=True)


class TrustRuleForm(forms.Form):
    """Which CI jobs may act as the service account."""

    issuer = forms.ModelChoiceField(queryset=TrustedIssuer.objects.none(), empty_label=None)
    repository = forms.CharField(
        max_length=200, help_text="owner/name on GitHub, group/project on GitLab; exact."
    )
    ref = forms.CharField(
        max_length=200, required=False, help_text=f"e.g. refs/heads/main. {_PATTERN_HELP}"
    )
    environment = forms.CharField(
        max_length=100, required=False, help_text="The CI environment name; exact, or empty."
    )
    workflow = forms.CharField(
        max_length=200,
        required=False,
        help_text=f"GitHub: the workflow name; GitLab: ci_config_ref_uri. {_PATTERN_HELP}",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["issuer"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = TrustedIssuer.objects.filter(is_active=True).order_by("name")


class IssuerForm(forms.Form):
    """A CI issuer whose identity tokens Gatehouse trusts."""

    name = forms.CharField(max_length=100)
    issuer = forms.URLField(
        assume_scheme="https",
        label="Issuer URL",
        max_length=300,
        help_text="Exactly the iss claim: https://token.actions.githubusercontent.com, "
        "or your GitLab's URL.",
    )
    audience = forms.CharField(
        max_length=200, initial="gatehouse", help_text="The aud the CI job asks its token for."
    )
    jwks_url = forms.URLField(
        assume_scheme="https",
        label="Key set (JWKS) URL",
        max_length=500,
        help_text="e.g. https://token.actions.githubusercontent.com/.well-known/jwks",
    )
    claim_format = forms.ChoiceField(label="Claims", choices=ClaimFormat.choices)
    is_active = forms.BooleanField(
        label="Active", required=False, initial=True, help_text="Untick to refuse its tokens."
    )

    @classmethod
    def for_issuer(cls, issuer: TrustedIssuer, data: Any = None) -> IssuerForm:
        initial = {field: getattr(issuer, field) for field in cls.base_fields}
        return cls(data, initial=initial)
