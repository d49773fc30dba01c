from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class PortalConfig(AppConfig):
    default = True
    name = "portal"
    verbose_name = "People and sign-in"

    def ready(self) -> None:
        from portal import signals  # noqa: F401 - connects the login audit hooks


class GatehouseAdminConfig(admin_apps.AdminConfig):
    default = False
    """The admin site behind the same MFA-verified session as the portal."""

    default_site = "portal.admin_site.GatehouseAdminSite"
