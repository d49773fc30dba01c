"""The audit search form: filters and the keyset page cursor, validated before any query runs."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from django import forms
from django.utils import timezone

from audit.actions import ACTIONS
from audit.selectors import EventFilters
from portal.widgets import DATETIME_HINT, UtcDateTimeInput

_BIGINT_MAX = 2**63 - 1
FILTER_FIELDS = ("actor", "action", "target", "since", "until", "q")
_BAD_CURSOR = "This page link is not valid. Start again from the newest events."


def _is_sequence(value: str) -> bool:
    return value.isascii() and value.isdigit() and 0 < int(value) <= _BIGINT_MAX


def _action_choices() -> list[Any]:
    """Every registered code, and every dotted prefix shared by two or more codes ("auth.")."""
    families: Counter[str] = Counter()
    for code in ACTIONS:
        parts = code.split(".")
        for end in range(1, len(parts)):
            families[".".join(parts[:end]) + "."] += 1
    family_choices = [
        (prefix, f"{prefix}* (all {count})")
        for prefix, count in sorted(families.items())
        if count > 1
    ]
    return [
        ("", "All actions"),
        ("Families of actions", family_choices),
        ("Actions", [(code, code) for code in sorted(ACTIONS)]),
    ]


class UTCDateTimeField(forms.DateTimeField):
    """``YYYY-MM-DD HH:MM[:SS[.ffffff]]`` read as UTC whatever the server's time zone (links
    from an event carry its exact time, to the microsecond)."""

    widget = UtcDateTimeInput(seconds=True)
    default_error_messages = {"invalid": f"Enter a date and time {DATETIME_HINT}."}

    def to_python(self, value: Any) -> datetime | None:
        with timezone.override(UTC):
            return super().to_python(value)


class EventSearchForm(forms.Form):
    """Filters of the audit search page (all optional) and the ``before``/``after`` cursor."""

    actor = forms.CharField(
        required=False,
        max_length=254,
        help_text="Part of a name or email address, or a user id (digits only).",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, email or id"}),
    )
    action = forms.ChoiceField(
        required=False,
        choices=_action_choices,
        help_text="One action, or a family such as auth.* for every sign-in event.",
    )
    target = forms.CharField(
        required=False,
        max_length=200,
        help_text="Part of the target's name or type, its id, or type:id (portal.user:42).",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, type or id"}),
    )
    since = UTCDateTimeField(
        label="From (UTC)",
        required=False,
        help_text="Events at or after this time. Times are UTC, not your local time.",
    )
    until = UTCDateTimeField(
        label="To (UTC)",
        required=False,
        help_text="Events before this time. Times are UTC, not your local time.",
    )
    q = forms.CharField(
        label="Text",
        required=False,
        max_length=200,
        help_text="Words found in the action, actor, target or event details.",
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Any words"}),
    )
    # The page cursor: sequence numbers, never rendered as fields.
    before = forms.CharField(required=False, max_length=20)
    after = forms.CharField(required=False, max_length=20)

    def __init__(self, data: Any = None, *args: Any, **kwargs: Any) -> None:
        # A family may be written as the help text shows it, "auth.*", or as "auth.": both mean
        # every action that starts with "auth.". The select keeps the family chosen either way.
        action = data.get("action", "") if data is not None else ""
        if isinstance(action, str) and action.endswith(".*"):
            data = data.copy()
            data["action"] = action[:-1]
        super().__init__(data, *args, **kwargs)

    def _cursor(self, name: str) -> int | None:
        value = self.cleaned_data.get(name) or ""
        if name in self.errors or (value and not _is_sequence(value)):
            raise forms.ValidationError(_BAD_CURSOR, code="cursor")
        return int(value) if value else None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and until <= since:
            self.add_error("until", "“To” must be later than “From”.")
        try:
            before, after = self._cursor("before"), self._cursor("after")
            if before is not None and after is not None:
                raise forms.ValidationError(_BAD_CURSOR, code="cursor")
        except forms.ValidationError as error:
            self.add_error(None, error)
        else:
            data["before"], data["after"] = before, after
        return data

    def filters(self) -> EventFilters:
        """The validated filters (call after ``is_valid()`` returned True)."""
        data = self.cleaned_data
        return EventFilters(
            actor=data["actor"],
            action=data["action"],
            target=data["target"],
            since=data["since"],
            until=data["until"],
            text=data["q"],
        )
