"""``manage.py totp EMAIL``: the current authenticator code, for signing in to demo data."""

from __future__ import annotations

from io import StringIO
from types import SimpleNamespace

import pytest
from django.core.management import CommandError, call_command
from django_otp.oath import TOTP
from pytest_django import Settings

from portal.models import TOTPDevice, User
from tests.conftest import current_code, enrol_totp

pytestmark = pytest.mark.django_db


def run_totp(email: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("totp", email, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_prints_the_code_the_server_accepts(requester: User) -> None:
    device = enrol_totp(requester)
    before = current_code(device)
    out, err = run_totp(requester.email)
    after = current_code(device)

    assert out.strip() in {before, after}
    seconds = int(err.split("Valid for ")[1].split()[0])
    assert 1 <= seconds <= device.step


def test_keeps_leading_zeros_and_counts_down_to_the_next_step(
    requester: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    # RFC 6238 test vector: at T=1111111109 the SHA-1 code is 07081804, so 6 digits: 081804.
    device = TOTPDevice.new_for(requester)
    device.set_key(b"12345678901234567890")
    device.confirmed = True
    device.save()
    monkeypatch.setattr(
        "portal.management.commands.totp.time", SimpleNamespace(time=lambda: 1111111109.0)
    )

    out, err = run_totp(requester.email)

    assert out == "081804\n"
    assert err.strip() == "Valid for 1 more second."


def test_email_is_case_insensitive(requester: User) -> None:
    enrol_totp(requester)
    out, _ = run_totp(requester.email.upper())
    assert len(out.strip()) == 6 and out.strip().isdigit()


def test_says_when_the_current_code_was_already_used(requester: User) -> None:
    device = enrol_totp(requester)
    device.last_t = TOTP(device.bin_key).t()
    device.save()

    _, err = run_totp(requester.email)

    assert "already been used" in err


def test_unknown_email_is_a_clear_error() -> None:
    with pytest.raises(CommandError, match="No user has the email address 'nobody@example.com'"):
        run_totp("nobody@example.com")


def test_user_without_a_confirmed_device_is_a_clear_error(requester: User) -> None:
    TOTPDevice.new_for(requester).save()  # enrolment started but never confirmed

    with pytest.raises(CommandError, match="has no enrolled authenticator"):
        run_totp(requester.email)


def test_refused_in_production(requester: User, settings: Settings) -> None:
    enrol_totp(requester)
    settings.PRODUCTION = True

    out = StringIO()
    with pytest.raises(CommandError, match="Refusing to show authenticator codes in production"):
        call_command("totp", requester.email, stdout=out)
    assert out.getvalue() == ""
