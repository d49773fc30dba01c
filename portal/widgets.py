"""Date and time inputs in one format on every page: ``YYYY-MM-DD HH:MM``, 24-hour, UTC.

The browsers' own pickers (``datetime-local``, ``date``) show the visitor's locale, such as
``mm/dd/yyyy, 12:00 AM``, beside labels and tables in UTC and 24-hour time; plain text inputs
with the format as placeholder say the same thing everywhere.
"""

from __future__ import annotations

from typing import Any

from django import forms

DATETIME_PLACEHOLDER = "YYYY-MM-DD HH:MM"
DATE_PLACEHOLDER = "YYYY-MM-DD"
DATETIME_HINT = "as YYYY-MM-DD HH:MM, 24-hour, UTC (for example 2026-06-30 14:00)"

_COMMON = {"autocomplete": "off", "spellcheck": "false", "autocapitalize": "off"}


class UtcDateTimeInput(forms.DateTimeInput):
    """A text input showing ``YYYY-MM-DD HH:MM`` (values are UTC)."""

    input_type = "text"

    def __init__(self, attrs: dict[str, Any] | None = None, *, seconds: bool = False) -> None:
        base = {**_COMMON, "placeholder": DATETIME_PLACEHOLDER, "class": "input--datetime"}
        super().__init__(
            attrs={**base, **(attrs or {})},
            format="%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M",
        )


class UtcDateInput(forms.DateInput):
    """A text input showing ``YYYY-MM-DD`` (a UTC day)."""

    input_type = "text"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        base = {**_COMMON, "placeholder": DATE_PLACEHOLDER, "class": "input--date"}
        super().__init__(attrs={**base, **(attrs or {})}, format="%Y-%m-%d")
