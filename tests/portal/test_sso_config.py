"""OIDC_PROVIDERS: a wrong value stops start-up with a message naming the variable, the
provider and the field, and never the secret."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from portal.auth.sso_config import allauth_providers, parse_providers

ROOT = Path(__file__).resolve().parents[2]
_INHERITED = {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
SECRET = "s3cret-value-never-shown"


def entry(**overrides: Any) -> dict[str, Any]:
    base = {
        "id": "corp",
        "name": "Corp SSO",
        "issuer": "https://login.example.com/",
        "client_id": "gatehouse",
        "client_secret": SECRET,
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def parse(entries: Any, *, production: bool = False, environ: dict[str, str] | None = None):
    raw = entries if isinstance(entries, str) else json.dumps(entries)
    return parse_providers(raw, production=production, environ=environ or {})


def test_empty_means_no_providers() -> None:
    assert parse_providers("", production=True, environ={}) == []
    assert parse([]) == []


def test_a_full_entry() -> None:
    (provider,) = parse(
        [entry(jit=True, jit_email_domains=["Example.com"], trust_mfa=True, scopes=None)]
    )
    assert provider.issuer == "https://login.example.com"
    assert (provider.jit, provider.trust_mfa) == (True, True)
    assert provider.jit_email_domains == ("example.com",)
    assert SECRET not in repr(provider)
    app = allauth_providers([provider])["openid_connect"]["APPS"][0]
    assert app["provider_id"] == "corp"
    assert app["settings"]["server_url"] == "https://login.example.com"
    assert app["settings"]["oauth_pkce_enabled"] is True


def test_defaults_trust_nothing() -> None:
    (provider,) = parse([entry()])
    assert (provider.jit, provider.trust_mfa) == (False, False)


def test_secret_from_its_own_variable() -> None:
    (provider,) = parse(
        [entry(client_secret=None, client_secret_env="CORP_OIDC_SECRET")],
        environ={"CORP_OIDC_SECRET": "from-env"},
    )
    assert provider.client_secret == "from-env"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("{not json", "OIDC_PROVIDERS must be a JSON list"),
        ({"id": "corp"}, "OIDC_PROVIDERS must be a JSON list of provider objects"),
        (["corp"], "OIDC_PROVIDERS: entry 1: must be a JSON object"),
        ([entry(id="Corp SSO")], 'OIDC_PROVIDERS: entry 1: "id" must be 1 to 30 lowercase'),
        ([entry(id="callback")], '"id" must be 1 to 30'),
        ([entry(), entry()], 'OIDC_PROVIDERS: provider "corp": "id" is used by an earlier'),
        ([entry(name="")], 'provider "corp": "name" must be a non-empty string'),
        ([entry(issuer="login.example.com")], '"issuer" must be an https:// URL'),
        ([entry(issuer="http://login.example.com")], '"issuer" must use https://'),
        ([entry(issuer="https://x.example.com/?a=1")], "must not have a query"),
        ([entry(client_id=None)], '"client_id" must be a non-empty string'),
        ([entry(client_secret=None)], '"client_secret" or "client_secret_env" is required'),
        (
            [entry(client_secret_env="CORP_SECRET")],
            'give "client_secret" or "client_secret_env", not both',
        ),
        (
            [entry(client_secret=None, client_secret_env="CORP_SECRET")],
            "the client secret variable CORP_SECRET is not set",
        ),
        ([entry(client_secret=None, client_secret_env="bad name")], "must name an environment"),
        ([entry(jit="yes")], '"jit" must be true or false'),
        ([entry(trust_mfa="true")], '"trust_mfa" must be true or false'),
        ([entry(trustMfa=True)], "unknown field 'trustMfa'"),
        ([entry(jit_email_domains=["example.com"])], 'only applies with "jit": true'),
        ([entry(jit=True, jit_email_domains=["@example.com"])], "is not a domain name"),
        ([entry(scopes=["profile"])], '"scopes" must include "openid" and "email"'),
    ],
)
def test_wrong_values_name_the_variable_and_field(entries: Any, message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as caught:
        parse(entries)
    assert message in str(caught.value)
    assert str(caught.value).startswith("OIDC_PROVIDERS")
    assert SECRET not in str(caught.value)


def test_plain_http_issuer_only_on_loopback_in_development() -> None:
    assert parse([entry(issuer="http://127.0.0.1:9000")])[0].issuer == "http://127.0.0.1:9000"
    assert parse([entry(issuer="http://localhost:9000")])
    with pytest.raises(ImproperlyConfigured, match="must use https://"):
        parse(
            [entry(issuer="http://127.0.0.1:9000", client_secret_env="S", client_secret=None)],
            production=True,
            environ={"S": "x"},
        )


def test_production_wants_the_secret_in_its_own_variable() -> None:
    with pytest.raises(ImproperlyConfigured, match='name it in "client_secret_env"') as caught:
        parse([entry()], production=True)
    assert SECRET not in str(caught.value)


def _start(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "GATEHOUSE_VAR_DIR": str(tmp_path)})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_up_stops_naming_the_variable(tmp_path: Path) -> None:
    bad = json.dumps([entry(issuer="http://login.example.com")])
    result = _start({"OIDC_PROVIDERS": bad}, tmp_path)
    assert result.returncode != 0
    assert 'ImproperlyConfigured: OIDC_PROVIDERS: provider "corp": "issuer" must use' in (
        result.stderr
    )
    assert SECRET not in result.stderr


def test_start_up_with_a_good_value(tmp_path: Path) -> None:
    result = _start({"OIDC_PROVIDERS": json.dumps([entry()])}, tmp_path)
    assert result.returncode == 0, result.stderr
