"""Forms of "My reviews": filter the list, decide one item, hand it on, certify several."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict

from accessreq.forms.approvals import IdListField, code_field
from accessreq.models import RiskTier
from accessreq.reviews import DECISION_FILTERS, ReviewFilters
from portal.models import User

REVOKE_NEEDS_REASON = "Say why the access should be revoked; the holder will see it."
MAX_BULK = 200


class ReviewFilterForm(forms.Form):
    """The GET filters; choices for system, team and campaign come from the reviewer's items."""

    tier = forms.ChoiceField(
        label="Risk tier", required=False, choices=[("", "All tiers"), *RiskTier.choices]
    )
    system = forms.TypedChoiceField(
        label="System", required=False, coerce=int, empty_value=None, choices=[]
    )
    team = forms.ChoiceField(label="Holder's team", required=False, choices=[])
    decision = forms.ChoiceField(label="Decision", required=False, choices=DECISION_FILTERS)
    campaign = forms.TypedChoiceField(
        label="Campaign", required=False, coerce=int, empty_value=None, choices=[]
    )

    def __init__(
        self,
        data: QueryDict | None,
        *,
        systems: list[tuple[int, str]],
        teams: list[str],
        campaigns: list[tuple[int, str]],
    ) -> None:
        super().__init__(data)
        self.fields["system"].choices = [("", "All systems"), *systems]  # type: ignore[attr-defined]
        self.fields["team"].choices = [  # type: ignore[attr-defined]
            ("", "All teams"),
            *((t, t) for t in teams),
        ]
        self.fields["campaign"].choices = [  # type: ignore[attr-defined]
            ("", "All campaigns"),
            *campaigns,
        ]

    def filters(self) -> ReviewFilters:
        """The valid filters; pending items only when nothing (valid) was chosen."""
        if not self.is_bound or not self.is_valid():
            return ReviewFilters()
        data = self.cleaned_data
        return ReviewFilters(
            tier=data["tier"] or "",
            system=data["system"],
            team=data["team"] or "",
            decision=data["decision"] or "pending",
            campaign=data["campaign"],
        )


def filter_query(filters: ReviewFilters, page: int | None = None) -> str:
    """The query string of ``filters`` (and a page), built from cleaned values only."""
    query = QueryDict(mutable=True)
    if filters.tier:
        query["tier"] = filters.tier
    if filters.system:
        query["system"] = str(filters.system)
    if filters.team:
        query["team"] = filters.team
    if filters.decision != "pending":
        query["decision"] = filters.decision
    if filters.campaign:
        query["campaign"] = str(filters.campaign)
    if page and page > 1:
        query["page"] = str(page)
    return query.urlencode()


def back_field() -> forms.CharField:
    """The list's query string the form was posted from, so the reviewer lands back there."""
    return forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)


class ReviewDecideForm(forms.Form):
    """Certify or revoke one item; ``code`` is only shown when a step-up is due."""

    decision = forms.ChoiceField(
        choices=[("certified", "Certify"), ("revoked", "Revoke")], widget=forms.HiddenInput
    )
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    code = code_field()
    back = back_field()

    def clean_comment(self) -> str:
        return str(self.cleaned_data["comment"]).strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("decision") == "revoked" and "comment" in data and not data["comment"]:
            self.add_error("comment", REVOKE_NEEDS_REASON)
        return data


class ReassignForm(forms.Form):
    """Hand one item to another active person, named by email, with a reason."""

    to = forms.EmailField(
        label="Hand it to (email)",
        max_length=254,
        help_text="An active colleague who knows whether this access is needed.",
        widget=forms.EmailInput(attrs={"list": "review-people", "autocomplete": "off"}),
    )
    reason = forms.CharField(
        label="Why",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": "Say why you hand this item on."},
    )
    back = back_field()

    def __init__(self, *args: Any, reviewer: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.reviewer = reviewer

    def clean_to(self) -> User:
        email = str(self.cleaned_data["to"]).strip()
        person = (
            User.objects.humans().filter(email__iexact=email, is_active=True).order_by("pk").first()
        )
        if person is None:
            raise forms.ValidationError(f"No active person has the email address {email}.")
        if person.pk == self.reviewer.pk:
            raise forms.ValidationError("Choose someone else: this item is already yours.")
        return person

    def clean_reason(self) -> str:
        reason = str(self.cleaned_data["reason"]).strip()
        if not reason:
            raise forms.ValidationError("Say why you hand this item on.")
        return reason


class BulkCertifyForm(forms.Form):
    items = IdListField(
        noun="item",
        verb="Certify",
        limit=MAX_BULK,
        error_messages={"required": "Tick the items you want to certify first."},
    )
    code = code_field()
    back = back_field()
