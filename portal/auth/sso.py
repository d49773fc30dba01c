"""Sign-in through OpenID Connect providers: who may come in, and as whom.

A provider's identity (issuer + ``sub``) is linked to one Gatehouse person the first time it
signs in, by the provider's *verified* email. Unknown people are refused unless the provider
creates them just in time (``jit``). Service accounts, the system actor and deactivated people
never sign in this way. Every refusal and every callback error is an audit event; the sign-in
itself is recorded by the login signal (``auth.sso.login``, see ``portal/signals.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialLogin
from allauth.socialaccount.providers.base import AuthProcess
from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.shortcuts import render

from audit.services import record
from portal.auth import sso_session
from portal.auth.sso_config import OIDCProvider
from portal.models import User

logger = logging.getLogger(__name__)

# Set on the request by pre_social_login, read by the login signal moments later.
REQUEST_ATTR = "gatehouse_sso"


@dataclass(frozen=True)
class ProviderClaims:
    """The claims Gatehouse decides on, from the ID token (amr) and userinfo (profile)."""

    sub: str
    email: str
    email_verified: bool
    name: str
    amr: list[str] = field(default_factory=list)

    @classmethod
    def from_sociallogin(cls, sociallogin: SocialLogin) -> ProviderClaims:
        extra = sociallogin.account.extra_data or {}
        id_token = extra.get("id_token") or {}
        userinfo = extra.get("userinfo") or {}
        merged = {**id_token, **userinfo}
        verified = merged.get("email_verified")
        # amr is about this authentication: only the signed ID token says it.
        amr = id_token.get("amr") or []
        return cls(
            sub=str(sociallogin.account.uid),
            email=str(merged.get("email") or "").strip().lower(),
            # Some providers send the string "true"; anything else is "not verified".
            email_verified=verified is True or (isinstance(verified, str) and verified == "true"),
            name=str(merged.get("name") or "").strip(),
            amr=[str(v) for v in amr] if isinstance(amr, list) else [],
        )


@dataclass(frozen=True)
class SSOSignIn:
    """A sign-in that passed our checks, waiting for allauth to log the person in."""

    provider: OIDCProvider
    claims: ProviderClaims
    user_pk: Any
    created: bool


# Reason code -> what the refusal page says (formatted with provider and email).
REFUSALS: dict[str, tuple[str, str]] = {
    "unknown_provider": (
        "This sign-in provider is not configured",
        "Gatehouse does not know this provider any more. Sign in with another one, or with "
        "your password.",
    ),
    "not_sign_in": (
        "Linking accounts is not offered",
        "Provider identities are linked to Gatehouse accounts only when you sign in.",
    ),
    "email_missing": (
        "Your provider did not send an email address",
        "{provider} did not tell Gatehouse your email address, so Gatehouse cannot tell whose "
        "account this is. Ask your identity administrators to release the email claim to "
        "Gatehouse.",
    ),
    "email_unverified": (
        "Your email address is not verified",
        "{provider} says your email address {email} is not verified, so Gatehouse cannot tell "
        "whose account this is. Verify the address with {provider}, then try again.",
    ),
    "unknown_person": (
        "No Gatehouse account for {email}",
        "You signed in to {provider} as {email}, but no Gatehouse account has that address. "
        "Gatehouse accounts are created by your administrators: ask your manager or your "
        "security team for one.",
    ),
    "not_a_person": (
        "This account cannot sign in",
        "The Gatehouse account for {email} is not a person's account. Service accounts act "
        "only through API tokens and never sign in in a browser.",
    ),
    "deactivated": (
        "Your Gatehouse account is deactivated",
        "The Gatehouse account for {email} is deactivated, so it cannot sign in. If you think "
        "this is wrong, ask your security team.",
    ),
    "linked_elsewhere": (
        "This account is linked to another identity",
        "The Gatehouse account for {email} is already linked to a different {provider} "
        "identity. Ask your security team to check the account before you try again.",
    ),
    "concurrent_sign_in": (
        "Sign in again",
        "Another sign-in for {email} was being completed at the same moment. Sign in again; "
        "it will work this time.",
    ),
    "ambiguous_email": (
        "More than one account has this address",
        "More than one Gatehouse account has the address {email}. Ask your security team to "
        "fix the accounts.",
    ),
}


def refuse(
    request: HttpRequest,
    *,
    reason: str,
    provider_id: str,
    provider_name: str = "",
    claims: ProviderClaims | None = None,
    user: User | None = None,
) -> ImmediateHttpResponse:
    """Record the refusal and return the exception that shows its page (403)."""
    email = claims.email if claims else ""
    record(
        actor=None,
        action="auth.sso.refused",
        target=user,
        data={
            "provider": provider_id,
            "reason": reason,
            "email": email[:254],
            "sub": (claims.sub if claims else "")[:255],
            "email_verified": claims.email_verified if claims else None,
        },
        request=request,
    )
    title, text = REFUSALS[reason]
    context = {
        "title": title.format(provider=provider_name or provider_id, email=email or "you"),
        "text": text.format(provider=provider_name or provider_id, email=email or "you"),
        "reason": reason,
        "provider_name": provider_name or provider_id,
    }
    response = render(request, "socialaccount/sso_refused.html", context, status=403)
    return ImmediateHttpResponse(response)


def _jit_allowed(provider: OIDCProvider, email: str) -> bool:
    if not provider.jit:
        return False
    if not provider.jit_email_domains:
        return True
    return email.rpartition("@")[2] in provider.jit_email_domains


@transaction.atomic
def sso_person_create(
    *, provider: OIDCProvider, claims: ProviderClaims, request: HttpRequest | None = None
) -> User:
    """Create a person just in time for a first sign-in through ``provider``.

    A human with an unusable password (they sign in through the provider, or reset one), their
    name from the claims, no team, no manager and no access. Then the joiner process runs.
    """
    actor = User.objects.system_actor()
    user = User.objects.create_user(
        claims.email,
        password=None,
        display_name=(claims.name or claims.email.partition("@")[0])[:150],
    )
    record(
        actor=actor,
        action="user.created",
        target=user,
        data={"source": f"sso:{provider.id}", "email": user.email, "sub": claims.sub},
        request=request,
    )
    _person_joined(user=user, actor=actor, source=f"sso:{provider.id}", request=request)
    return user


def _person_joined(*, user: User, actor: User, source: str, request: HttpRequest | None) -> None:
    """Hand the person just created to the joiner process: no access but their team's
    birthright (none yet: a just-in-time person has no team), and a ``person.joined`` event."""
    from accessreq.services.lifecycle import person_join

    person_join(user=user, actor=actor, source=source, http=request)


def _linked_account(user: User, provider_id: str) -> SocialAccount | None:
    return SocialAccount.objects.filter(user=user, provider=provider_id).first()


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """allauth's hooks for providers: our checks before any login, audit on every error."""

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False

    def list_apps(
        self, request: HttpRequest | None, provider: Any = None, client_id: Any = None
    ) -> list[Any]:
        # Providers come from OIDC_PROVIDERS only, without a database query (the sign-in page
        # lists them): a SocialApp row added in the admin would bypass the checked
        # configuration, so it is never offered or used.
        apps = []
        for configured in settings.OIDC_PROVIDERS:
            if provider not in (None, "openid_connect", configured.id):
                continue
            if client_id is not None and client_id != configured.client_id:
                continue
            entry = configured.allauth_app()
            apps.append(
                SocialApp(
                    provider="openid_connect",
                    provider_id=entry["provider_id"],
                    name=entry["name"],
                    client_id=entry["client_id"],
                    secret=entry["secret"],
                    settings=entry["settings"],
                )
            )
        return apps

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        provider_id = sociallogin.account.provider
        provider = sso_session.configured_provider(provider_id)
        if provider is None:
            raise refuse(request, reason="unknown_provider", provider_id=provider_id)
        name = provider.name
        claims = ProviderClaims.from_sociallogin(sociallogin)
        if sociallogin.state.get("process", AuthProcess.LOGIN) != AuthProcess.LOGIN:
            raise refuse(request, reason="not_sign_in", provider_id=provider.id, provider_name=name)
        if not claims.email:
            raise refuse(
                request,
                reason="email_missing",
                provider_id=provider.id,
                provider_name=name,
                claims=claims,
            )
        if not claims.email_verified:
            raise refuse(
                request,
                reason="email_unverified",
                provider_id=provider.id,
                provider_name=name,
                claims=claims,
            )
        created = False
        if sociallogin.is_existing:
            # Linked before (issuer + sub): the link decides, even if the email changed since.
            user = sociallogin.user
        else:
            matches = list(User.objects.filter(email__iexact=claims.email)[:2])
            if len(matches) > 1:
                raise refuse(
                    request,
                    reason="ambiguous_email",
                    provider_id=provider.id,
                    provider_name=name,
                    claims=claims,
                )
            user = matches[0] if matches else None
            if user is not None and _linked_account(user, provider.id) is not None:
                # The address moved to someone else at the provider: never hand them this account.
                raise refuse(
                    request,
                    reason="linked_elsewhere",
                    provider_id=provider.id,
                    provider_name=name,
                    claims=claims,
                    user=user,
                )
            if user is None and not _jit_allowed(provider, claims.email):
                raise refuse(
                    request,
                    reason="unknown_person",
                    provider_id=provider.id,
                    provider_name=name,
                    claims=claims,
                )
        if user is not None:
            self._check_may_sign_in(request, user=user, provider=provider, claims=claims)
        if not sociallogin.is_existing:
            try:
                with transaction.atomic():
                    if user is None:
                        user = sso_person_create(provider=provider, claims=claims, request=request)
                        created = True
                    sociallogin.connect(request, user)
            except IntegrityError:
                # A second first sign-in of the same person in the same instant (two tabs)
                # created or linked the account first; this one simply starts again.
                raise refuse(
                    request,
                    reason="concurrent_sign_in",
                    provider_id=provider.id,
                    provider_name=name,
                    claims=claims,
                ) from None
        setattr(
            request,
            REQUEST_ATTR,
            SSOSignIn(provider=provider, claims=claims, user_pk=user.pk, created=created),
        )

    def _check_may_sign_in(
        self, request: HttpRequest, *, user: Any, provider: OIDCProvider, claims: ProviderClaims
    ) -> None:
        reason = ""
        if user.kind != User.Kind.HUMAN:
            reason = "not_a_person"
        elif not user.is_active or user.employment_status == User.EmploymentStatus.LEFT:
            reason = "deactivated"
        if reason:
            raise refuse(
                request,
                reason=reason,
                provider_id=provider.id,
                provider_name=provider.name,
                claims=claims,
                user=user,
            )

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: Any = None,
        extra_context: Any = None,
    ) -> None:
        # A bad or replayed state, an error from the provider, a token that did not verify.
        # Only the kind of failure is kept: provider messages may echo request details.
        provider_id = getattr(getattr(provider, "app", None), "provider_id", "") or ""
        state_known = bool(extra_context and extra_context.get("state"))
        data = {
            "provider": provider_id,
            "error": str(error or "unknown"),
            "exception": type(exception).__name__ if exception is not None else "",
            "state_matched": state_known,
            "provider_error": str(request.GET.get("error", ""))[:64],
        }
        logger.info("SSO callback refused: %s", data)
        record(actor=None, action="auth.sso.failed", data=data, request=request)


def sso_sign_in_recorded(request: Any, user: Any) -> bool:
    """At login: if it came through a provider, start the SSO session and record
    ``auth.sso.login``; otherwise clear any earlier SSO state and return False."""
    sign_in: SSOSignIn | None = getattr(request, REQUEST_ATTR, None) if request else None
    if request is None or sign_in is None or sign_in.user_pk != user.pk:
        if request is not None and hasattr(request, "session"):
            sso_session.clear(request)
        return False
    mfa_counts = sso_session.begin(
        request, user=user, provider=sign_in.provider, amr=sign_in.claims.amr
    )
    record(
        actor=user,
        action="auth.sso.login",
        target=user,
        data={
            "provider": sign_in.provider.id,
            "sub": sign_in.claims.sub,
            "amr": sign_in.claims.amr,
            "created": sign_in.created,
            # Whether the provider's MFA replaced Gatehouse's code for this session.
            "provider_mfa": mfa_counts,
            "provider_mfa_trusted": sign_in.provider.trust_mfa,
        },
        request=request,
    )
    return True
