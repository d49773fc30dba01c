"""Shared fixtures: personas, verified sessions, and the audit triggers around flushes."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp

from audit.db import install_append_only, remove_append_only
from portal.crypto import code_digests
from portal.models import BackupCode, BackupCodeDevice, TOTPDevice, User
from portal.models.mfa import new_backup_code, normalize_backup_code
from portal.roles import AUDITOR, SECURITY_ADMIN
from tests.factories import PASSWORD, UserFactory


def _uses_db(request: pytest.FixtureRequest) -> bool:
    names = set(request.fixturenames)
    return bool(
        request.node.get_closest_marker("django_db")
        or names & {"db", "transactional_db", "live_server", "django_db_reset_sequences"}
    )


def _transactional(request: pytest.FixtureRequest) -> bool:
    marker = request.node.get_closest_marker("django_db")
    if marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])):
        return True
    return bool(set(request.fixturenames) & {"transactional_db", "live_server"})


@pytest.fixture(autouse=True)
def _audit_append_only(request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep the ledger's triggers on during every test, and off only for the flush after a
    transactional test (the flush empties every table, which the triggers rightly refuse)."""
    if not _uses_db(request):
        yield
        return
    request.getfixturevalue("_django_db_helper")
    install_append_only(connection)
    yield
    if _transactional(request):
        remove_append_only(connection)


@pytest.fixture(autouse=True)
def _forget_grant_uses() -> Iterator[None]:
    """The authorization API remembers in-process which grants it just stamped as used; grant
    ids come back after a rolled-back test (SQLite), so that memory must not outlive a test."""
    from accessreq.services import grants

    grants._used_recently.clear()
    yield
    grants._used_recently.clear()


@pytest.fixture
def signing_key_file(settings, tmp_path: Path) -> Path:
    """A checkpoint-signing key of the test's own (generated on first use)."""
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "key.pem")
    settings.AUDIT_SIGNING_KEY = ""
    return tmp_path / "key.pem"


# --- Personas ---------------------------------------------------------------------------------


@pytest.fixture
def manager(db: None) -> User:
    return UserFactory(display_name="Mina Manager", email="mina@example.com")


@pytest.fixture
def requester(db: None, manager: User) -> User:
    return UserFactory(display_name="Dev Requester", email="dev@example.com", manager=manager)


@pytest.fixture
def owner(db: None) -> User:
    return UserFactory(display_name="Omar Owner", email="omar@example.com")


@pytest.fixture
def security_admin(db: None) -> User:
    return UserFactory(
        display_name="Sam Security", email="sam@example.com", is_staff=True, groups=[SECURITY_ADMIN]
    )


@pytest.fixture
def auditor(db: None) -> User:
    return UserFactory(display_name="Alex Auditor", email="alex@example.com", groups=[AUDITOR])


@pytest.fixture
def outsider(db: None) -> User:
    return UserFactory(display_name="Olly Outsider", email="olly@example.com")


# --- MFA helpers ------------------------------------------------------------------------------


def enrol_totp(user: User) -> TOTPDevice:
    """Give ``user`` a confirmed TOTP device and a set of backup codes, as enrolment does."""
    device = TOTPDevice.new_for(user)
    device.confirmed = True
    device.confirmed_at = timezone.now()
    device.save()
    backup = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    BackupCode.objects.bulk_create(
        BackupCode(device=backup, digest=code_digests(normalize_backup_code(new_backup_code()))[0])
        for _ in range(10)
    )
    return device


def current_code(device: TOTPDevice, *, offset_steps: int = 0) -> str:
    device.refresh_from_db()
    value = totp(
        device.bin_key, step=device.step, digits=device.digits, t0=-offset_steps * device.step
    )
    return f"{value:0{device.digits}d}"


def password_login(client: Client, user: User, password: str = PASSWORD) -> None:
    response = client.post("/accounts/login/", {"login": user.email, "password": password})
    assert response.status_code == 302, response.content[:500]


@pytest.fixture
def verified_client() -> Callable[[User], Client]:
    """A client signed in as the user with a verified second factor, as after the OTP step."""

    def make(user: User) -> Client:
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() or enrol_totp(user)
        client = Client()
        client.force_login(user)
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session["mfa_verified_at"] = time.time()
        session["mfa_method"] = "totp"
        session.save()
        return client

    return make
