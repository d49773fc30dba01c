"""API tokens of service accounts: issue (minted by an owner or exchanged from a CI identity),
revoke, rotate, record use, and remind owners before minted tokens expire.

The secret exists only in the return value of ``token_issue``/``token_rotate``: the database keeps
its SHA-256 and an identifying prefix, and neither the secret nor the digest is ever audited.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import ApiToken, TokenKind, TrustRule
from accessreq.selectors import service_accounts_managed_by
from accessreq.services.common import MfaContext, now
from accessreq.services.notifications import notify
from audit.services import record
from portal.models import User
from portal.roles import is_security_admin

# Recognisable prefixes let secret scanners find leaked tokens and tell the two kinds apart.
SECRET_PREFIX = {TokenKind.EXCHANGED: "gtx_", TokenKind.MINTED: "gtm_"}
PREFIX_LENGTH = 12
# Writing last_used_at on every call would make each authorization a second write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued and its secret, which is shown (or returned) this once."""

    token: ApiToken
    secret: str
    audit_event_id: int


def token_digest(secret: str) -> str:
    """The stored form of a secret: hex SHA-256 (the secret is 256 random bits, so no salt)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(kind: str) -> str:
    return SECRET_PREFIX[TokenKind(kind)] + secrets.token_urlsafe(32)


def token_data(token: ApiToken) -> dict[str, Any]:
    """What the ledger says about a token: never its secret or digest."""
    return {
        "token_id": token.pk,
        "token_prefix": token.prefix,
        "token_kind": token.kind,
        "token_name": token.name,
        "service_account_id": token.service_account_id,
        "expires_at": token.expires_at.isoformat(),
    }


def _create(
    *,
    service_account: User,
    kind: str,
    lifetime: timedelta,
    name: str = "",
    created_by: User | None = None,
    scopes: list[str] | None = None,
    trust_rule: TrustRule | None = None,
    ci_identity: dict[str, Any] | None = None,
    rotated_from: ApiToken | None = None,
) -> IssuedToken:
    secret = _new_secret(kind)
    clock = now()
    # audit_event_id is filled in by the caller once the event is written.
    token = ApiToken.objects.create(
        service_account=service_account,
        kind=kind,
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        digest=token_digest(secret),
        scopes=scopes,
        created_at=clock,
        created_by=created_by,
        trust_rule=trust_rule,
        ci_identity=ci_identity or {},
        expires_at=clock + lifetime,
        rotated_from=rotated_from,
    )
    return IssuedToken(token=token, secret=secret, audit_event_id=0)


def _require_step_up(mfa: MfaContext, doing: str) -> None:
    """A long-lived credential is made only right after a second factor: a hijacked session
    alone must not be able to take one away."""
    if not mfa.fresh:
        raise StepUpRequired(
            f"{doing} a long-lived token needs a fresh second factor: enter a code from your app."
        )


def _minted_lifetime(days: int) -> timedelta:
    limit = settings.API_MINTED_TOKEN_MAX_DAYS
    if days < 1 or days > limit:
        raise WorkflowError(f"A minted token lives between 1 and {limit} days.")
    return timedelta(days=days)


@transaction.atomic
def token_issue(
    *,
    actor: User,
    service_account: User,
    kind: str,
    name: str = "",
    lifetime_days: int | None = None,
    scopes: list[str] | None = None,
    trust_rule: TrustRule | None = None,
    ci_identity: dict[str, Any] | None = None,
    pipeline: dict[str, str] | None = None,
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> IssuedToken:
    """Issue a token for ``service_account``. Minted: ``actor`` is an owner with a fresh second
    factor and the lifetime is capped by ``API_MINTED_TOKEN_MAX_DAYS``. Exchanged: ``actor`` is
    the account itself, after the exchange verified the CI identity; it lives
    ``API_EXCHANGED_TOKEN_MINUTES`` (<= 15)."""
    if service_account.kind != User.Kind.SERVICE or not service_account.is_active:
        raise WorkflowError("Tokens are only for active service accounts.")
    if kind == TokenKind.MINTED:
        if not service_accounts_managed_by(actor).filter(pk=service_account.pk).exists():
            raise NotAllowed("No such service account.")
        _require_step_up(mfa or MfaContext.from_request(http), "Minting")
        name = name.strip()
        if not name:
            raise WorkflowError("Name the token after where it is used, e.g. 'nightly-deploy'.")
        issued = _create(
            service_account=service_account,
            kind=kind,
            lifetime=_minted_lifetime(lifetime_days or settings.API_MINTED_TOKEN_MAX_DAYS),
            name=name[:100],
            created_by=actor,
            scopes=scopes,
        )
        action = "api.token.minted"
    elif kind == TokenKind.EXCHANGED:
        if actor.pk != service_account.pk:
            raise NotAllowed("Exchanged tokens are issued to the account that proved its identity.")
        minutes = min(settings.API_EXCHANGED_TOKEN_MINUTES, 15)
        issued = _create(
            service_account=service_account,
            kind=kind,
            lifetime=timedelta(minutes=minutes),
            name=name[:100],
            scopes=scopes,
            trust_rule=trust_rule,
            ci_identity=ci_identity,
        )
        action = "api.token.exchanged"
    else:
        raise WorkflowError(f"Unknown token kind {kind!r}.")
    data = token_data(issued.token)
    data["scopes"] = scopes
    if trust_rule is not None:
        data["trust_rule_id"] = trust_rule.pk
    if ci_identity:
        data["ci_identity"] = ci_identity
    event = record(
        actor=actor,
        action=action,
        target=issued.token,
        data=data,
        request=http,
        pipeline=pipeline,
    )
    return replace(issued, audit_event_id=event.sequence)


def _revocable(actor: User) -> Any:
    """Tokens ``actor`` may revoke: of accounts they own, all for security admins, and a service
    account its own (a CI job revokes its token when it is done)."""
    tokens = ApiToken.objects.all()
    if actor.kind == User.Kind.SERVICE:
        return tokens.filter(service_account=actor)
    if is_security_admin(actor) and actor.is_active:
        return tokens
    return tokens.filter(service_account__in=service_accounts_managed_by(actor))


@transaction.atomic
def token_revoke(
    *, actor: User, token_id: int, reason: str = "", http: HttpRequest | None = None
) -> ApiToken:
    """Revoke a token now; it is refused from this moment on."""
    if not _revocable(actor).filter(pk=token_id).exists():
        raise NotAllowed("No such token.")
    token = ApiToken.objects.select_for_update().select_related("service_account").get(pk=token_id)
    clock = now()
    if token.revoked_at is not None:
        raise WorkflowError("This token was already revoked.")
    if token.expires_at <= clock:
        raise WorkflowError("This token has already expired.")
    token.revoked_at = clock
    token.revoked_by = actor
    token.revoke_reason = reason.strip()[:200]
    token.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    record(
        actor=actor,
        action="api.token.revoked",
        target=token,
        data={**token_data(token), "reason": token.revoke_reason},
        request=http,
    )
    return token


@transaction.atomic
def token_rotate(
    *,
    actor: User,
    token_id: int,
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> IssuedToken:
    """Replace a minted token: a new secret with the same name and lifetime (capped at today's
    maximum), and the old token revoked in the same transaction. Needs a fresh second factor."""
    managed = ApiToken.objects.filter(service_account__in=service_accounts_managed_by(actor))
    if not managed.filter(pk=token_id, kind=TokenKind.MINTED).exists():
        raise NotAllowed("No such token.")
    _require_step_up(mfa or MfaContext.from_request(http), "Rotating")
    old = ApiToken.objects.select_for_update().select_related("service_account").get(pk=token_id)
    clock = now()
    if old.revoked_at is not None or old.expires_at <= clock:
        raise WorkflowError("Only a token still in use can be rotated; mint a new one instead.")
    if not old.service_account.is_active:
        raise WorkflowError("Tokens are only for active service accounts.")
    days = max(1, round((old.expires_at - old.created_at) / timedelta(days=1)))
    days = min(days, settings.API_MINTED_TOKEN_MAX_DAYS)
    issued = _create(
        service_account=old.service_account,
        kind=TokenKind.MINTED,
        lifetime=timedelta(days=days),
        name=old.name,
        created_by=actor,
        scopes=old.scopes,
        rotated_from=old,
    )
    old.revoked_at = clock
    old.revoked_by = actor
    old.revoke_reason = "rotated"
    old.save(update_fields=["revoked_at", "revoked_by", "revoke_reason"])
    event = record(
        actor=actor,
        action="api.token.rotated",
        target=issued.token,
        data={
            **token_data(issued.token),
            "old_token_id": old.pk,
            "old_token_prefix": old.prefix,
        },
        request=http,
    )
    return replace(issued, audit_event_id=event.sequence)


def token_touch(token: ApiToken) -> None:
    """Note that ``token`` was used, at most about once a minute: a conditional update of a field
    kept out of the history, and no audit event (the decision it was used for is recorded). The
    app clock is close enough for this and saves a query on every call."""
    clock = timezone.now()
    if token.last_used_at is not None and clock - token.last_used_at < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).exclude(
        last_used_at__gt=clock - LAST_USED_RESOLUTION
    ).update(last_used_at=clock)


def token_expiry_reminders_send() -> int:
    """Email owners ``API_TOKEN_REMINDER_DAYS`` and one day before a minted token expires, once
    per lead time; a token shorter than the lead time gets no reminder for it."""
    sent = 0
    with transaction.atomic():
        clock = now()
        horizon = clock + timedelta(days=settings.API_TOKEN_REMINDER_DAYS)
        due = (
            ApiToken.objects.select_for_update(skip_locked=True)
            .filter(kind=TokenKind.MINTED, revoked_at__isnull=True)
            .filter(expires_at__gt=clock, expires_at__lte=horizon)
            .select_related("service_account")
        )
        for token in due:
            lead = 1 if token.expires_at - clock <= timedelta(days=1) else None
            lead = lead or settings.API_TOKEN_REMINDER_DAYS
            if token.reminded_days_before is not None and token.reminded_days_before <= lead:
                continue
            if token.expires_at - token.created_at <= timedelta(days=lead):
                continue
            token.reminded_days_before = lead
            token.save(update_fields=["reminded_days_before"])
            when = f"{token.expires_at:%Y-%m-%d %H:%M} UTC"
            notify(
                key=f"apitoken:{token.pk}:expiry:{lead}d",
                recipient=token.service_account,
                subject=f"API token {token.prefix}… expires {when}",
                lines=[
                    f"The token {token.name!r} ({token.prefix}…) expires at {when}.",
                    "Rotate it before then and put the new secret where the old one is used:",
                ],
                path=reverse("service_account_detail", args=[token.service_account_id]),
            )
            record(
                actor=User.objects.system_actor(),
                action="api.token.expiry_reminded",
                target=token,
                data={**token_data(token), "days_before": lead},
            )
            sent += 1
    return sent


def tokens_flag_orphaned(*, leaver: User, actor: User, http: HttpRequest | None = None) -> int:
    """Flag the usable tokens of every service account ``leaver`` was the only active owner of
    (offboarding). They keep working, since revoking could stop a production pipeline; the
    security admins are told to name a new owner and rotate them. Returns how many were flagged."""
    from accessreq.policy import security_admins

    accounts = [
        account
        for account in User.objects.filter(kind=User.Kind.SERVICE, owners=leaver).order_by("pk")
        if not account.owners.filter(is_active=True, kind=User.Kind.HUMAN)
        .exclude(pk=leaver.pk)
        .exists()
    ]
    clock = now()
    reason = f"The only owner of this service account, {leaver}, left"
    flagged = 0
    for account in accounts:
        tokens = list(
            ApiToken.objects.select_for_update()
            .usable()
            .filter(service_account=account, flagged_at__isnull=True)
            .order_by("pk")
        )
        for token in tokens:
            token.flagged_at = clock
            token.flag_reason = reason
            token.save(update_fields=["flagged_at", "flag_reason"])
            record(
                actor=actor,
                action="api.token.flagged",
                target=token,
                data={**token_data(token), "reason": reason, "leaver_id": leaver.pk},
                request=http,
            )
        flagged += len(tokens)
        for admin in security_admins():
            notify(
                key=f"service_account:{account.pk}:orphaned:{leaver.pk}",
                recipient=admin,
                subject=f"Service account without an owner: {account}",
                lines=[
                    f"{reason}; {len(tokens)} of its tokens still work.",
                    "Name a new owner, then rotate or revoke its tokens.",
                ],
                path=reverse("service_account_detail", args=[account.pk]),
            )
    return flagged
