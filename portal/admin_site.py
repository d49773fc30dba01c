"""The admin site: same sign-in, same second factor, no separate login form."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from portal.auth import is_verified


class GatehouseAdminSite(admin.AdminSite):
    site_header = "Gatehouse administration"
    site_title = "Gatehouse admin"
    index_title = "Administration"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and is_verified(user))

    def login(self, request: HttpRequest, extra_context: object = None) -> HttpResponse:
        """Send people to the portal's sign-in (password, then second factor), then back."""
        if request.user.is_authenticated:
            if self.has_permission(request):
                return HttpResponseRedirect(reverse("admin:index"))
            raise PermissionDenied("Your account may not use the admin site.")
        next_url = request.GET.get("next") or reverse("admin:index")
        return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")
