"""The portal page where security admins mint and revoke SCIM tokens (everyone else: 404)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from portal.auth import signed_in_user
from portal.models import User
from portal.roles import is_security_admin
from portal.services.mfa import mfa_is_fresh, mfa_verify
from scim.forms import MintScimTokenForm, RevokeScimTokenForm
from scim.models import ScimToken
from scim.tokens import TokenRefused, scim_token_mint, scim_token_revoke


def _security_admin(request: HttpRequest) -> User:
    user = signed_in_user(request)
    if not (user.is_active and is_security_admin(user)):
        raise Http404("No such page.")
    return user


def _base_url() -> str:
    return settings.SITE_URL.rstrip("/") + reverse("scim:base")


@require_http_methods(["GET", "POST"])
def tokens(request: HttpRequest) -> HttpResponse:
    """Every SCIM token, newest first, and the form that mints one (POST)."""
    user = _security_admin(request)
    form = MintScimTokenForm(request.POST or None, need_code=not mfa_is_fresh(request))
    if request.method == "POST":
        if form.is_valid() and form.cleaned_data["code"]:
            result = mfa_verify(request=request, user=user, code=form.cleaned_data["code"])
            if not result.ok:
                form.add_error("code", result.error)
        if form.is_valid():
            try:
                minted = scim_token_mint(actor=user, name=form.cleaned_data["name"], http=request)
            except TokenRefused as error:
                form.add_error("name", str(error))
            else:
                response = render(
                    request,
                    "scim/token_created.html",
                    {"minted": minted, "base_url": _base_url()},
                )
                response["Cache-Control"] = "no-store"  # the one page that shows the secret
                return response
    context = {
        "tokens": list(ScimToken.objects.select_related("created_by", "revoked_by")),
        "form": form,
        "need_code": not mfa_is_fresh(request),
        "base_url": _base_url(),
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "scim/tokens.html", context, status=status)


@require_POST
def token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    user = _security_admin(request)
    form = RevokeScimTokenForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        token = scim_token_revoke(actor=user, token_id=token_id, reason=reason, http=request)
    except TokenRefused as error:
        if not ScimToken.objects.filter(pk=token_id).exists():
            raise Http404("No such SCIM token.") from None
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"Revoked {token.name}; its directory is refused from its next request on."
        )
    return redirect("scim:tokens")
