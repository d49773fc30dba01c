"""SCIM tokens: minted by security admins (portal page or ``manage.py scim_token``), shown once,
stored as SHA-256, revocable, with the time of last use. They never expire by themselves: a
directory connection runs for years, so it is revoked and replaced by hand.

The secret exists only in the return value of ``scim_token_mint``; neither it nor its digest is
ever audited.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accessreq.services.common import MfaContext
from audit.services import record
from portal.history import acting_as
from portal.models import User
from portal.roles import is_security_admin
from scim.models import ScimToken

# A recognisable prefix lets secret scanners find a leaked SCIM token.
SECRET_PREFIX = "gts_"  # noqa: S105 - a public prefix, not a secret
PREFIX_LENGTH = 12
SECRET_PATTERN = re.compile(r"^gts_[A-Za-z0-9_-]{43}$")
LAST_USED_RESOLUTION = timedelta(minutes=1)
MINT_NEEDS_CODE = (
    "Enter the code from your authenticator app: minting a SCIM token needs a fresh second factor."
)


class TokenRefused(Exception):
    """Minting or revoking was refused; ``str(error)`` is fit to show the person."""


@dataclass(frozen=True)
class MintedToken:
    """A token just minted and its secret, which is shown this once."""

    token: ScimToken
    secret: str


def token_digest(secret: str) -> str:
    """Hex SHA-256 of the secret (256 random bits, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def token_data(token: ScimToken) -> dict[str, Any]:
    """What the ledger says about a token: never its secret or digest."""
    return {"scim_token_id": token.pk, "scim_token": token.name, "token_prefix": token.prefix}


def _may_manage(actor: User) -> bool:
    return actor.kind == User.Kind.SYSTEM or (actor.is_active and is_security_admin(actor))


@transaction.atomic
def scim_token_mint(
    *, actor: User, name: str, http: HttpRequest | None = None, via: str = "portal"
) -> MintedToken:
    """Mint a SCIM token named after the directory that will use it (``okta-prod``). Only
    security admins (or the system actor, for ``manage.py scim_token``) mint; names are unique,
    so the ledger's ``scim:<name>`` names one connection."""
    if not _may_manage(actor):
        raise TokenRefused("Only security admins mint SCIM tokens.")
    # A SCIM token can deactivate everyone: a hijacked session alone must not be able to mint one.
    if actor.kind != User.Kind.SYSTEM and not MfaContext.from_request(http).fresh:
        raise TokenRefused(MINT_NEEDS_CODE)
    name = name.strip()
    if not name or len(name) > 100:
        raise TokenRefused("Name the token after its directory, e.g. 'okta-prod' (1-100 chars).")
    if ScimToken.objects.filter(name__iexact=name).exists():
        raise TokenRefused(f"A SCIM token named {name!r} exists already; names are never reused.")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    try:
        with transaction.atomic(), acting_as(actor):
            token = ScimToken.objects.create(
                name=name,
                prefix=secret[:PREFIX_LENGTH],
                digest=token_digest(secret),
                created_by=actor,
            )
    except IntegrityError:
        raise TokenRefused(f"A SCIM token named {name!r} exists already.") from None
    record(
        actor=actor,
        action="scim.token.minted",
        target=token,
        data={**token_data(token), "via": via},
        request=http,
    )
    return MintedToken(token=token, secret=secret)


@transaction.atomic
def scim_token_revoke(
    *,
    actor: User,
    token_id: int,
    reason: str = "",
    http: HttpRequest | None = None,
    via: str = "portal",
) -> ScimToken:
    """Revoke a SCIM token now: the directory's next request is refused with 401."""
    if not _may_manage(actor):
        raise TokenRefused("Only security admins revoke SCIM tokens.")
    token = ScimToken.objects.select_for_update().filter(pk=token_id).first()
    if token is None:
        raise TokenRefused("No such SCIM token.")
    if token.revoked_at is not None:
        raise TokenRefused(f"{token.name} was already revoked.")
    token.revoked_at = timezone.now()
    token.revoked_by = actor
    token.revoke_reason = reason.strip()[:200]
    with acting_as(actor):
        token.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    record(
        actor=actor,
        action="scim.token.revoked",
        target=token,
        data={**token_data(token), "reason": token.revoke_reason, "via": via},
        request=http,
    )
    return token


def token_for_secret(secret: str) -> ScimToken | None:
    """The token with this secret (revoked or not), or None for anything else."""
    if not SECRET_PATTERN.match(secret):
        return None
    return ScimToken.objects.filter(digest=token_digest(secret)).first()


def token_touch(token: ScimToken) -> None:
    """Note that ``token`` was used, at most about once a minute (no audit event: the changes it
    makes are recorded)."""
    clock = timezone.now()
    if token.last_used_at is not None and clock - token.last_used_at < LAST_USED_RESOLUTION:
        return
    ScimToken.objects.filter(pk=token.pk).exclude(
        last_used_at__gt=clock - LAST_USED_RESOLUTION
    ).update(last_used_at=clock)


def token_use_refused(*, token: ScimToken, http: HttpRequest) -> None:
    """Audit a request with a revoked token, at most once a minute per token: a directory still
    configured with it, or a leaked secret being replayed, is worth knowing."""
    if not cache.add(f"gatehouse-scim-refused:{token.pk}", 1, timeout=60):
        return
    with transaction.atomic():
        record(
            actor=User.objects.system_actor(),
            action="scim.token.refused",
            target=token,
            data={**token_data(token), "reason": "token_revoked"},
            request=http,
        )
