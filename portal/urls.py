"""URL configuration for the whole portal."""

from django.contrib import admin
from django.urls import include, path

from accessreq.views import metrics
from portal import errors, mfa_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Prometheus, with its own bearer token (METRICS_TOKEN); closed without one.
    path("metrics", metrics.metrics, name="metrics"),
    path("mfa/enrol/", mfa_views.enrol, name="mfa_enrol"),
    path("mfa/verify/", mfa_views.verify, name="mfa_verify"),
    path("mfa/backup-codes/", mfa_views.backup_codes, name="mfa_backup_codes"),
    path("account/security/", mfa_views.security, name="account_security"),
    path(
        "account/security/backup-codes/",
        mfa_views.backup_codes_regenerate,
        name="account_backup_codes_regenerate",
    ),
    # Email addresses are identities managed by administrators, not by their holders.
    path("accounts/email/", errors.not_found, name="account_email"),
    # Nobody verifies an address here (ACCOUNT_EMAIL_VERIFICATION is "none").
    path("accounts/confirm-email/", errors.not_found, name="account_email_verification_sent"),
    path("accounts/confirm-email/<str:key>/", errors.not_found, name="account_confirm_email"),
    # Provider identities are linked only at sign-in (portal.auth.sso), never by sign-up or from
    # a connections page; the provider login and callback views stay allauth's.
    path("accounts/social/signup/", errors.not_found, name="socialaccount_signup"),
    path("accounts/social/connections/", errors.not_found, name="socialaccount_connections"),
    path("accounts/", include("allauth.urls")),
    path("admin/", admin.site.urls),
    path("api/v1/", include("accessreq.api.urls")),
    path("", include("accessreq.urls")),
    path("", include("audit.urls")),
    path("docs/", include("docs.urls")),
    # SCIM 2.0 for directories (bearer tokens, /scim/v2/) and its token page.
    path("scim/", include("scim.urls")),
]

handler400 = "portal.errors.bad_request"
handler404 = "portal.errors.not_found"
handler403 = "portal.errors.forbidden"
handler500 = "portal.errors.server_error"
