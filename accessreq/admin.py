"""Admin for the catalog: searchable, filterable, history-tracked and audited."""

from django.contrib import admin

from accessreq.models import Entitlement, Environment, Scope, System
from portal.admin_audit import AuditedAdmin
from portal.templatetags.gatehouse import duration


@admin.register(Scope)
class ScopeAdmin(AuditedAdmin):
    list_display = ("slug", "description")
    search_fields = ("slug", "description")


@admin.register(System)
class SystemAdmin(AuditedAdmin):
    list_display = ("name", "slug", "criticality")
    list_filter = ("criticality",)
    search_fields = ("name", "slug", "description")
    prepopulated_fields = {"slug": ("name",)}
    autocomplete_fields = ("owners",)


@admin.register(Environment)
class EnvironmentAdmin(AuditedAdmin):
    list_display = ("name", "slug", "risk_tier")
    list_filter = ("risk_tier",)
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Entitlement)
class EntitlementAdmin(AuditedAdmin):
    list_display = (
        "name",
        "system",
        "environment",
        "tier",
        "longest_grant",
        "ticket_required",
        "is_active",
    )
    list_filter = (
        "environment__risk_tier",
        "environment",
        "system",
        "ticket_required",
        "is_active",
    )
    list_select_related = ("system", "environment")
    search_fields = ("name", "slug", "system__name", "environment__name", "scopes__slug")
    autocomplete_fields = ("system", "environment", "owners", "scopes")
    prepopulated_fields = {"slug": ("name",)}

    @admin.display(description="Max duration", ordering="max_duration")
    def longest_grant(self, obj: Entitlement) -> str:
        return duration(obj.max_duration)

    @admin.display(description="Risk tier", ordering="environment__risk_tier")
    def tier(self, obj: Entitlement) -> str:
        return obj.environment.get_risk_tier_display()
