"""Second-factor pages: enrolment, backup codes (shown once), verification and step-up."""

from __future__ import annotations

from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from portal.auth import is_verified, signed_in_user, sso_session
from portal.forms import CodeForm, EnrolForm
from portal.middleware import mfa_not_required
from portal.services import mfa

_NEW_CODES = "mfa_new_backup_codes"
_NEW_CODES_NEXT = "mfa_new_backup_codes_next"


def _safe_next(request: HttpRequest, default: str = "home") -> str:
    candidate = request.POST.get("next") or request.GET.get("next") or ""
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return reverse(default)


def _with_next(view_name: str, next_url: str) -> HttpResponseRedirect:
    return HttpResponseRedirect(f"{reverse(view_name)}?{urlencode({'next': next_url})}")


def _qr_svg(uri: str) -> str:
    # segno draws only modules from our own provisioning URI; nothing user-controlled is echoed.
    svg = segno.make(uri, error="m").svg_inline(
        scale=5, dark="#0b1f33", light="#ffffff", omitsize=True
    )
    return mark_safe(svg)  # noqa: S308


def _grouped(secret: str) -> str:
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@never_cache
@mfa_not_required
@require_http_methods(["GET", "POST"])
def enrol(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    if mfa.has_confirmed_device(user):
        return _with_next("mfa_verify", _safe_next(request))
    device = mfa.pending_totp(user)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result, codes = mfa.mfa_enrol(request=request, user=user, code=form.cleaned_data["code"])
        if result.ok:
            request.session[_NEW_CODES] = codes
            request.session[_NEW_CODES_NEXT] = _safe_next(request)
            return redirect("mfa_backup_codes")
        form.add_error("code", result.error)
    context = {
        "form": form,
        "qr_svg": _qr_svg(device.provisioning_uri()),
        # Phone users can't scan their own screen: they tap this link instead.
        "otpauth_uri": device.provisioning_uri(),
        "secret": _grouped(device.base32_key),
        "next": _safe_next(request),
    }
    return render(request, "portal/mfa_enrol.html", context, status=400 if form.errors else 200)


@never_cache
def backup_codes(request: HttpRequest) -> HttpResponse:
    """Show freshly issued backup codes exactly once."""
    codes = request.session.pop(_NEW_CODES, None)
    next_url = request.session.pop(_NEW_CODES_NEXT, reverse("home"))
    if not codes:
        messages.info(request, "Backup codes are shown only once. Generate new ones if needed.")
        return redirect("account_security")
    # never_cache already sends "no-store": the codes stay out of every cache.
    return render(request, "portal/mfa_backup_codes.html", {"codes": codes, "next": next_url})


@never_cache
@mfa_not_required
@require_http_methods(["GET", "POST"])
def verify(request: HttpRequest) -> HttpResponse:
    user = signed_in_user(request)
    if not mfa.has_confirmed_device(user):
        if sso_session.provider_mfa_active(request):
            # Step-up after a provider-verified sign-in: only a fresh Gatehouse code counts.
            messages.info(
                request,
                "Your provider confirmed your second factor when you signed in, but this action "
                "needs a fresh Gatehouse code. Set up an authenticator app first; it takes a "
                "minute.",
            )
        return _with_next("mfa_enrol", _safe_next(request))
    step_up = is_verified(user)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        result = mfa.mfa_verify(request=request, user=user, code=form.cleaned_data["code"])
        if result.ok:
            if result.backup_codes_left is not None:
                level = messages.WARNING if result.backup_codes_left <= 3 else messages.INFO
                messages.add_message(
                    request,
                    level,
                    f"You used a backup code; {result.backup_codes_left} left. "
                    "Generate new ones on your security page if you are running low.",
                )
            return HttpResponseRedirect(_safe_next(request))
        form.add_error("code", result.error)
        status = 429 if result.retry_after else 400
    elif form.errors:
        status = 400
    context = {"form": form, "next": _safe_next(request), "step_up": step_up}
    return render(request, "portal/mfa_verify.html", context, status=status)


@never_cache
def security(request: HttpRequest) -> HttpResponse:
    """The person's own second-factor page: devices, backup codes left, regenerate."""
    user = signed_in_user(request)
    totp = mfa.confirmed_totp(user)
    context = {
        "totp": totp,
        "backup_left": mfa.backup_codes_left(user),
        "backup_total": settings.MFA_BACKUP_CODE_COUNT,
        "fresh": mfa.mfa_is_fresh(request),
        "session_security": sso_session.describe(request),
    }
    return render(request, "portal/account_security.html", context)


@require_POST
def backup_codes_regenerate(request: HttpRequest) -> HttpResponse:
    if not mfa.mfa_is_fresh(request):
        messages.info(request, "Confirm it's you before generating new backup codes.")
        return _with_next("mfa_verify", reverse("account_security"))
    codes = mfa.mfa_backup_codes_regenerate(request=request, user=signed_in_user(request))
    request.session[_NEW_CODES] = codes
    request.session[_NEW_CODES_NEXT] = reverse("account_security")
    return redirect("mfa_backup_codes")
