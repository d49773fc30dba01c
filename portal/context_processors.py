"""Values every page's layout needs: version, navigation, whether the session is verified."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from portal import navigation
from portal.auth import is_verified


def layout(request: HttpRequest) -> dict[str, object]:
    user = getattr(request, "user", None)
    verified = is_verified(user)
    return {
        "code_version": settings.CODE_VERSION,
        "deployment_name": settings.DEPLOYMENT_NAME,
        "is_production": settings.PRODUCTION,
        "nav_items": navigation.items_for(request) if verified else [],
        "session_verified": verified,
    }
