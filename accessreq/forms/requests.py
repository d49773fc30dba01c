"""The request form: who it is for, why, for how long, from when.

Only the fields below are read from the POST; anything else a browser sends (state, expires_at,
approver...) never reaches the service. Beneficiary and duration are accepted only from the
choices offered to this person for this entitlement.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django import forms

from accessreq.models import Entitlement
from accessreq.services.common import now
from accessreq.services.requests import LATEST_START, MIN_JUSTIFICATION, START_GRACE
from portal.models import User
from portal.templatetags.gatehouse import duration as human_duration
from portal.widgets import DATETIME_HINT, UtcDateTimeInput

DURATION_PRESETS = (
    timedelta(hours=1),
    timedelta(hours=8),
    timedelta(days=1),
    timedelta(days=7),
    timedelta(days=30),
)
START_FORMAT = "%Y-%m-%dT%H:%M"


def duration_choices(entitlement: Entitlement) -> list[tuple[str, str]]:
    """The presets up to the entitlement's longest grant, and that longest grant itself."""
    longest = entitlement.longest_grant
    durations = [d for d in DURATION_PRESETS if d <= longest]
    if longest not in durations:
        durations.append(longest)
    choices = []
    for value in durations:
        label = human_duration(value)
        if value == longest:
            label += " (maximum)"
        choices.append((str(int(value.total_seconds())), label))
    return choices


def beneficiary_choices(user: User) -> list[User]:
    """The people ``user`` may request for: themself, their active reports, and the active
    service accounts they own; the same rule as ``services.requests.may_request_for``."""
    reports = user.reports.filter(is_active=True, kind=User.Kind.HUMAN).order_by("display_name")
    accounts = user.owned_service_accounts.filter(is_active=True, kind=User.Kind.SERVICE).order_by(
        "display_name"
    )
    return [user, *reports, *accounts]


def _grouped(user: User, people: Iterable[User]) -> list[tuple[str, Any]]:
    reports = [(str(p.pk), str(p)) for p in people if p.kind == User.Kind.HUMAN and p != user]
    accounts = [(str(p.pk), str(p)) for p in people if p.kind == User.Kind.SERVICE]
    groups: list[tuple[str, Any]] = [(str(user.pk), f"Myself ({user})")]
    if reports:
        groups.append(("People who report to you", reports))
    if accounts:
        groups.append(("Service accounts you own", accounts))
    return groups


class DurationChoiceField(forms.ChoiceField):
    """A preset duration in seconds; a value above the maximum gets its own clear message."""

    def __init__(self, *, longest: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.longest = longest

    def validate(self, value: Any) -> None:
        if value not in self.empty_values and not self.valid_value(value):
            try:
                seconds = int(value)
            except (TypeError, ValueError):
                seconds = 0
            if seconds > self.longest.total_seconds():
                raise forms.ValidationError(
                    f"The longest this access can be granted for is "
                    f"{human_duration(self.longest)}.",
                    code="above_max",
                )
            raise forms.ValidationError("Choose one of the durations listed.", code="invalid")
        super().validate(value)


class UtcDateTimeField(forms.Field):
    """A ``YYYY-MM-DD HH:MM`` value read as UTC, whatever the server's TIME_ZONE."""

    widget = UtcDateTimeInput

    def to_python(self, value: Any) -> datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value
        text = str(value).strip()
        for fmt in (START_FORMAT, START_FORMAT + ":%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"):
            try:
                return datetime.strptime(text, fmt).replace(tzinfo=UTC)  # noqa: DTZ007
            except ValueError:
                continue
        raise forms.ValidationError(f"Enter the start {DATETIME_HINT}.", code="invalid")


class AccessRequestForm(forms.Form):
    """Ask for one entitlement; ``people`` are the beneficiaries this person may choose, and
    ``extension`` says the chosen one already holds it (so there is no start time to pick)."""

    beneficiary = forms.ChoiceField(
        label="On behalf of",
        help_text="Who will hold the access. The approvers depend on it (their manager decides).",
        error_messages={
            "invalid_choice": (
                "Choose someone from the list: yourself, a person who reports to you, or a "
                "service account you own."
            )
        },
    )
    justification = forms.CharField(
        label="Why do you need it?",
        min_length=MIN_JUSTIFICATION,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text=(
            f"At least {MIN_JUSTIFICATION} characters. Say what you will do with it, so "
            "approvers can decide without asking you."
        ),
        error_messages={
            "required": "Say why you need this access.",
            "min_length": (
                f"Explain why in at least {MIN_JUSTIFICATION} characters, so approvers can decide."
            ),
        },
    )
    ticket = forms.CharField(
        label="Ticket reference",
        max_length=100,
        help_text="This entitlement needs a ticket, for example CHG-1234 or JIRA-567.",
        error_messages={"required": "This entitlement needs a ticket reference."},
    )
    duration = forms.ChoiceField()  # replaced per entitlement in __init__
    requested_start = UtcDateTimeField(
        label="Start (UTC, optional)",
        required=False,
        help_text=(
            "YYYY-MM-DD HH:MM, 24-hour, in UTC. Leave empty to start as soon as the request "
            "is approved; the duration counts from the start."
        ),
    )

    def __init__(
        self,
        *args: Any,
        entitlement: Entitlement,
        user: User,
        people: list[User],
        extension: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.entitlement = entitlement
        self.user = user
        self.people = {str(p.pk): p for p in people}
        beneficiary = self.fields["beneficiary"]
        assert isinstance(beneficiary, forms.ChoiceField)
        beneficiary.choices = _grouped(user, people)
        beneficiary.initial = str(user.pk)
        if len(people) < 2:
            # Nothing to choose: the person requests for themself, whatever the POST says.
            del self.fields["beneficiary"]
        if not entitlement.ticket_required:
            del self.fields["ticket"]
        if extension:
            # An extension continues the access held now; it has no start of its own.
            del self.fields["requested_start"]
        choices = duration_choices(entitlement)
        self.fields["duration"] = DurationChoiceField(
            label="For how long?",
            longest=entitlement.longest_grant,
            choices=choices,
            initial=choices[0][0],
            widget=forms.RadioSelect,
            help_text=(
                f"At most {human_duration(entitlement.longest_grant)}. Shorter is easier to "
                "approve; you can ask for an extension later."
            ),
            error_messages={"required": "Choose how long you need the access."},
        )

    @property
    def shows_beneficiary(self) -> bool:
        return "beneficiary" in self.fields

    def clean_justification(self) -> str:
        return str(self.cleaned_data["justification"]).strip()

    def clean_beneficiary(self) -> User:
        person = self.people.get(str(self.cleaned_data["beneficiary"]))
        if person is None:  # ChoiceField already refused it; kept for clarity
            raise forms.ValidationError("Choose someone from the list.")
        return person

    def clean_requested_start(self) -> datetime | None:
        """The same rules as the service, reported at the field instead of above the form."""
        start = self.cleaned_data.get("requested_start")
        if start is None:
            return None
        clock = now()
        if start < clock - START_GRACE:
            raise forms.ValidationError(
                f"This time has passed (it is {clock:%Y-%m-%d %H:%M} UTC now). Choose a later "
                "start, or leave it empty to start as soon as the request is approved.",
                code="past",
            )
        if start > clock + LATEST_START:
            raise forms.ValidationError(
                f"Choose a start within the next {LATEST_START.days} days "
                f"(before {clock + LATEST_START:%Y-%m-%d %H:%M} UTC).",
                code="too_late",
            )
        return start

    def clean_duration(self) -> timedelta:
        return timedelta(seconds=int(self.cleaned_data["duration"]))
