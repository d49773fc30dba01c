"""Pipelines: exchanging a CI identity for a token, authorization decisions, and the trusted
issuers and trust rules that say which CI jobs act as which service account."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from accessreq.api.oidc import (
    CIIdentity,
    IdentityRefused,
    jwks_url_allowed,
    unverified_summary,
    verify_id_token,
)
from accessreq.errors import NotAllowed, WorkflowError
from accessreq.models import ApiToken, ClaimFormat, TokenKind, TrustedIssuer, TrustRule
from accessreq.selectors import scope_grant_id, scopes_held, service_accounts_managed_by
from accessreq.services.grants import grant_touch
from accessreq.services.tokens import IssuedToken, token_data, token_issue
from audit.group import record_grouped
from audit.services import build_event, record
from portal.models import User
from portal.roles import is_security_admin

# --- Token exchange ---------------------------------------------------------------------------


def _matching_rule(issuer: TrustedIssuer, identity: CIIdentity) -> TrustRule:
    """The one trust rule (or rules of one account) the identity matches; refuses none or two."""
    candidates = TrustRule.objects.filter(
        issuer=issuer, repository=identity.repository
    ).select_related("service_account")
    matches = [
        rule
        for rule in candidates
        if (not rule.ref or fnmatchcase(identity.ref, rule.ref))
        and (not rule.environment or rule.environment == identity.environment)
        and (not rule.workflow or fnmatchcase(identity.workflow, rule.workflow))
    ]
    accounts = {rule.service_account_id for rule in matches}
    if not accounts:
        raise IdentityRefused(
            "no_trust_rule",
            f"No trust rule maps {identity.repository} at {identity.ref} to a service account.",
            status=403,
        )
    if len(accounts) > 1:
        raise IdentityRefused(
            "ambiguous_trust_rule",
            "Trust rules map this job to more than one service account; ask their owners to "
            "narrow them.",
            status=403,
        )
    # The most specific rule of the account explains the decision best.
    matches.sort(
        key=lambda rule: -sum(bool(f) for f in (rule.ref, rule.environment, rule.workflow))
    )
    rule = matches[0]
    account = rule.service_account
    if not account.is_active or account.kind != User.Kind.SERVICE:
        raise IdentityRefused(
            "account_inactive", f"The service account {account} is deactivated.", status=403
        )
    return rule


def token_exchange(*, id_token: str, http: HttpRequest | None = None) -> IssuedToken:
    """Verify a CI job's ID token, map it through the trust rules to a service account and issue
    a short-lived token limited to what that account holds now. A refusal is audited (with its
    code, never the token) and raised as :class:`IdentityRefused`."""
    try:
        issuer, identity = verify_id_token(id_token)
        rule = _matching_rule(issuer, identity)
    except IdentityRefused as refusal:
        with transaction.atomic():
            record(
                actor=None,
                action="api.token.exchange_refused",
                target=None,
                data={
                    "code": refusal.code,
                    "reason": refusal.message,
                    **unverified_summary(id_token),
                },
                request=http,
            )
        raise
    account = rule.service_account
    return token_issue(
        actor=account,
        service_account=account,
        kind=TokenKind.EXCHANGED,
        name=f"{identity.repository} run {identity.run_id}".strip()[:100],
        scopes=scopes_held(user=account),
        trust_rule=rule,
        ci_identity=identity.as_data(),
        pipeline=_pipeline(
            run_id=identity.run_id,
            commit_sha=identity.sha,
            repository=identity.repository,
            stage=identity.environment,
        ),
        http=http,
    )


def _pipeline(**fields: str) -> dict[str, str]:
    return {name: value for name, value in fields.items() if value}


@transaction.atomic
def token_use_refused(*, token: ApiToken, code: str, http: HttpRequest | None = None) -> None:
    """Record that a revoked or expired token (or one of a deactivated account) was presented."""
    record(
        actor=None,
        action="api.token.refused",
        target=token,
        data={**token_data(token), "code": code},
        request=http,
    )


# --- Authorization decisions --------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    """The answer to "may this pipeline do this now?", with reasons and its ledger entry."""

    allowed: bool
    reasons: list[dict[str, str]]
    audit_event_id: int


def authorize_decide(
    *,
    token: ApiToken,
    action: str,
    system: str,
    environment: str,
    context: dict[str, str] | None = None,
    http: HttpRequest | None = None,
) -> Decision:
    """Decide whether the token's service account may ``action`` on ``system`` in
    ``environment`` now: the token must cover that scope and the account must hold it by
    :func:`accessreq.selectors.holds_scope`. Every decision is an audit event; an allowed one
    also stamps the grant that allowed it as used (:func:`grant_touch`, at most hourly)."""
    account = token.service_account
    triple = f"{action}:{system}:{environment}"
    reasons: list[dict[str, str]] = []
    covered = token.scopes is None or triple in token.scopes
    # holds_scope's rule, naming the grant that satisfies it (the one a use is credited to).
    grant_id = (
        scope_grant_id(user=account, scope=action, system=system, environment=environment)
        if covered
        else None
    )
    if not covered:
        reasons.append(
            {
                "code": "token_scope",
                "message": f"This token does not cover {action} on {system} in {environment}; "
                "exchange a new one after the access is granted.",
            }
        )
    elif grant_id is not None:
        reasons.append(
            {
                "code": "grant_active",
                "message": f"{account} holds {action} on {system} in {environment}.",
            }
        )
    else:
        reasons.append(
            {
                "code": "scope_not_held",
                "message": f"{account} does not hold {action} on {system} in {environment} now; "
                "an owner can request it in Gatehouse.",
            }
        )
    allowed = reasons[0]["code"] == "grant_active"
    # Deploys to an environment that requires it also need an approved deployment, whose first
    # use is a state change: then the decision's event commits with it, in one transaction.
    # Otherwise the decision changes nothing but the ledger and goes through the group writer:
    # under load many decisions share one ledger transaction, and this returns once its own
    # event is committed.
    from accessreq.services.deployments import deployment_approval_required, deployment_gate

    gated = allowed and deployment_approval_required(action=action, environment=environment)
    with transaction.atomic() if gated else nullcontext():
        gate = None
        if gated:
            gate = deployment_gate(
                token=token,
                action=action,
                system=system,
                environment=environment,
                context=context or {},
                http=http,
            )
            if gate is not None:
                allowed = gate.allowed
                reasons.insert(0 if not gate.allowed else 1, gate.reason)
        event = build_event(
            actor=account,
            action="api.authorize.allowed" if allowed else "api.authorize.denied",
            target=("scope", triple, f"{action} on {system} in {environment}"),
            data={
                "decision": "allow" if allowed else "deny",
                "scope": action,
                "system": system,
                "environment": environment,
                "reasons": [reason["code"] for reason in reasons],
                "token_id": token.pk,
                "token_prefix": token.prefix,
                "token_kind": token.kind,
                **(gate.data if gate else {}),
            },
            request=http,
            pipeline=_pipeline(**(context or {})),
        )
        record_grouped(event)
    if allowed and grant_id is not None:
        grant_touch(grant_id)
    return Decision(allowed=allowed, reasons=reasons, audit_event_id=event.sequence)


# --- Trusted issuers (security admins) --------------------------------------------------------

ISSUER_FIELDS = ("name", "issuer", "audience", "jwks_url", "claim_format", "is_active")


def _issuer_values(issuer: TrustedIssuer) -> dict[str, Any]:
    return {field: getattr(issuer, field) for field in ISSUER_FIELDS}


def _check_issuer(values: dict[str, Any]) -> None:
    if not jwks_url_allowed(values["jwks_url"]):
        raise WorkflowError("The key URL must use https (plain http only to this machine).")
    if values["claim_format"] not in ClaimFormat.values:
        raise WorkflowError("Choose GitHub Actions or GitLab CI claims.")


@transaction.atomic
def issuer_create(
    *, actor: User, values: dict[str, Any], http: HttpRequest | None = None
) -> TrustedIssuer:
    """Trust a CI issuer; only security admins may."""
    if not is_security_admin(actor):
        raise NotAllowed("No such page.")
    _check_issuer(values)
    try:
        with transaction.atomic():
            issuer = TrustedIssuer.objects.create(**{f: values[f] for f in ISSUER_FIELDS})
    except IntegrityError:
        raise WorkflowError("An issuer with this name or URL already exists.") from None
    record(
        actor=actor,
        action="api.issuer.created",
        target=issuer,
        data={"after": _issuer_values(issuer)},
        request=http,
    )
    return issuer


@transaction.atomic
def issuer_update(
    *, actor: User, issuer_id: int, values: dict[str, Any], http: HttpRequest | None = None
) -> TrustedIssuer:
    """Change a trusted issuer (or pause it with ``is_active``); only security admins may."""
    if not is_security_admin(actor):
        raise NotAllowed("No such issuer.")
    _check_issuer(values)
    issuer = TrustedIssuer.objects.select_for_update().get(pk=issuer_id)
    before = _issuer_values(issuer)
    for field in ISSUER_FIELDS:
        setattr(issuer, field, values[field])
    after = _issuer_values(issuer)
    if after == before:
        return issuer
    try:
        with transaction.atomic():
            issuer.save()
    except IntegrityError:
        raise WorkflowError("An issuer with this name or URL already exists.") from None
    changed = {
        k: {"from": before[k], "to": after[k]} for k in ISSUER_FIELDS if before[k] != after[k]
    }
    record(
        actor=actor,
        action="api.issuer.changed",
        target=issuer,
        data={"changes": changed},
        request=http,
    )
    return issuer


# --- Trust rules (owners of the account, security admins) -------------------------------------


def _may_manage_rules(actor: User, account_id: int) -> bool:
    if is_security_admin(actor) and actor.is_active:
        return User.objects.filter(pk=account_id, kind=User.Kind.SERVICE).exists()
    return service_accounts_managed_by(actor).filter(pk=account_id).exists()


def _rule_data(rule: TrustRule) -> dict[str, Any]:
    return {
        "trust_rule_id": rule.pk,
        "issuer": rule.issuer.issuer,
        "service_account_id": rule.service_account_id,
        "repository": rule.repository,
        "ref": rule.ref,
        "environment": rule.environment,
        "workflow": rule.workflow,
    }


@transaction.atomic
def trust_rule_create(
    *,
    actor: User,
    service_account_id: int,
    issuer_id: int,
    repository: str,
    ref: str = "",
    environment: str = "",
    workflow: str = "",
    http: HttpRequest | None = None,
) -> TrustRule:
    """Let CI jobs of ``repository`` (narrowed by ref, environment, workflow) act as the
    service account. Its owners and security admins may."""
    if not _may_manage_rules(actor, service_account_id):
        raise NotAllowed("No such service account.")
    issuer = TrustedIssuer.objects.filter(pk=issuer_id, is_active=True).first()
    if issuer is None:
        raise WorkflowError("Choose an active trusted issuer.")
    repository = repository.strip()
    if not repository or "/" not in repository:
        raise WorkflowError("Give the repository as owner/name (GitLab: group/project).")
    try:
        with transaction.atomic():
            rule = TrustRule.objects.create(
                issuer=issuer,
                service_account_id=service_account_id,
                repository=repository,
                ref=ref.strip(),
                environment=environment.strip(),
                workflow=workflow.strip(),
                created_by=actor,
            )
    except IntegrityError:
        raise WorkflowError("This service account already has this rule.") from None
    record(
        actor=actor,
        action="api.trust_rule.created",
        target=rule,
        data=_rule_data(rule),
        request=http,
    )
    return rule


@transaction.atomic
def trust_rule_delete(*, actor: User, rule_id: int, http: HttpRequest | None = None) -> None:
    """Remove a trust rule: jobs it matched can no longer exchange tokens (tokens already issued
    keep their short lives; revoke them on the account's page if needed)."""
    rule = TrustRule.objects.select_for_update().select_related("issuer").filter(pk=rule_id).first()
    if rule is None or not _may_manage_rules(actor, rule.service_account_id):
        raise NotAllowed("No such trust rule.")
    data = _rule_data(rule)
    target = (rule._meta.label_lower, rule.pk, str(rule))
    rule.delete()
    record(actor=actor, action="api.trust_rule.deleted", target=target, data=data, request=http)
