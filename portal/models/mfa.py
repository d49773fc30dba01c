"""Second-factor devices: TOTP with its key encrypted at rest, and hashed one-time backup codes.

Both subclass django-otp's ``Device`` so ``django_otp.login`` and ``user.is_verified()`` work. They
are only verified through ``portal.services.mfa``, which locks the device row first so that two
parallel submissions of one code cannot both pass.
"""

from __future__ import annotations

import base64
import secrets

from django.conf import settings
from django.db import models
from django_otp.models import Device, ThrottlingMixin
from django_otp.oath import TOTP

from portal import crypto


def random_totp_key() -> bytes:
    return secrets.token_bytes(20)


class TOTPDevice(ThrottlingMixin, Device):
    """An RFC 6238 authenticator app. The key is stored encrypted; failures throttle the user."""

    encrypted_key = models.TextField()
    step = models.PositiveSmallIntegerField(default=30)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    drift = models.SmallIntegerField(default=0)
    last_t = models.BigIntegerField(default=-1, help_text="Time step of the last accepted code.")
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "TOTP device"
        constraints = [
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(confirmed=True), name="one_confirmed_totp"
            )
        ]

    @classmethod
    def new_for(cls, user: object, *, name: str = "Authenticator app") -> TOTPDevice:
        device = cls(user=user, name=name, confirmed=False)
        device.set_key(random_totp_key())
        return device

    def set_key(self, key: bytes) -> None:
        self.encrypted_key = crypto.encrypt(key.hex())

    @property
    def bin_key(self) -> bytes:
        return bytes.fromhex(crypto.decrypt(self.encrypted_key))

    @property
    def base32_key(self) -> str:
        return base64.b32encode(self.bin_key).decode().rstrip("=")

    def provisioning_uri(self) -> str:
        from urllib.parse import quote, urlencode

        issuer = settings.OTP_TOTP_ISSUER
        label = quote(f"{issuer}:{self.user.email}")
        query = urlencode(
            {
                "secret": self.base32_key,
                "issuer": issuer,
                "digits": self.digits,
                "period": self.step,
            }
        )
        return f"otpauth://totp/{label}?{query}"

    def get_throttle_factor(self) -> int:
        return int(settings.MFA_THROTTLE_FACTOR)

    def _totp(self) -> TOTP:
        return TOTP(self.bin_key, self.step, 0, self.digits, self.drift)

    def check_code(self, code: str) -> str:
        """Check ``code``: return "ok", "replayed" or "wrong". Updates ``last_t``/``drift`` on ok.

        The caller holds a row lock and saves the device.
        """
        try:
            token = int(code)
        except ValueError:
            return "wrong"
        totp = self._totp()
        if totp.verify(token, self.tolerance, self.last_t + 1):
            self.last_t = totp.t()
            self.drift = totp.drift
            return "ok"
        if self.last_t >= 0 and self._totp().verify(token, self.tolerance):
            return "replayed"
        return "wrong"

    def verify_token(self, token: str) -> bool:  # django-otp API; services use check_code
        return self.check_code(token) == "ok"


BACKUP_CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def new_backup_code() -> str:
    """A random code of 10 characters (about 49 bits), shown as ``xxxxx-xxxxx``."""
    raw = "".join(secrets.choice(BACKUP_CODE_ALPHABET) for _ in range(10))
    return f"{raw[:5]}-{raw[5:]}"


def normalize_backup_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


class BackupCodeDevice(Device):
    """A set of one-time backup codes; only keyed digests are stored."""

    class Meta:
        verbose_name = "backup code set"

    def verify_token(self, token: str) -> bool:
        """Use up the matching unused code. The conditional update lets only one caller win."""
        from django.utils import timezone

        digests = crypto.code_digests(normalize_backup_code(token))
        used = self.codes.filter(digest__in=digests, used_at__isnull=True).update(
            used_at=timezone.now()
        )
        return used == 1

    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()


class BackupCode(models.Model):
    """One backup code, stored as a keyed digest; usable once."""

    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")
    digest = models.CharField(max_length=64)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["device", "digest"], name="unique_backup_code")
        ]

    def __str__(self) -> str:
        return f"backup code {self.pk} ({'used' if self.used_at else 'unused'})"
