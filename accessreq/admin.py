"""Admin for the catalog, policies and connectors (history-tracked, every edit audited), and
read-only views of requests, grants and their work, which only the workflow services change."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest

from accessreq.errors import WorkflowError
from accessreq.models import (
    TIER_ORDER,
    AccessRequest,
    Approval,
    ApprovalPolicy,
    BirthrightAccess,
    Campaign,
    CampaignTemplate,
    ConflictRule,
    Connector,
    ConnectorKind,
    Delegation,
    Entitlement,
    Environment,
    Grant,
    Notification,
    PolicyStage,
    ProvisioningTask,
    ReviewItem,
    RiskTier,
    Scope,
    StageAssignment,
    System,
)
from accessreq.services.campaigns import campaign_launch, template_schedule_sync
from accessreq.services.common import now
from audit.services import record
from portal.admin_audit import AuditedAdmin, ReadOnlyAdmin, SafeHistoryAdmin
from portal.auth import signed_in_user
from portal.history import acting_as
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
    list_display = ("name", "slug", "risk_tier", "requires_deployment_approval")
    list_filter = ("risk_tier", "requires_deployment_approval")
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
        "emergency_capable",
        "policy",
        "connector",
        "is_active",
    )
    list_filter = (
        "environment__risk_tier",
        "environment",
        "system",
        "ticket_required",
        "emergency_capable",
        "policy",
        "connector",
        "is_active",
    )
    list_select_related = ("system", "environment", "policy", "connector")
    search_fields = ("name", "slug", "system__name", "environment__name", "scopes__slug")
    autocomplete_fields = ("system", "environment", "owners", "scopes", "policy", "connector")
    prepopulated_fields = {"slug": ("name",)}
    fieldsets = (
        (None, {"fields": ("system", "environment", "name", "slug", "description", "scopes")}),
        ("Who owns it", {"fields": ("owners",)}),
        (
            "Requesting",
            {
                "fields": (
                    "max_duration",
                    "ticket_required",
                    "policy",
                    "emergency_capable",
                    "is_active",
                )
            },
        ),
        ("Provisioning", {"fields": ("connector",)}),
    )

    @admin.display(description="Max duration", ordering="max_duration")
    def longest_grant(self, obj: Entitlement) -> str:
        return duration(obj.max_duration)

    @admin.display(description="Risk tier", ordering="environment__risk_tier")
    def tier(self, obj: Entitlement) -> str:
        return obj.environment.get_risk_tier_display()


# --- Policies ---------------------------------------------------------------------------------


def _record_inline_changes(request: HttpRequest, formset: Any) -> None:
    """Save an inline formset with one audit event per stage added, changed or removed."""
    instances = formset.save(commit=False)
    for obj in formset.deleted_objects:
        record(actor=request.user, action="admin.object.deleted", target=obj, request=request)
        obj.delete()
    for obj in instances:
        created = obj.pk is None
        obj.save()
        changed: list[str] = next((fields for o, fields in formset.changed_objects if o is obj), [])
        record(
            actor=request.user,
            action="admin.object.created" if created else "admin.object.changed",
            target=obj,
            data={"fields": sorted(changed)},
            request=request,
        )
    formset.save_m2m()


class PolicyStageInline(admin.TabularInline):
    model = PolicyStage
    extra = 0
    min_num = 1
    fields = ("position", "approver_rule", "quorum", "step_up")
    ordering = ("position",)


@admin.register(ApprovalPolicy)
class ApprovalPolicyAdmin(AuditedAdmin):
    """A policy and its stages, edited together; each stage edit is its own audit event."""

    list_display = ("name", "tier", "stage_summary", "entitlement_count")
    list_filter = ("tier",)
    search_fields = ("name", "description")
    inlines = (PolicyStageInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[ApprovalPolicy]:
        return (
            super()
            .get_queryset(request)
            .prefetch_related("stages")
            .annotate(entitlement_total=Count("entitlements"))
        )

    @admin.display(description="Stages")
    def stage_summary(self, obj: ApprovalPolicy) -> str:
        stages = sorted(obj.stages.all(), key=lambda s: s.position)
        return " → ".join(
            f"{s.get_approver_rule_display()}"
            + (f" ×{s.quorum}" if s.quorum > 1 else "")
            + (" (step-up)" if s.step_up else "")
            for s in stages
        )

    @admin.display(description="Overrides on entitlements", ordering="entitlement_total")
    def entitlement_count(self, obj: Any) -> int:
        return int(obj.entitlement_total)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        with transaction.atomic(), acting_as(request.user):
            _record_inline_changes(request, formset)


@admin.register(ConflictRule)
class ConflictRuleAdmin(AuditedAdmin):
    """Separation of duties: pairs of entitlements nobody may hold together."""

    list_display = ("first", "second", "reason")
    list_select_related = (
        "first__system",
        "first__environment",
        "second__system",
        "second__environment",
    )
    search_fields = ("reason", "first__name", "second__name", "first__system__name")
    autocomplete_fields = ("first", "second")


class BirthrightAccessForm(forms.ModelForm):
    class Meta:
        model = BirthrightAccess
        fields = ("team", "entitlement", "duration")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        entitlement, length = data.get("entitlement"), data.get("duration")
        if entitlement is not None and length is not None:
            if length.total_seconds() <= 0:
                self.add_error("duration", "Choose a duration longer than zero.")
            elif length > entitlement.longest_grant:
                self.add_error(
                    "duration",
                    f"The longest {entitlement} can be granted for is "
                    f"{duration(entitlement.longest_grant)}.",
                )
        return data


@admin.register(BirthrightAccess)
class BirthrightAccessAdmin(AuditedAdmin):
    """Access every member of a team gets on joining or moving into it, without an approval.
    Granted from the next join or move on; people already in the team are not changed."""

    form = BirthrightAccessForm
    list_display = ("team", "entitlement", "duration")
    list_filter = ("team",)
    list_select_related = ("team", "entitlement__system", "entitlement__environment")
    search_fields = ("team__name", "entitlement__name", "entitlement__system__name")
    autocomplete_fields = ("entitlement",)


# --- Connectors -------------------------------------------------------------------------------


class ConnectorForm(forms.ModelForm):
    """The signing secret is write-only: typed in, encrypted, never shown back."""

    url = forms.URLField(
        label="URL",
        required=False,
        assume_scheme="https",
        max_length=200,
        widget=forms.URLInput(attrs={"class": "vURLField"}),
        help_text="Webhook only: where events are POSTed (http or https).",
    )
    secret = forms.CharField(
        label="Signing secret",
        required=False,
        strip=False,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=(
            "Webhook only. Write-only: the secret is stored encrypted and never shown again. "
            "Leave empty to keep the current one."
        ),
    )
    clear_secret = forms.BooleanField(
        label="Remove the stored secret", required=False, help_text="Manual connectors only."
    )

    class Meta:
        model = Connector
        fields = ("name", "kind", "url", "timeout_seconds", "max_attempts", "is_active")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        secret = cleaned.get("secret", "")
        if secret and len(secret) < 16:
            self.add_error("secret", "Use at least 16 characters, ideally a random 32.")
        if cleaned.get("kind") == ConnectorKind.WEBHOOK:
            has_secret = bool(self.instance.secret_encrypted) and not cleaned.get("clear_secret")
            if not secret and not has_secret:
                self.add_error("secret", "A webhook connector needs a signing secret.")
            if not cleaned.get("url"):
                self.add_error("url", "A webhook connector needs a URL to POST events to.")
        return cleaned


@admin.register(Connector)
class ConnectorAdmin(AuditedAdmin):
    form = ConnectorForm
    list_display = ("name", "kind", "url", "has_secret", "max_attempts", "is_active")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "url")
    fieldsets = (
        (None, {"fields": ("name", "kind", "is_active")}),
        (
            "Webhook",
            {"fields": ("url", "secret", "clear_secret", "timeout_seconds", "max_attempts")},
        ),
    )

    @admin.display(description="Secret set", boolean=True)
    def has_secret(self, obj: Connector) -> bool:
        return bool(obj.secret_encrypted)

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        assert isinstance(obj, Connector)
        if form.cleaned_data.get("secret"):
            obj.set_secret(form.cleaned_data["secret"])
        elif form.cleaned_data.get("clear_secret"):
            obj.set_secret("")
        super().save_model(request, obj, form, change)


# --- Read-only: changed only by the workflow services ------------------------------------------


class ReadOnlyHistoryAdmin(ReadOnlyAdmin, SafeHistoryAdmin):
    """Viewable with its field history; never added, changed, deleted or reverted here."""

    list_per_page = 50


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ApprovalInline(ReadOnlyInline):
    model = Approval
    fields = (
        "stage",
        "approver",
        "on_behalf_of",
        "decision",
        "comment",
        "mfa_method",
        "mfa_age_seconds",
        "decided_at",
    )
    readonly_fields = fields


class StageAssignmentInline(ReadOnlyInline):
    model = StageAssignment
    fields = ("stage", "principal", "reason", "created_at")
    readonly_fields = fields


_ENTITLEMENT = ("entitlement__system", "entitlement__environment")


@admin.register(AccessRequest)
class AccessRequestAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        "id",
        "created_at",
        "kind",
        "state",
        "requester",
        "beneficiary",
        "entitlement",
        "current_stage",
    )
    list_filter = ("state", "kind", "entitlement__environment__risk_tier")
    list_select_related = ("requester", "beneficiary", *_ENTITLEMENT)
    search_fields = (
        "=id",
        "requester__email",
        "beneficiary__email",
        "entitlement__name",
        "entitlement__system__name",
        "justification",
        "ticket",
        "incident",
    )
    date_hierarchy = "created_at"
    inlines = (ApprovalInline, StageAssignmentInline)


@admin.register(Grant)
class GrantAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        "id",
        "beneficiary",
        "entitlement",
        "state",
        "break_glass",
        "starts_at",
        "expires_at",
        "provisioned_at",
        "deprovisioned_at",
    )
    list_filter = ("state", "break_glass", "entitlement__environment__risk_tier")
    list_select_related = ("beneficiary", *_ENTITLEMENT)
    search_fields = (
        "=id",
        "beneficiary__email",
        "beneficiary__display_name",
        "entitlement__name",
        "entitlement__system__name",
        "revoke_reason",
    )
    date_hierarchy = "starts_at"


@admin.register(Delegation)
class DelegationAdmin(ReadOnlyHistoryAdmin):
    list_display = ("delegator", "delegate", "starts_at", "ends_at", "cancelled_at", "reason")
    list_select_related = ("delegator", "delegate")
    search_fields = ("delegator__email", "delegate__email", "reason")
    date_hierarchy = "starts_at"


@admin.register(ProvisioningTask)
class ProvisioningTaskAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        "id",
        "operation",
        "grant_link",
        "connector",
        "status",
        "attempts",
        "response_status",
        "created_at",
        "confirmed_at",
    )
    list_filter = ("status", "operation", "connector")
    list_select_related = (
        "connector",
        "grant__beneficiary",
        *("grant__" + f for f in _ENTITLEMENT),
    )
    search_fields = ("=id", "=grant__id", "grant__beneficiary__email", "last_error")
    date_hierarchy = "created_at"

    @admin.display(description="Grant", ordering="grant")
    def grant_link(self, obj: ProvisioningTask) -> str:
        return str(obj.grant)


@admin.register(Notification)
class NotificationAdmin(ReadOnlyHistoryAdmin):
    list_display = ("subject", "recipient", "created_at", "sent_at", "attempts")
    list_filter = ("sent_at",)
    list_select_related = ("recipient",)
    search_fields = ("subject", "recipient__email", "key")
    date_hierarchy = "created_at"


# --- Recertification --------------------------------------------------------------------------


class CampaignTemplateForm(forms.ModelForm):
    """Risk tiers as tick boxes and reminder days as a plain list of numbers."""

    tiers = forms.MultipleChoiceField(
        label="Risk tiers",
        choices=RiskTier.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked for every tier.",
    )
    reminder_days = forms.CharField(
        label="Reminder days",
        required=False,
        max_length=100,
        help_text="Days before the deadline to remind reviewers, e.g. 7, 3, 1. They are also "
        "reminded on the day and, if ticked below, daily after it.",
    )

    class Meta:
        model = CampaignTemplate
        fields = (
            "name",
            "description",
            "is_active",
            "environments",
            "tiers",
            "systems",
            "entitlements",
            "include_service_accounts",
            "reviewer_rule",
            "fallback_reviewer",
            "owner",
            "critical_per_item",
            "cadence",
            "duration_days",
            "reminder_days",
            "remind_daily_after",
            "escalate_after_days",
            "grace_days",
            "deadline_action",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        days = self.initial.get("reminder_days")
        if isinstance(days, list):
            self.initial["reminder_days"] = ", ".join(str(day) for day in days)

    def clean_tiers(self) -> list[str]:
        return sorted(set(self.cleaned_data["tiers"]), key=lambda tier: TIER_ORDER[RiskTier(tier)])

    def clean_reminder_days(self) -> list[int]:
        days: set[int] = set()
        for part in str(self.cleaned_data["reminder_days"]).replace(";", ",").split(","):
            text = part.strip()
            if not text:
                continue
            if not text.isdigit() or not 1 <= int(text) <= 90:
                raise forms.ValidationError(
                    f"“{text}” is not a number of days from 1 to 90; separate days with commas."
                )
            days.add(int(text))
        return sorted(days, reverse=True)


@admin.register(CampaignTemplate)
class CampaignTemplateAdmin(AuditedAdmin):
    """Templates are edited here; saving keeps their beat schedule (django-celery-beat) in step
    with the cadence, and "Launch now" launches this period's campaign through the service."""

    form = CampaignTemplateForm
    list_display = (
        "name",
        "cadence",
        "duration_days",
        "reviewer_rule",
        "deadline_action",
        "schedule",
        "campaign_count",
        "is_active",
    )
    list_filter = ("is_active", "cadence", "reviewer_rule", "deadline_action")
    list_select_related = ("periodic_task__crontab",)
    search_fields = ("name", "description")
    autocomplete_fields = ("environments", "systems", "entitlements", "fallback_reviewer", "owner")
    readonly_fields = ("schedule",)
    actions = ("launch_now",)
    fieldsets = (
        (None, {"fields": ("name", "description", "is_active")}),
        (
            "What is reviewed",
            {
                "description": "Empty filters mean “all”; only active grants are reviewed.",
                "fields": (
                    "environments",
                    "tiers",
                    "systems",
                    "entitlements",
                    "include_service_accounts",
                ),
            },
        ),
        (
            "Who reviews",
            {"fields": ("reviewer_rule", "fallback_reviewer", "owner", "critical_per_item")},
        ),
        ("When", {"fields": ("cadence", "duration_days", "schedule")}),
        (
            "Reminders and the deadline",
            {
                "fields": (
                    "reminder_days",
                    "remind_daily_after",
                    "escalate_after_days",
                    "grace_days",
                    "deadline_action",
                )
            },
        ),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[CampaignTemplate]:
        return super().get_queryset(request).annotate(campaign_total=Count("campaigns"))

    @admin.display(description="Campaigns", ordering="campaign_total")
    def campaign_count(self, obj: Any) -> int:
        return int(getattr(obj, "campaign_total", 0))

    @admin.display(description="Beat schedule")
    def schedule(self, obj: CampaignTemplate) -> str:
        task = obj.periodic_task
        if obj.pk is None or task is None:
            return "Set when the template is saved."
        if not task.enabled:
            return "Paused (the template is inactive)."
        if task.crontab is None:
            return "Edited by hand in the periodic tasks admin."
        cron = task.crontab
        return (
            f"{cron.minute} {cron.hour} {cron.day_of_month} {cron.month_of_year} "
            f"{cron.day_of_week} ({cron.timezone})"
        )

    def save_model(self, request: HttpRequest, obj: Model, form: Any, change: bool) -> None:
        assert isinstance(obj, CampaignTemplate)
        super().save_model(request, obj, form, change)
        with transaction.atomic(), acting_as(request.user):
            template_schedule_sync(obj)

    def delete_model(self, request: HttpRequest, obj: Model) -> None:
        assert isinstance(obj, CampaignTemplate)
        task = obj.periodic_task
        super().delete_model(request, obj)
        if task is not None:
            # Its beat entry would only find a missing template.
            task.delete()

    @admin.action(description="Launch now (this period's campaign)", permissions=["change"])
    def launch_now(self, request: HttpRequest, queryset: QuerySet[CampaignTemplate]) -> None:
        actor = signed_in_user(request)
        for template in queryset.order_by("name"):
            if not template.is_active:
                self.message_user(
                    request, f"{template} is paused; activate it to launch.", messages.WARNING
                )
                continue
            started = now()
            try:
                with acting_as(actor):
                    campaign = campaign_launch(template_id=template.pk, actor=actor)
            except WorkflowError as exc:
                self.message_user(request, f"{template}: {exc}", messages.ERROR)
                continue
            if campaign.created_at < started:
                self.message_user(
                    request,
                    f"{campaign} was already launched; a template runs one campaign per period.",
                    messages.INFO,
                )
            else:
                self.message_user(
                    request,
                    f"Launched {campaign}: {campaign.items.count()} items to review.",
                    messages.SUCCESS,
                )


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyHistoryAdmin):
    list_display = ("__str__", "state", "launched_at", "launched_by", "deadline", "closed_at")
    list_filter = ("state", "template")
    list_select_related = ("template", "launched_by")
    search_fields = ("=id", "template__name", "period")
    date_hierarchy = "created_at"


@admin.register(ReviewItem)
class ReviewItemAdmin(ReadOnlyHistoryAdmin):
    list_display = (
        "id",
        "campaign",
        "holder",
        "entitlement",
        "tier",
        "reviewer",
        "decision",
        "decided_by",
        "decided_at",
    )
    list_filter = ("decision", "tier", "campaign__template")
    list_select_related = ("campaign__template", "reviewer", "decided_by")
    search_fields = ("=id", "=grant__id", "reviewer__email", "team_name", "comment")
    date_hierarchy = "created_at"

    @admin.display(description="Holder")
    def holder(self, obj: ReviewItem) -> str:
        return str(obj.snapshot.get("holder", ""))

    @admin.display(description="Entitlement")
    def entitlement(self, obj: ReviewItem) -> str:
        return str(obj.snapshot.get("entitlement", ""))


# Pipelines (tokens, issuers, trust rules) live in their own module; importing registers them.
from accessreq import admin_pipelines  # noqa: E402,F401
