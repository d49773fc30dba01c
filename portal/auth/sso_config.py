"""OpenID Connect providers from the environment (``OIDC_PROVIDERS``), checked at start-up.

``OIDC_PROVIDERS`` is a JSON list, one object per provider. A wrong value stops start-up with a
message naming ``OIDC_PROVIDERS``, the entry and the field; secrets are never part of a message.
Imported by the settings module, so nothing here may touch models.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

VARIABLE = "OIDC_PROVIDERS"
# The ``amr`` values (RFC 8176) that say the provider itself checked a second factor.
MFA_AMR_VALUES = frozenset({"mfa", "otp", "hwk"})

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_FIELDS = {
    "id",
    "name",
    "issuer",
    "client_id",
    "client_secret",
    "client_secret_env",
    "jit",
    "jit_email_domains",
    "trust_mfa",
    "scopes",
}
_RESERVED_IDS = {"callback", "login", "social"}


@dataclass(frozen=True)
class OIDCProvider:
    """One configured OpenID Connect provider: where it is, our client, and what we trust it for."""

    id: str
    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    # Just-in-time creation: an unknown person with a verified email gets an account (no access).
    jit: bool = False
    # If non-empty, JIT creates people only with an email in one of these domains.
    jit_email_domains: tuple[str, ...] = ()
    # Whether this provider's MFA assertion (amr) replaces Gatehouse's own code at sign-in.
    trust_mfa: bool = False
    scopes: tuple[str, ...] = ("openid", "profile", "email")

    def allauth_app(self) -> dict[str, Any]:
        """The entry for allauth's ``SOCIALACCOUNT_PROVIDERS['openid_connect']['APPS']``."""
        return {
            "provider_id": self.id,
            "name": self.name,
            "client_id": self.client_id,
            "secret": self.client_secret,
            "settings": {
                "server_url": self.issuer,
                "oauth_pkce_enabled": True,
                # Our own checks read the ID token's claims (amr); userinfo adds the profile.
                "fetch_userinfo": True,
                "scope": list(self.scopes),
            },
        }


def _fail(where: str, message: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{VARIABLE}: {where}: {message}")


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = entry.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f'"{key}" must be a non-empty string.')
    return value.strip()


def _flag(entry: Mapping[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise _fail(where, f'"{key}" must be true or false (JSON booleans, not strings).')
    return value


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _issuer(entry: Mapping[str, Any], where: str, *, production: bool) -> str:
    issuer = _text(entry, "issuer", where).rstrip("/")
    parts = urlsplit(issuer)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise _fail(where, '"issuer" must be an https:// URL with a host name.')
    if parts.query or parts.fragment:
        raise _fail(where, '"issuer" must not have a query or fragment.')
    if parts.scheme == "http" and (production or not _is_loopback(parts.hostname)):
        raise _fail(
            where,
            '"issuer" must use https:// (plain http is allowed only for a loopback address '
            "in development).",
        )
    return issuer


def _secret(
    entry: Mapping[str, Any], where: str, environ: Mapping[str, str], *, production: bool
) -> str:
    inline = entry.get("client_secret")
    env_name = entry.get("client_secret_env")
    if inline is not None and env_name is not None:
        raise _fail(where, 'give "client_secret" or "client_secret_env", not both.')
    if env_name is not None:
        if not isinstance(env_name, str) or not _ENV_NAME.match(env_name):
            raise _fail(where, '"client_secret_env" must name an environment variable.')
        value = environ.get(env_name, "")
        if not value:
            raise _fail(where, f"the client secret variable {env_name} is not set or empty.")
        return value
    if inline is None:
        raise _fail(where, '"client_secret" or "client_secret_env" is required.')
    if not isinstance(inline, str) or not inline:
        raise _fail(where, '"client_secret" must be a non-empty string.')
    if production:
        raise _fail(
            where,
            'in production put the secret in its own variable and name it in "client_secret_env" '
            f"({VARIABLE} is often printed whole by deployment tools).",
        )
    return inline


def _domains(entry: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = entry.get("jit_email_domains", [])
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise _fail(where, '"jit_email_domains" must be a list of domain names.')
    domains = tuple(d.strip().lower() for d in value)
    for domain in domains:
        if not _DOMAIN.match(domain):
            raise _fail(where, f'"jit_email_domains" has {domain!r}, which is not a domain name.')
    return domains


def _scopes(entry: Mapping[str, Any], where: str) -> tuple[str, ...]:
    value = entry.get("scopes", ["openid", "profile", "email"])
    if not isinstance(value, list) or not all(isinstance(s, str) and s for s in value):
        raise _fail(where, '"scopes" must be a list of scope names.')
    if "openid" not in value or "email" not in value:
        raise _fail(where, '"scopes" must include "openid" and "email".')
    return tuple(value)


def parse_providers(
    raw: str, *, production: bool, environ: Mapping[str, str] | None = None
) -> list[OIDCProvider]:
    """Parse and check ``OIDC_PROVIDERS``; an empty value means no SSO (passwords only)."""
    environ = os.environ if environ is None else environ
    if not raw.strip():
        return []
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ImproperlyConfigured(
            f"{VARIABLE} must be a JSON list of provider objects (invalid JSON at line "
            f"{exc.lineno}, column {exc.colno}: {exc.msg})."
        ) from None
    if not isinstance(data, list):
        raise ImproperlyConfigured(f"{VARIABLE} must be a JSON list of provider objects.")
    providers: list[OIDCProvider] = []
    seen: set[str] = set()
    for index, entry in enumerate(data):
        where = f"entry {index + 1}"
        if not isinstance(entry, dict):
            raise _fail(where, "must be a JSON object.")
        unknown = sorted(set(entry) - _FIELDS)
        if unknown:
            raise _fail(
                where,
                f"unknown field {', '.join(repr(k) for k in unknown)} "
                f"(known: {', '.join(sorted(_FIELDS))}).",
            )
        provider_id = _text(entry, "id", where)
        where = f'provider "{provider_id}"' if _ID.match(provider_id) else where
        if not _ID.match(provider_id) or provider_id in _RESERVED_IDS:
            raise _fail(
                where,
                '"id" must be 1 to 30 lowercase letters, digits or hyphens (it is part of the '
                'callback URL), and not "callback", "login" or "social".',
            )
        if provider_id in seen:
            raise _fail(where, '"id" is used by an earlier provider.')
        seen.add(provider_id)
        jit = _flag(entry, "jit", where)
        domains = _domains(entry, where)
        if domains and not jit:
            raise _fail(where, '"jit_email_domains" only applies with "jit": true.')
        providers.append(
            OIDCProvider(
                id=provider_id,
                name=_text(entry, "name", where),
                issuer=_issuer(entry, where, production=production),
                client_id=_text(entry, "client_id", where),
                client_secret=_secret(entry, where, environ, production=production),
                jit=jit,
                jit_email_domains=domains,
                trust_mfa=_flag(entry, "trust_mfa", where),
                scopes=_scopes(entry, where),
            )
        )
    return providers


def allauth_providers(providers: list[OIDCProvider]) -> dict[str, Any]:
    """``SOCIALACCOUNT_PROVIDERS`` for ``providers`` (all through allauth's openid_connect)."""
    return {
        "openid_connect": {
            "OAUTH_PKCE_ENABLED": True,
            "APPS": [provider.allauth_app() for provider in providers],
        }
    }


def form_action_origins(providers: list[OIDCProvider], extra: list[str]) -> list[str]:
    """The origins the sign-in buttons' redirects go to: each issuer's, plus ``extra``
    (``OIDC_FORM_ACTION_ORIGINS``, checked here)."""
    origins: list[str] = []
    for provider in providers:
        parts = urlsplit(provider.issuer)
        origins.append(f"{parts.scheme}://{parts.netloc}")
    for origin in extra:
        parts = urlsplit(origin)
        if parts.scheme != "https" or not parts.netloc or parts.path not in {"", "/"}:
            raise ImproperlyConfigured(
                f"OIDC_FORM_ACTION_ORIGINS must be comma-separated https:// origins without a "
                f"path (got {origin!r})."
            )
        origins.append(f"https://{parts.netloc}")
    return sorted(set(origins))
