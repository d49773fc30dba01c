"""Forms of the approver pages: decide one request, approve several, name a delegate."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django import forms

from portal.models import User
from portal.widgets import UtcDateInput

DENY_NEEDS_COMMENT = "Say why you deny the request; the requester will see your comment."
MAX_BULK = 100


class CodeInput(forms.TextInput):
    """An authenticator code typed inline, so a step-up action continues in one step."""

    def __init__(self) -> None:
        super().__init__(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "spellcheck": "false",
                "autocapitalize": "off",
                "size": "10",
                "class": "code-input",
            }
        )

    def format_value(self, value: Any) -> str | None:
        # A code is never echoed back: a used or wrong one is worthless, and retyping is quick.
        return None


def code_field() -> forms.CharField:
    return forms.CharField(
        label="Authenticator code",
        required=False,
        max_length=20,
        help_text="6 digits from your app, or a backup code.",
        widget=CodeInput(),
    )


class DecideForm(forms.Form):
    """Approve or deny one request; ``code`` is only shown when a step-up is due."""

    action = forms.ChoiceField(
        choices=[("approve", "Approve"), ("deny", "Deny")], widget=forms.HiddenInput
    )
    comment = forms.CharField(
        label="Comment",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    code = code_field()
    # The inbox page the form was on, so an error re-renders the same page.
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean_comment(self) -> str:
        return str(self.cleaned_data["comment"]).strip()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("action") == "deny":
            # Denying needs no second factor: refusing access can't widen it.
            data["code"] = ""
            if "comment" in data and not data["comment"]:
                self.add_error("comment", DENY_NEEDS_COMMENT)
        return data


class IdListField(forms.Field):
    """The ids of the rows ticked on a page, in order, each once: bulk actions of the inbox and
    of the reviewer page. ``noun`` and ``verb`` word its errors ("Approve at most 200 requests")."""

    widget = forms.MultipleHiddenInput

    def __init__(self, *, noun: str, verb: str, limit: int = MAX_BULK, **kwargs: Any) -> None:
        self.noun, self.verb, self.limit = noun, verb, limit
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        ids: list[int] = []
        for item in values:
            text = str(item).strip()
            if not text.isdigit() or len(text) > 12:
                article = "an" if self.noun[0] in "aeiou" else "a"
                raise forms.ValidationError(
                    f"The selection holds something that is not {article} {self.noun}."
                )
            if int(text) not in ids:
                ids.append(int(text))
        if len(ids) > self.limit:
            raise forms.ValidationError(f"{self.verb} at most {self.limit} {self.noun}s at a time.")
        return ids


class BulkApproveForm(forms.Form):
    requests = IdListField(
        noun="request",
        verb="Approve",
        error_messages={"required": "Tick the requests you want to approve first."},
    )
    comment = forms.CharField(
        label="Comment for all selected (optional)",
        required=False,
        max_length=2000,
        widget=forms.TextInput(),
    )
    page = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean_comment(self) -> str:
        return str(self.cleaned_data["comment"]).strip()


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        return f"{obj.display_name} — {obj.email}"


class DelegationForm(forms.Form):
    """Who stands in for me, over whole UTC days from ``starts_on`` to ``ends_on`` inclusive."""

    delegate = PersonChoiceField(
        label="Delegate",
        queryset=User.objects.none(),
        empty_label="Choose a person…",
        help_text="Active people, by name. Type the first letters of a name to jump to it.",
    )
    starts_on = forms.DateField(
        label="From (UTC day)",
        widget=UtcDateInput(),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Enter the day as YYYY-MM-DD, for example 2026-06-30."},
    )
    ends_on = forms.DateField(
        label="To (UTC day, inclusive)",
        widget=UtcDateInput(),
        input_formats=["%Y-%m-%d"],
        error_messages={"invalid": "Enter the day as YYYY-MM-DD, for example 2026-07-14."},
        help_text="The delegation ends at the end of this day (UTC). At most 90 days.",
    )
    reason = forms.CharField(
        label="Reason (optional)",
        required=False,
        max_length=200,
        help_text="Shown to your delegate, e.g. “On holiday”.",
    )

    def __init__(self, *args: Any, user: User, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["delegate"]
        assert isinstance(field, PersonChoiceField)
        field.queryset = (
            User.objects.humans()
            .filter(is_active=True)
            .exclude(pk=user.pk)
            .order_by("display_name", "email")
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        starts_on, ends_on = data.get("starts_on"), data.get("ends_on")
        if isinstance(starts_on, date) and isinstance(ends_on, date) and ends_on < starts_on:
            self.add_error("ends_on", "The last day must be on or after the first day.")
        today = datetime.now(UTC).date()
        # Delegations last at most 90 days (the service says so); far dates are refused here so
        # the day arithmetic below can't overflow.
        for name, day in (("starts_on", starts_on), ("ends_on", ends_on)):
            if isinstance(day, date) and not (
                today - timedelta(days=366) <= day <= today + timedelta(days=366)
            ):
                self.add_error(name, "Choose a day within a year from today.")
        return data

    def window(self) -> tuple[datetime, datetime]:
        """00:00 UTC of the first day until 00:00 UTC of the day after the last."""
        starts_on: date = self.cleaned_data["starts_on"]
        ends_on: date = self.cleaned_data["ends_on"]
        return (
            datetime.combine(starts_on, time.min, tzinfo=UTC),
            datetime.combine(ends_on + timedelta(days=1), time.min, tzinfo=UTC),
        )
