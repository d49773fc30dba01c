from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    default = True
    name = "portal"
    verbose_name = "People and sign-in"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from portal import signals  # noqa: F401 - connects the login audit hooks

        # Every app: permissions of later apps only exist once their own migrate signal ran.
        post_migrate.connect(_ensure_groups)


def _ensure_groups(**kwargs: object) -> None:
    """Groups and their permissions exist after every migrate (and after test flushes)."""
    from django.db import connections

    from portal.roles import ensure_groups

    connection = connections[str(kwargs.get("using", "default"))]
    # A partial migrate (one app, or a rollback) may leave the auth tables absent.
    if "auth_group_permissions" in connection.introspection.table_names():
        ensure_groups()


class GatehouseAdminConfig(admin_apps.AdminConfig):
    default = False
    """The admin site behind the same MFA-verified session as the portal."""

    default_site = "portal.admin_site.GatehouseAdminSite"
