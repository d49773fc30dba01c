"""Admin views of the pipeline records, read-only: they change only through the portal pages
and the API, whose services write the audit events."""

from __future__ import annotations

from django.contrib import admin

from accessreq.admin import ReadOnlyHistoryAdmin
from accessreq.models import ApiToken, TrustedIssuer, TrustRule


@admin.register(TrustedIssuer)
class TrustedIssuerAdmin(ReadOnlyHistoryAdmin):
    list_display = ("name", "issuer", "audience", "claim_format", "is_active")
    list_filter = ("claim_format", "is_active")
    search_fields = ("name", "issuer")


@admin.register(TrustRule)
class TrustRuleAdmin(ReadOnlyHistoryAdmin):
    list_display = ("service_account", "issuer", "repository", "ref", "environment", "workflow")
    list_select_related = ("service_account", "issuer")
    list_filter = ("issuer",)
    search_fields = ("repository", "service_account__email")


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        *("prefix", "service_account", "kind", "name"),
        *("created_at", "expires_at", "revoked_at", "last_used_at"),
    )
    list_select_related = ("service_account",)
    list_filter = ("kind",)
    search_fields = ("prefix", "name", "service_account__email")
    date_hierarchy = "created_at"
    exclude = ("digest",)  # not a secret, but nothing anyone needs to read either
