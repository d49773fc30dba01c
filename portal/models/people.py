"""People: the custom user model and teams."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from simple_history.models import HistoricalRecords

from portal.history import get_history_user

SYSTEM_ACTOR_EMAIL = "system@gatehouse.internal"


class Team(models.Model):
    """A team of people; used for routing reviews and for reports."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)

    history = HistoricalRecords(get_user=get_history_user)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("A user needs an email address.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self.create_user(email, password, **extra)

    def system_actor(self) -> User:
        """The named non-human actor for Celery tasks and management commands."""
        user, _ = self.get_or_create(
            email=SYSTEM_ACTOR_EMAIL,
            defaults={
                "display_name": "Gatehouse system",
                "kind": User.Kind.SYSTEM,
                "is_active": False,
                "password": "!",  # unusable: the system actor never signs in
            },
        )
        return user

    def humans(self) -> models.QuerySet[User]:
        return self.filter(kind=User.Kind.HUMAN)


class User(AbstractBaseUser, PermissionsMixin):
    """A person (or the system actor) who signs in with email, password and a second factor."""

    class Kind(models.TextChoices):
        HUMAN = "human", "Human"
        SERVICE = "service", "Service account"
        SYSTEM = "system", "System"

    class EmploymentStatus(models.TextChoices):
        ACTIVE = "active", "Active"
        LEAVING = "leaving", "Leaving"
        LEFT = "left", "Left"

    email = models.EmailField(unique=True)
    display_name = models.CharField(max_length=150)
    manager = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reports"
    )
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    employment_status = models.CharField(
        max_length=10, choices=EmploymentStatus.choices, default=EmploymentStatus.ACTIVE
    )
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.HUMAN)
    owners = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="owned_service_accounts",
        help_text="Service accounts only: the people who may request access for it.",
    )
    is_active = models.BooleanField(
        default=True, help_text="Unticking this ends the person's sessions at once."
    )
    is_staff = models.BooleanField(default=False, help_text="May open the admin site.")
    date_joined = models.DateTimeField(default=timezone.now)
    inactive_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when the person was flagged for not signing in for too long; cleared at "
        "their next sign-in.",
    )
    access_suspended_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Set when their access was revoked for inactivity.",
    )

    history = HistoricalRecords(
        get_user=get_history_user,
        excluded_fields=["password", "last_login", "inactive_since", "access_suspended_at"],
        m2m_fields=[owners],
    )

    objects: ClassVar[UserManager] = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["display_name"]

    class Meta:
        ordering = ["display_name", "email"]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(manager=models.F("pk")), name="user_not_own_manager"
            )
        ]

    def __str__(self) -> str:
        return self.display_name or self.email

    def get_full_name(self) -> str:
        return self.display_name

    def get_short_name(self) -> str:
        return self.display_name.split(" ")[0] if self.display_name else self.email

    def in_group(self, name: str) -> bool:
        """Whether the user belongs to the named group (cached per instance)."""
        cache: set[str] | None = getattr(self, "_group_names", None)
        if cache is None:
            cache = set(self.groups.values_list("name", flat=True))
            self._group_names = cache
        return name in cache
