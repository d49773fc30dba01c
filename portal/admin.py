"""Admin for people and teams. Deactivation and MFA reset go through services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import (
    BaseUserCreationForm,
    SetUnusablePasswordMixin,
    UserChangeForm,
)
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.admin_audit import AuditedAdmin, ReadOnlyAdmin
from portal.auth import signed_in_user
from portal.history import acting_as
from portal.models import Team, TOTPDevice, User
from portal.services.mfa import mfa_reset


class UserCreateForm(SetUnusablePasswordMixin, BaseUserCreationForm):
    """The admin's add-person form: a password, or none for people who sign in through SSO."""

    usable_password = SetUnusablePasswordMixin.create_usable_password_field()

    class Meta:
        model = User
        fields = ("email", "display_name", "manager", "team")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["password1"].required = False
        self.fields["password2"].required = False

    def clean_email(self) -> str:
        # Stored lower-case (as the manager does), so two spellings can't make two people.
        email = str(self.cleaned_data["email"]).strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError("Someone with this email address already exists.")
        return email


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


class MFAStatusFilter(admin.SimpleListFilter):
    title = "second factor"
    parameter_name = "mfa"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("enrolled", "Enrolled"), ("missing", "Not enrolled")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        enrolled = TOTPDevice.objects.filter(confirmed=True).values("user_id")
        if self.value() == "enrolled":
            return queryset.filter(pk__in=enrolled)
        if self.value() == "missing":
            return queryset.exclude(pk__in=enrolled)
        return queryset


class ActivityFilter(admin.SimpleListFilter):
    """People flagged for not signing in, and those whose access was suspended for it."""

    title = "sign-in activity"
    parameter_name = "activity"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("flagged", "Flagged inactive"), ("suspended", "Access suspended")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[User]) -> QuerySet[User]:
        if self.value() == "flagged":
            return queryset.filter(inactive_since__isnull=False)
        if self.value() == "suspended":
            return queryset.filter(access_suspended_at__isnull=False)
        return queryset


@admin.register(User)
class UserAdmin(DjangoUserAdmin, AuditedAdmin):
    form = UserEditForm
    add_form = UserCreateForm
    ordering = ("display_name",)
    list_display = ("display_name", "email", "team", "manager", "employment_status", "is_active")
    list_filter = (
        "is_active",
        "employment_status",
        "team",
        "groups",
        "kind",
        MFAStatusFilter,
        ActivityFilter,
    )
    list_select_related = ("team", "manager")
    search_fields = ("email", "display_name")
    raw_id_fields = ("manager",)
    readonly_fields = ("last_login", "date_joined", "kind", "inactive_since", "access_suspended_at")
    filter_horizontal = ("groups", "user_permissions")
    actions = ("deactivate_users", "reset_second_factor")
    fieldsets = (
        (None, {"fields": ("email", "display_name", "password")}),
        ("Organisation", {"fields": ("team", "manager", "employment_status")}),
        ("Access to Gatehouse", {"fields": ("is_active", "is_staff", "is_superuser", "groups")}),
        (
            "Dates",
            {
                "fields": (
                    "last_login",
                    "date_joined",
                    "kind",
                    "inactive_since",
                    "access_suspended_at",
                )
            },
        ),
    )
    add_fieldsets = (
        (None, {"fields": ("email", "display_name", "team", "manager")}),
        ("Password", {"fields": ("usable_password", "password1", "password2")}),
    )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """Joining, moving, leaving and deactivating go through the identity lifecycle, so the
        admin site does what a directory push would: this saves only the other fields."""
        from accessreq.services.lifecycle import (
            UNCHANGED,
            person_deactivate,
            person_join,
            person_leave,
            person_move,
        )

        actor = signed_in_user(request)
        if not change:
            with transaction.atomic(), acting_as(actor):
                super().save_model(request, obj, form, change)
                if obj.kind == User.Kind.HUMAN:
                    person_join(user=obj, actor=actor, source="admin", http=request)
            return
        changed = set(form.changed_data)
        initial = form.initial
        deactivating = "is_active" in changed and not obj.is_active
        leaving = "employment_status" in changed and obj.employment_status == "left"
        team = obj.team if "team" in changed else UNCHANGED
        manager = obj.manager if "manager" in changed else UNCHANGED
        with transaction.atomic(), acting_as(actor):
            if team is not UNCHANGED:
                obj.team_id = initial.get("team")
            if manager is not UNCHANGED:
                obj.manager_id = initial.get("manager")
            if deactivating or leaving:
                obj.is_active = True
            if leaving:
                obj.employment_status = initial.get("employment_status")
            super().save_model(request, obj, form, change)
            if obj.kind == User.Kind.HUMAN and (team is not UNCHANGED or manager is not UNCHANGED):
                person_move(
                    user=obj, actor=actor, source="admin", team=team, manager=manager, http=request
                )
            if leaving:
                person_leave(
                    user=obj,
                    actor=actor,
                    reason="left the organisation",
                    source="admin",
                    http=request,
                )
            elif deactivating:
                person_deactivate(
                    user=obj,
                    actor=actor,
                    reason="deactivated in the admin",
                    source="admin",
                    http=request,
                )

    @admin.action(description="Deactivate selected people (ends their sessions)")
    def deactivate_users(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        from accessreq.services.lifecycle import person_deactivate

        count = 0
        for user in queryset.filter(is_active=True):
            person_deactivate(
                user=user,
                actor=signed_in_user(request),
                reason="admin bulk action",
                source="admin",
                http=request,
            )
            count += 1
        self.message_user(request, f"Deactivated {count} account(s).", messages.SUCCESS)

    @admin.action(description="Reset second factor (they enrol again at next sign-in)")
    def reset_second_factor(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        for user in queryset:
            mfa_reset(
                user=user, actor=signed_in_user(request), reason="admin reset", request=request
            )
        self.message_user(request, f"Reset the second factor of {queryset.count()} account(s).")


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ("name", "slug")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(TOTPDevice)
class TOTPDeviceAdmin(ReadOnlyAdmin):
    """Read-only view of enrolments; the key is never shown."""

    list_display = ("user", "name", "confirmed", "confirmed_at", "throttling_failure_count")
    list_filter = ("confirmed",)
    list_select_related = ("user",)
    search_fields = ("user__email", "user__display_name")
    fields = ("user", "name", "confirmed", "confirmed_at", "throttling_failure_count")
    readonly_fields = fields
