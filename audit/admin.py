"""Read-only admin view of the audit ledger."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import path

from audit.checkpoints import checkpoint_sign
from audit.models import AuditEvent, Checkpoint, SigningKey
from portal.admin_audit import ReadOnlyAdmin
from portal.auth import signed_in_user


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("sequence", "occurred_at", "action", "actor_name", "target_repr", "ip")
    list_filter = ("action", "actor_kind")
    search_fields = ("action", "actor_name", "target_repr", "target_id")
    date_hierarchy = "occurred_at"
    show_full_result_count = False

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in AuditEvent._meta.fields]


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    """Signed tree heads, read-only, with a button that signs one now."""

    list_display = ("tree_size", "signed_at", "key_id", "short_root")
    change_list_template = "admin/audit/checkpoint/change_list.html"

    @admin.display(description="Root hash")
    def short_root(self, obj: Checkpoint) -> str:
        return f"{obj.root_hash[:16]}…"

    def get_urls(self) -> list[Any]:
        urls = [
            path(
                "sign/",
                self.admin_site.admin_view(self.sign_now),
                name="audit_checkpoint_sign",
            )
        ]
        return urls + super().get_urls()

    def sign_now(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST" or not self.has_view_permission(request):
            raise PermissionDenied("Signing a checkpoint needs a POST from a ledger viewer.")
        checkpoint = checkpoint_sign(actor=signed_in_user(request))
        if checkpoint is None:
            self.message_user(request, "Nothing new to sign: the newest checkpoint is current.")
        else:
            self.message_user(
                request,
                f"Signed a checkpoint of {checkpoint.tree_size} events.",
                messages.SUCCESS,
            )
        return redirect("admin:audit_checkpoint_changelist")


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = ("key_id", "created_at", "retired_at", "public_key")
