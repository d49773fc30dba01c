"""A wrong or missing setting stops start-up with a message naming the variable."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHECK = "import django; django.setup()"
# Variables of the test run (the database under test, the browser tests' async switch) that a
# fresh start-up must not inherit.
_INHERITED = {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def _start(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "GATEHOUSE_VAR_DIR": str(tmp_path)})
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


PRODUCTION_OK = {
    "GATEHOUSE_ENV": "production",
    "SECRET_KEY": secrets.token_urlsafe(50),
    "FIELD_ENCRYPTION_KEYS": secrets.token_urlsafe(32),
    "ALLOWED_HOSTS": "gatehouse.example.com",
    "SITE_URL": "https://gatehouse.example.com",
    "AUDIT_SIGNING_KEY_FILE": "/etc/gatehouse/audit-signing-key.pem",
    "AUDIT_ANCHOR_FILE": "/var/lib/gatehouse-anchor/checkpoints.jsonl",
}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"GATEHOUSE_ENV": "staging"}, "GATEHOUSE_ENV"),
        ({"DATABASE_URL": "mysql://db/gatehouse"}, "DATABASE_URL"),
        ({"DATABASE_URL": "nonsense"}, "DATABASE_URL"),
        ({"CELERY_BROKER_URL": "kafka://broker"}, "CELERY_BROKER_URL"),
        ({"SITE_URL": "gatehouse.example.com"}, "SITE_URL"),
        ({"EMAIL_PORT": "smtp"}, "EMAIL_PORT"),
        ({"CACHE_URL": "memcached://x"}, "CACHE_URL"),
        ({**PRODUCTION_OK, "SECRET_KEY": ""}, "SECRET_KEY"),
        ({**PRODUCTION_OK, "SECRET_KEY": "short"}, "SECRET_KEY"),
        ({**PRODUCTION_OK, "ALLOWED_HOSTS": ""}, "ALLOWED_HOSTS"),
        ({**PRODUCTION_OK, "FIELD_ENCRYPTION_KEYS": ""}, "FIELD_ENCRYPTION_KEYS"),
        ({**PRODUCTION_OK, "AUDIT_SIGNING_KEY_FILE": ""}, "AUDIT_SIGNING_KEY"),
        ({"AUDIT_ANCHOR_URL": "ftp://anchor.example.com"}, "AUDIT_ANCHOR_URL"),
        ({**PRODUCTION_OK, "AUDIT_ANCHOR_FILE": ""}, "AUDIT_ANCHOR_FILE or AUDIT_ANCHOR_URL"),
        ({"AUDIT_CHECKPOINT_EVERY_EVENTS": "-1"}, "AUDIT_CHECKPOINT_EVERY_EVENTS"),
    ],
)
def test_bad_setting_stops_start_up_naming_the_variable(overrides, named, tmp_path) -> None:
    result = _start(overrides, tmp_path)
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert "ImproperlyConfigured" in last_line
    assert named in last_line


def test_production_settings_start_and_pass_deploy_checks(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update(PRODUCTION_OK)
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "GATEHOUSE_VAR_DIR": str(tmp_path)})
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_starts_with_only_a_webhook_anchor(tmp_path) -> None:
    overrides = {
        **PRODUCTION_OK,
        "AUDIT_ANCHOR_FILE": "",
        "AUDIT_ANCHOR_URL": "https://anchor.example.com/gatehouse",
    }
    result = _start(overrides, tmp_path)
    assert result.returncode == 0, result.stderr


def test_embedded_default_generates_its_secrets_once(tmp_path) -> None:
    assert _start({}, tmp_path).returncode == 0
    first = (tmp_path / "secret_key").read_text()
    assert _start({}, tmp_path).returncode == 0
    assert (tmp_path / "secret_key").read_text() == first
    assert len(first) >= 50
    assert oct((tmp_path / "secret_key").stat().st_mode)[-3:] == "600"


def _settings(env_overrides: dict[str, str], tmp_path: Path, *names: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED | {"PORT", "DEBUG"}}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "GATEHOUSE_VAR_DIR": str(tmp_path)})
    env.update(env_overrides)
    code = (
        CHECK
        + "; from django.conf import settings as s; "
        + "; ".join(f"print(s.{name})" for name in names)
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_the_demo_shows_styled_error_pages_unless_debug_is_asked_for(tmp_path) -> None:
    assert _settings({}, tmp_path, "DEBUG") == ["False"]
    assert _settings({"DEBUG": "true"}, tmp_path, "DEBUG") == ["True"]


def test_links_and_the_csrf_origin_follow_the_port(tmp_path) -> None:
    assert _settings({}, tmp_path, "SITE_URL") == ["http://127.0.0.1:8000"]
    assert _settings({"PORT": "8300"}, tmp_path, "SITE_URL", "CSRF_TRUSTED_ORIGINS") == [
        "http://127.0.0.1:8300",
        "['http://127.0.0.1:8300']",
    ]
    explicit = {"PORT": "8300", "SITE_URL": "https://gatehouse.example.com"}
    assert _settings(explicit, tmp_path, "SITE_URL") == ["https://gatehouse.example.com"]
