"""Admin base classes: audited (every save and delete is an audit event) and read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Model
from django.http import Http404, HttpRequest
from simple_history.admin import SimpleHistoryAdmin

from audit.services import record
from portal.history import acting_as


class SafeHistoryAdmin(SimpleHistoryAdmin):
    """simple-history's page for an old version saves its form on POST after checking only the
    *view* permission; here it is read-only unless the person may change the record (and reverting
    is off site-wide, SIMPLE_HISTORY_REVERT_DISABLED)."""

    def _check_id(self, object_id: str) -> None:
        """An address whose id is not one of this model's (``/user/x/history/``) is a 404, not
        the ValueError simple-history's views would raise."""
        try:
            self.model._meta.pk.to_python(object_id)
        except ValidationError:
            raise Http404("No such record.") from None

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> Any:
        self._check_id(object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> Any:
        self._check_id(object_id)
        if request.method not in ("GET", "HEAD"):
            obj = self.get_object(request, object_id)
            if not self.has_change_permission(request, obj):
                raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


class AuditedAdmin(SafeHistoryAdmin):
    """A history-tracked admin; each create, change and delete is an audit event."""

    list_per_page = 50

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        with transaction.atomic(), acting_as(request.user):
            super().save_model(request, obj, form, change)
            record(
                actor=request.user,
                action="admin.object.changed" if change else "admin.object.created",
                target=obj,
                data={"fields": sorted(form.changed_data)},
                request=request,
            )

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        with transaction.atomic(), acting_as(request.user):
            record(actor=request.user, action="admin.object.deleted", target=obj, request=request)
            super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable in the admin, never added, changed or deleted there."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
