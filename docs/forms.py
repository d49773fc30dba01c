"""Forms of the docs pages: search, and the runbook editor."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django import forms
from django.conf import settings

from docs.models import LONGEST_REVIEW_INTERVAL
from docs.services import MAX_BODY, SLUG
from portal.models import User


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Search the runbooks",
        max_length=200,
        required=False,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. break-glass"}),
    )


class RunbookForm(forms.Form):
    """Edit a runbook. The owner is an email: a person with an account there is the owner user
    (and gets the review reminders); otherwise the address is shown as the owner."""

    title = forms.CharField(max_length=200)
    category = forms.CharField(
        max_length=100,
        help_text="Runbooks are listed by category, such as “Everyday access” or “Incidents”.",
    )
    summary = forms.CharField(
        max_length=300,
        required=False,
        help_text="One sentence shown in the docs list and in search results.",
    )
    body = forms.CharField(
        label="Text (Markdown)",
        max_length=MAX_BODY,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 26, "class": "markdown-editor", "spellcheck": "true"}),
        help_text=(
            "Markdown: ## Section headings make the table of contents; a line "
            "{{ diagram:approval-chain prod }} embeds a live diagram. HTML is shown as text."
        ),
    )
    owner_email = forms.EmailField(
        label="Owner (email)",
        required=False,
        help_text=(
            "Who keeps it current. Someone with a Gatehouse account at this address is emailed "
            "when the runbook is due for review."
        ),
    )
    review_every_days = forms.IntegerField(
        label="Review interval",
        help_text="Days between reviews; the owner is reminded when one is due.",
        min_value=1,
        max_value=LONGEST_REVIEW_INTERVAL,
    )
    mark_reviewed = forms.BooleanField(
        label="I have reviewed the whole runbook: mark it reviewed today",
        required=False,
    )
    # When the editor was opened; a save is refused if someone else saved in between.
    opened_version = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, categories: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["category"].widget.attrs["list"] = "runbook-categories"
        self.fields["review_every_days"].initial = settings.RUNBOOK_REVIEW_DAYS
        self.categories = categories or []

    def clean_opened_version(self) -> datetime | None:
        value = self.cleaned_data.get("opened_version") or ""
        if not value:
            return None
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            raise forms.ValidationError("Reload the page and edit again.") from None

    def owner(self) -> User | None:
        email = self.cleaned_data.get("owner_email") or ""
        if not email:
            return None
        return User.objects.humans().filter(email__iexact=email, is_active=True).first()


class RunbookNewForm(RunbookForm):
    slug = forms.SlugField(
        label="Address",
        max_length=100,
        help_text="The last part of its address: /docs/runbooks/<address>/. Lower-case words "
        "joined by hyphens; it can't be changed later.",
    )

    field_order = ["title", "slug", "category", "summary", "owner_email", "review_every_days"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        del self.fields["mark_reviewed"]
        del self.fields["opened_version"]

    def clean_slug(self) -> str:
        slug = str(self.cleaned_data["slug"]).lower()
        if not SLUG.match(slug):
            raise forms.ValidationError("Use lower-case words joined by single hyphens.")
        return slug
