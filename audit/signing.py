"""The Ed25519 key that signs checkpoints, its key id, and the published public keys."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def key_id_of(public: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key."""
    return hashlib.sha256(public_bytes(public)).hexdigest()[:16]


def public_bytes(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load(pem: bytes, source: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{source} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured(f"{source} must hold an Ed25519 private key.")
    return key


def write_new_key(path: Path) -> Ed25519PrivateKey:
    """Create a key file readable by its owner only; fails if the file exists."""
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem(key))
    return key


def signing_key() -> Ed25519PrivateKey:
    """The current checkpoint-signing key from settings (generated for the embedded default)."""
    if settings.AUDIT_SIGNING_KEY:
        return _load(settings.AUDIT_SIGNING_KEY.encode(), "AUDIT_SIGNING_KEY")
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if not path.exists():
        if settings.PRODUCTION:
            raise ImproperlyConfigured(f"AUDIT_SIGNING_KEY_FILE {path} does not exist.")
        try:
            return write_new_key(path)
        except FileExistsError:
            pass  # another process created it first
    return _load(path.read_bytes(), f"AUDIT_SIGNING_KEY_FILE {path}")


def verify_signature(public_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        public.verify(bytes.fromhex(signature_hex), message)
    except (ValueError, InvalidSignature):
        return False
    return True
