"""Start the test OpenID Connect provider (``provider.mjs``, panva/oidc-provider) on loopback
and drive its sign-in page over real HTTP.

The provider needs Node.js and ``npm ci --prefix tests/oidc_provider`` (``make test`` runs it).
Without them the SSO tests are skipped with the reason, unless ``GATEHOUSE_REQUIRE_BROWSER=1``
(CI), where they fail instead.
"""

from __future__ import annotations

import copy
import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
import requests

PROVIDER_DIR = Path(__file__).resolve().parent
SCRIPT = PROVIDER_DIR / "provider.mjs"
CLIENT_ID = "gatehouse"
CLIENT_SECRET = "gatehouse-test-secret"
START_TIMEOUT = 20

# The provider's own default accounts (see provider.mjs), by login.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "known": {
        "login": "known",
        "password": "known-pass",
        "sub": "sub-known",
        "email": "known@example.com",
        "email_verified": True,
        "name": "Kim Known",
        "amr": ["pwd"],
    },
    "stranger": {
        "login": "stranger",
        "password": "stranger-pass",
        "sub": "sub-stranger",
        "email": "stranger@example.com",
        "email_verified": True,
        "name": "Sam Stranger",
        "amr": ["pwd"],
    },
    "mfa": {
        "login": "mfa",
        "password": "mfa-pass",
        "sub": "sub-mfa",
        "email": "mfa@example.com",
        "email_verified": True,
        "name": "Mia Multifactor",
        "amr": ["pwd", "mfa"],
    },
    "unverified": {
        "login": "unverified",
        "password": "unverified-pass",
        "sub": "sub-unverified",
        "email": "known@example.com",
        "email_verified": False,
        "name": "Una Unverified",
        "amr": ["pwd"],
    },
    # The same address as "known" in capitals, from another identity: matching ignores case.
    "shouting": {
        "login": "shouting",
        "password": "shouting-pass",
        "sub": "sub-shouting",
        "email": "KNOWN@Example.COM",
        "email_verified": True,
        "name": "Kim Known",
        "amr": ["pwd", "otp"],
    },
}


def unavailable_reason() -> str | None:
    if shutil.which("node") is None:
        return "Node.js not found: the SSO tests run a real OpenID Connect provider under node"
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        return (
            "tests/oidc_provider/node_modules is missing: run `npm ci --prefix "
            "tests/oidc_provider` (make test does it)"
        )
    return None


def require_provider() -> None:
    """Skip (or, with GATEHOUSE_REQUIRE_BROWSER=1, fail) when the provider cannot run."""
    reason = unavailable_reason()
    if reason is None:
        return
    if os.environ.get("GATEHOUSE_REQUIRE_BROWSER", "") == "1":
        pytest.fail(f"GATEHOUSE_REQUIRE_BROWSER=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@dataclass
class RunningProvider:
    issuer: str
    process: subprocess.Popen[str]
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    client_id: str = CLIENT_ID
    client_secret: str = CLIENT_SECRET

    def provider_entry(self, provider_id: str = "corp", **overrides: Any) -> dict[str, Any]:
        """One ``OIDC_PROVIDERS`` entry for this provider."""
        entry = {
            "id": provider_id,
            "name": "Corp SSO",
            "issuer": self.issuer,
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
        entry.update(overrides)
        return entry


def _read_ready(process: subprocess.Popen[str]) -> str:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        try:
            line = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            raise RuntimeError("the test OpenID Connect provider did not start") from None
        try:
            message = json.loads(line)
        except json.JSONDecodeError:
            continue
        if message.get("ready"):
            return str(message["issuer"])


@contextmanager
def running_provider(
    accounts: dict[str, dict[str, Any]] | None = None,
) -> Iterator[RunningProvider]:
    """Run provider.mjs on a free loopback port for the duration of the block."""
    require_provider()
    accounts = accounts or ACCOUNTS
    env = {
        **os.environ,
        "OIDC_TEST_ACCOUNTS": json.dumps(list(accounts.values())),
        "OIDC_TEST_CLIENTS": json.dumps([{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}]),
        "OIDC_TEST_PORT": "0",
    }
    process = subprocess.Popen(
        ["node", str(SCRIPT)],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        issuer = _read_ready(process)
        yield RunningProvider(issuer=issuer, process=process, accounts=accounts)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def configure(settings: Any, entries: list[dict[str, Any]]) -> None:
    """Point Gatehouse at ``entries`` the way OIDC_PROVIDERS would, through the real parser."""
    from csp.constants import SELF

    from portal.auth.sso_config import allauth_providers, form_action_origins, parse_providers

    providers = parse_providers(json.dumps(entries), production=False)
    settings.OIDC_PROVIDERS = providers
    settings.SOCIALACCOUNT_PROVIDERS = allauth_providers(providers)
    policy = copy.deepcopy(settings.CONTENT_SECURITY_POLICY)
    policy["DIRECTIVES"]["form-action"] = [SELF, *form_action_origins(providers, [])]
    settings.CONTENT_SECURITY_POLICY = policy


@dataclass
class IdPResult:
    """Where the provider sent the browser back to: Gatehouse's callback URL (code and state)."""

    callback_url: str

    @property
    def path_and_query(self) -> str:
        parts = urlsplit(self.callback_url)
        return f"{parts.path}?{parts.query}"


def sign_in_at_provider(authorize_url: str, issuer: str, *, login: str, password: str) -> IdPResult:
    """Do what a browser does at the provider: follow its redirects, post the sign-in form,
    and stop at the redirect back to Gatehouse."""
    session = requests.Session()
    url = authorize_url
    posted = False
    for _ in range(20):
        response = session.get(url, allow_redirects=False, timeout=10)
        while response.is_redirect:
            target = urljoin(url, response.headers["Location"])
            if not target.startswith(issuer):
                return IdPResult(callback_url=target)
            url = target
            response = session.get(url, allow_redirects=False, timeout=10)
        if posted or response.status_code != 200 or "/interaction/" not in url:
            raise AssertionError(f"unexpected answer from the provider at {url}: {response.text}")
        response = session.post(
            f"{url}/login",
            data={"login": login, "password": password},
            allow_redirects=False,
            timeout=10,
        )
        posted = True
        if not response.is_redirect:
            raise AssertionError(f"the provider refused the sign-in: {response.text}")
        url = urljoin(url, response.headers["Location"])
        if not url.startswith(issuer):
            return IdPResult(callback_url=url)
    raise AssertionError("too many redirects at the provider")
