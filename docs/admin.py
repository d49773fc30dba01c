"""Admin for runbooks: history-tracked; saves go through the docs services, so an admin edit
writes the same audit event as a portal edit and marks the runbook edited in the portal."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from accessreq.errors import NotAllowed, WorkflowError
from docs.models import Runbook
from docs.services import runbook_create, runbook_mark_reviewed, runbook_update
from portal.admin_audit import AuditedAdmin


@admin.register(Runbook)
class RunbookAdmin(AuditedAdmin):
    list_display = (
        "title",
        "slug",
        "category",
        "owner_shown",
        "last_reviewed_at",
        "next_review",
        "overdue",
        "edited_in_portal",
    )
    list_filter = ("category", "edited_in_portal")
    list_select_related = ("owner",)
    search_fields = ("title", "slug", "category", "summary", "owner_email")
    raw_id_fields = ("owner",)
    readonly_fields = (
        "last_reviewed_at",
        "source_hash",
        "edited_in_portal",
        "created_at",
        "updated_at",
        "updated_by",
    )
    fieldsets = (
        (None, {"fields": ("title", "slug", "category", "summary", "body")}),
        ("Ownership and review", {"fields": ("owner", "owner_email", "review_every_days")}),
        (
            "Record",
            {
                "fields": (
                    "last_reviewed_at",
                    "edited_in_portal",
                    "source_hash",
                    "created_at",
                    "updated_at",
                    "updated_by",
                )
            },
        ),
    )
    actions = ("mark_reviewed",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # The slug is the runbook's address and file name: set once.
        if obj is not None:
            return ("slug", *self.readonly_fields)
        return self.readonly_fields

    @admin.display(description="Owner", ordering="owner_email")
    def owner_shown(self, obj: Runbook) -> str:
        return obj.owner_label or "—"

    @admin.display(description="Next review")
    def next_review(self, obj: Runbook) -> Any:
        return obj.next_review_due or "now"

    @admin.display(description="Overdue", boolean=True)
    def overdue(self, obj: Runbook) -> bool:
        return obj.is_overdue

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        assert isinstance(obj, Runbook)
        data = form.cleaned_data
        fields = {
            "title": data["title"],
            "category": data["category"],
            "summary": data.get("summary", ""),
            "body": data.get("body", ""),
            "owner": data.get("owner"),
            "owner_email": data.get("owner_email", ""),
            "review_every_days": data["review_every_days"],
        }
        try:
            if change:
                runbook_update(actor=request.user, runbook=obj, http=request, **fields)  # type: ignore[arg-type]
            else:
                created = runbook_create(
                    actor=request.user,  # type: ignore[arg-type]
                    slug=data["slug"],
                    http=request,
                    **fields,
                )
                obj.pk = created.pk
                obj._state.adding = False
                obj._state.db = created._state.db
        except NotAllowed as error:
            raise PermissionDenied(str(error)) from None
        except WorkflowError as error:
            # The form validated, so this is a race (e.g. the slug was taken meanwhile).
            self.message_user(request, str(error), messages.ERROR)
            raise PermissionDenied(str(error)) from None

    @admin.action(description="Mark the selected runbooks reviewed today")
    def mark_reviewed(self, request: HttpRequest, queryset: QuerySet[Runbook]) -> None:
        marked = 0
        for runbook in queryset:
            try:
                marked += runbook_mark_reviewed(actor=request.user, runbook=runbook, http=request)  # type: ignore[arg-type]
            except NotAllowed as error:
                raise PermissionDenied(str(error)) from None
        self.message_user(request, f"Marked {marked} runbook(s) reviewed today.", messages.SUCCESS)
