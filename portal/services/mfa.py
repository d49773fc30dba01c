"""Second-factor enrolment and verification.

Every function locks the device rows it reads, writes its audit event in the same transaction,
and marks the session verified only after the code is accepted, rotating the session key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import django_otp
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from audit.services import record
from portal import crypto
from portal.models import BackupCode, BackupCodeDevice, TOTPDevice, User
from portal.models.mfa import new_backup_code, normalize_backup_code

SESSION_VERIFIED_AT = "mfa_verified_at"
SESSION_METHOD = "mfa_method"


@dataclass
class VerifyResult:
    """Outcome of one code submission; ``error`` is a message fit to show the person."""

    ok: bool
    error: str = ""
    method: str = ""
    backup_codes_left: int | None = None
    retry_after: int = 0


@dataclass
class Enrolment:
    device: TOTPDevice
    backup_codes: list[str] = field(default_factory=list)


def confirmed_totp(user: User) -> TOTPDevice | None:
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def backup_codes_left(user: User) -> int:
    return BackupCode.objects.filter(device__user=user, used_at__isnull=True).count()


def has_confirmed_device(user: User) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def pending_totp(user: User) -> TOTPDevice:
    """The unconfirmed TOTP device shown on the enrolment page, created on first visit."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()
    if device is None:
        device = TOTPDevice.new_for(user)
        device.save()
    return device


def _mark_verified(
    request: HttpRequest, device: TOTPDevice | BackupCodeDevice, method: str
) -> None:
    django_otp.login(request, device)
    # A new session key after the second factor: a key seen before the OTP step is worthless.
    request.session.cycle_key()
    request.session[SESSION_VERIFIED_AT] = time.time()
    request.session[SESSION_METHOD] = method


def mfa_verified_age(request: HttpRequest) -> float | None:
    """Seconds since this session last verified a second factor, or None if never."""
    at = request.session.get(SESSION_VERIFIED_AT)
    return None if at is None else max(0.0, time.time() - float(at))


def mfa_is_fresh(request: HttpRequest) -> bool:
    """Whether a step-up action may proceed without asking for a new code."""
    age = mfa_verified_age(request)
    return age is not None and age <= settings.MFA_STEP_UP_SECONDS


def mfa_fresh_until(request: HttpRequest) -> datetime | None:
    """When this session's last code stops counting for step-up actions (None if it already has)."""
    at = request.session.get(SESSION_VERIFIED_AT)
    if at is None or not mfa_is_fresh(request):
        return None
    return datetime.fromtimestamp(float(at) + settings.MFA_STEP_UP_SECONDS, tz=UTC)


def _throttled(device: TOTPDevice) -> int:
    allowed, info = device.verify_is_allowed()
    if allowed:
        return 0
    locked_until = info["locked_until"] if info else timezone.now()
    return max(1, int((locked_until - timezone.now()).total_seconds() + 0.999))


# From this many wrong codes in a row the pause is "too many"; before, it is only a short wait.
_TOO_MANY = 3


def _throttle_message(device: TOTPDevice, wait: int) -> str:
    """Why the code was not checked, and how long to wait: a pause after one or two wrong codes
    is not 'too many'."""
    seconds = f"{wait} second{'s' if wait != 1 else ''}"
    if device.throttling_failure_count < _TOO_MANY:
        return (
            f"Wait {seconds}, then enter the code again: after a wrong code Gatehouse pauses "
            "briefly before it checks the next one, so this one was not checked."
        )
    return f"Too many wrong codes. Wait {seconds} before trying again."


def _fail(request: HttpRequest, user: User, device: TOTPDevice, reason: str) -> VerifyResult:
    device.throttle_increment(commit=False)
    device.save(update_fields=["throttling_failure_count", "throttling_failure_timestamp"])
    record(
        actor=user, action="auth.mfa.failed", target=user, data={"reason": reason}, request=request
    )
    messages = {
        "replayed": "That code has already been used. Wait for the next code from your app.",
        "wrong": "That code is not right. Check your authenticator app and try again.",
    }
    return VerifyResult(ok=False, error=messages[reason])


@transaction.atomic
def mfa_verify(*, request: HttpRequest, user: User, code: str) -> VerifyResult:
    """Check a TOTP or backup code for ``user`` and, if it is right, verify the session.

    Wrong or reused codes count towards an exponential throttle shared by both kinds of code;
    while throttled, no code is checked at all.
    """
    totp = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if totp is None:
        return VerifyResult(ok=False, error="You have no authenticator enrolled yet.")
    wait = _throttled(totp)
    if wait:
        record(
            actor=user,
            action="auth.mfa.failed",
            target=user,
            data={"reason": "throttled"},
            request=request,
        )
        return VerifyResult(ok=False, retry_after=wait, error=_throttle_message(totp, wait))
    cleaned = code.strip().replace(" ", "")
    if cleaned.isdigit() and len(cleaned) == totp.digits:
        outcome = totp.check_code(cleaned)
        if outcome != "ok":
            return _fail(request, user, totp, outcome)
        totp.throttle_reset(commit=False)
        totp.save(
            update_fields=[
                "last_t",
                "drift",
                "throttling_failure_count",
                "throttling_failure_timestamp",
            ]
        )
        _mark_verified(request, totp, "totp")
        record(
            actor=user,
            action="auth.mfa.verified",
            target=user,
            data={"method": "totp"},
            request=request,
        )
        return VerifyResult(ok=True, method="totp")

    backup = BackupCodeDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
    if backup is None or not normalize_backup_code(cleaned) or not backup.verify_token(cleaned):
        return _fail(request, user, totp, "wrong")
    totp.throttle_reset()
    left = backup.remaining()
    _mark_verified(request, backup, "backup_code")
    record(
        actor=user,
        action="auth.mfa.backup_code_used",
        target=user,
        data={"backup_codes_left": left},
        request=request,
    )
    return VerifyResult(ok=True, method="backup_code", backup_codes_left=left)


def _replace_backup_codes(user: User) -> list[str]:
    BackupCodeDevice.objects.filter(user=user).delete()
    device = BackupCodeDevice.objects.create(user=user, name="Backup codes", confirmed=True)
    codes = [new_backup_code() for _ in range(settings.MFA_BACKUP_CODE_COUNT)]
    BackupCode.objects.bulk_create(
        BackupCode(device=device, digest=crypto.code_digests(normalize_backup_code(c))[0])
        for c in codes
    )
    return codes


@transaction.atomic
def mfa_enrol(*, request: HttpRequest, user: User, code: str) -> tuple[VerifyResult, list[str]]:
    """Confirm the pending TOTP device with its first code; issue backup codes; verify session.

    Returns the result and, on success, the backup codes in clear (to be shown once).
    """
    if TOTPDevice.objects.filter(user=user, confirmed=True).exists():
        return VerifyResult(ok=False, error="You already have an authenticator enrolled."), []
    device = (
        TOTPDevice.objects.select_for_update()
        .filter(user=user, confirmed=False)
        .order_by("-pk")
        .first()
    )
    if device is None:
        return VerifyResult(ok=False, error="The enrolment expired. Scan the new code."), []
    wait = _throttled(device)
    if wait:
        return VerifyResult(ok=False, retry_after=wait, error=_throttle_message(device, wait)), []
    cleaned = code.strip().replace(" ", "")
    if not (cleaned.isdigit() and len(cleaned) == device.digits):
        return _fail(request, user, device, "wrong"), []
    outcome = device.check_code(cleaned)
    if outcome != "ok":
        return _fail(request, user, device, outcome), []
    device.confirmed = True
    device.confirmed_at = timezone.now()
    device.throttle_reset(commit=False)
    device.save()
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    codes = _replace_backup_codes(user)
    _mark_verified(request, device, "totp")
    record(
        actor=user,
        action="auth.mfa.enrolled",
        target=user,
        data={"device": device.name, "backup_codes_issued": len(codes)},
        request=request,
    )
    return VerifyResult(ok=True, method="totp"), codes


@transaction.atomic
def mfa_backup_codes_regenerate(*, request: HttpRequest, user: User) -> list[str]:
    """Replace all of ``user``'s backup codes; the old ones stop working at once."""
    User.objects.select_for_update().get(pk=user.pk)
    codes = _replace_backup_codes(user)
    record(
        actor=user,
        action="auth.mfa.backup_codes_regenerated",
        target=user,
        data={"backup_codes_issued": len(codes)},
        request=request,
    )
    return codes


@transaction.atomic
def mfa_reset(*, user: User, actor: User, reason: str, request: HttpRequest | None = None) -> None:
    """Remove ``user``'s second factors (lost phone): they must enrol again at next sign-in.

    Their sessions end too, so nobody keeps a session verified by the removed device.
    """
    from portal.services.people import user_sessions_end

    TOTPDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    user_sessions_end(user=user)
    record(
        actor=actor, action="auth.mfa.reset", target=user, data={"reason": reason}, request=request
    )
