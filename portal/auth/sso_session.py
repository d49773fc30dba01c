"""What a sign-in through a provider leaves in the session, and what it is worth for MFA.

Two session keys: ``SESSION_SSO`` says the person signed in through a provider (which one, the
``amr`` it asserted); ``SESSION_MFA_ASSERTED`` is set only when that provider is trusted for MFA
and asserted it, and makes the session count as verified for the MFA gate. It never counts for
step-up: that needs a fresh Gatehouse code (``SESSION_VERIFIED_AT``), as before.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from portal.auth.sso_config import MFA_AMR_VALUES, OIDCProvider

SESSION_SSO = "sso_sign_in"
SESSION_MFA_ASSERTED = "mfa_asserted"
# What approvals record as the session's second factor when the provider's MFA counted.
PROVIDER_MFA_METHOD = "provider_asserted"


def configured_provider(provider_id: str) -> OIDCProvider | None:
    """The provider configured under ``provider_id`` now (settings may change between requests)."""
    for provider in settings.OIDC_PROVIDERS:
        if provider.id == provider_id:
            return provider
    return None


def asserted_mfa_values(amr: list[str]) -> list[str]:
    """The ``amr`` values that say the provider checked a second factor."""
    return sorted(set(amr) & MFA_AMR_VALUES)


def provider_mfa_counts(provider: OIDCProvider, amr: list[str]) -> bool:
    """Whether this sign-in's second factor is the provider's: trusted AND asserted in ``amr``."""
    return provider.trust_mfa and bool(asserted_mfa_values(amr))


def begin(request: HttpRequest, *, user: Any, provider: OIDCProvider, amr: list[str]) -> bool:
    """Record in the (already rotated) session that ``user`` signed in through ``provider``.

    Returns whether the provider's MFA counts for this session.
    """
    counts = provider_mfa_counts(provider, amr)
    now = time.time()
    request.session[SESSION_SSO] = {
        "user": str(user.pk),
        "provider": provider.id,
        "name": provider.name,
        "amr": amr,
        "at": now,
    }
    if counts:
        request.session[SESSION_MFA_ASSERTED] = {
            "user": str(user.pk),
            "provider": provider.id,
            "name": provider.name,
            "amr": asserted_mfa_values(amr),
            "at": now,
        }
        request.session["mfa_method"] = PROVIDER_MFA_METHOD
    else:
        request.session.pop(SESSION_MFA_ASSERTED, None)
    return counts


def clear(request: HttpRequest) -> None:
    """A sign-in that was not through a provider keeps nothing of an earlier one."""
    request.session.pop(SESSION_SSO, None)
    request.session.pop(SESSION_MFA_ASSERTED, None)


def _valid_assertion(request: HttpRequest, user: Any) -> dict[str, Any] | None:
    asserted = request.session.get(SESSION_MFA_ASSERTED)
    if not isinstance(asserted, dict) or str(user.pk) != asserted.get("user"):
        return None
    # Trust withdrawn in the configuration (or the provider removed) ends it for live sessions.
    provider = configured_provider(str(asserted.get("provider", "")))
    if provider is None or not provider.trust_mfa:
        return None
    return asserted


def apply_provider_mfa(request: HttpRequest) -> None:
    """Let the MFA gate count a trusted provider's asserted MFA for this request's person.

    Only touches ``request.user`` when the session holds an assertion, so other requests keep
    their lazy user.
    """
    if SESSION_MFA_ASSERTED not in request.session:
        return
    user = request.user
    if user.is_authenticated and _valid_assertion(request, user) is not None:
        user.is_verified = lambda: True  # type: ignore[attr-defined]


def provider_mfa_active(request: HttpRequest) -> bool:
    """Whether this session passed the MFA gate on the provider's assertion."""
    return request.user.is_authenticated and _valid_assertion(request, request.user) is not None


@dataclass(frozen=True)
class SessionSecurity:
    """How this session was signed in, for the person's security page."""

    sign_in: str
    second_factor: str
    sign_in_at: datetime | None


def describe(request: HttpRequest) -> SessionSecurity:
    sso = request.session.get(SESSION_SSO)
    asserted = _valid_assertion(request, request.user) if request.user.is_authenticated else None
    code_at = request.session.get("mfa_verified_at")
    method = request.session.get("mfa_method", "")
    if isinstance(sso, dict) and sso.get("user") == str(request.user.pk):
        sign_in = f"Through {sso.get('name')} (single sign-on)"
        sign_in_at = datetime.fromtimestamp(float(sso.get("at", 0)), tz=UTC)
    else:
        sign_in, sign_in_at = "With your Gatehouse password", None
    parts = []
    if asserted is not None:
        amr = " ".join(asserted.get("amr", []))
        parts.append(f"asserted by {asserted.get('name')} (amr={amr})")
    if code_at is not None:
        kind = "backup code" if method == "backup_code" else "TOTP code"
        when = datetime.fromtimestamp(float(code_at), tz=UTC).strftime("%H:%M UTC")
        parts.append(f"Gatehouse {kind}, last entered at {when}")
    second_factor = "; ".join(parts) if parts else "not yet verified"
    return SessionSecurity(
        sign_in=sign_in,
        second_factor=second_factor[:1].upper() + second_factor[1:],
        sign_in_at=sign_in_at,
    )
