"""The security admins' SCIM token page: mint (named, with a fresh second factor) and revoke."""

from __future__ import annotations

from typing import Any

from django import forms

from accessreq.forms.approvals import code_field
from scim.tokens import MINT_NEEDS_CODE


class MintScimTokenForm(forms.Form):
    """Name a new SCIM token after the directory that will use it."""

    name = forms.CharField(
        max_length=100,
        help_text="The directory that will use it, e.g. okta-prod or entra-id. It names the "
        "source of every change in the audit log.",
    )
    code = code_field()

    def __init__(self, *args: Any, need_code: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.need_code = need_code

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if self.need_code and not data.get("code"):
            self.add_error("code", MINT_NEEDS_CODE)
        return data


class RevokeScimTokenForm(forms.Form):
    reason = forms.CharField(max_length=200, required=False)
