"""Encryption of secrets at rest (TOTP keys) and keyed hashing of one-time codes.

Keys come from ``settings.FIELD_ENCRYPTION_KEYS``: the first encrypts, all decrypt, so a key can be
rotated by putting the new one first and re-saving (``manage.py rotate_field_key``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings


def _derive(secret: str, purpose: bytes) -> bytes:
    return hashlib.sha256(purpose + b"\x00" + secret.encode()).digest()


@cache
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet(
        [Fernet(base64.urlsafe_b64encode(_derive(k, b"gatehouse-field-encryption"))) for k in keys]
    )


def encrypt(plaintext: str) -> str:
    """Encrypt ``plaintext`` with the current key; the result is ASCII."""
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt a value written by :func:`encrypt` with any configured key."""
    try:
        return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS)).decrypt(token.encode()).decode()
    except InvalidToken:
        raise ValueError(
            "An encrypted value cannot be read with FIELD_ENCRYPTION_KEYS; was a key removed?"
        ) from None


def code_digests(code: str) -> list[str]:
    """Keyed digests of a one-time code under every configured key (current key first)."""
    return [
        hmac.new(_derive(k, b"gatehouse-backup-code"), code.encode(), hashlib.sha256).hexdigest()
        for k in settings.FIELD_ENCRYPTION_KEYS
    ]
