"""Deployment approvals: a pipeline opens one for a commit, approvers named by the
environment's policy decide it stage by stage, and the authorization check of a deploy to an
environment that requires it uses it once.

Routing reuses the request workflow's policy rules (:func:`accessreq.policy.stages_for` and
:func:`accessreq.policy.stage_approvers` for the entitlement through which the service account
holds the scope): the service account's owners never decide their own pipeline's deployment, and
one person decides at most one stage. Every transition is checked against
:mod:`accessreq.deployment_states` and recorded with the pipeline context (commit, run, stage,
repository).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models.functions import Now
from django.http import HttpRequest
from django.urls import reverse
from simple_history.utils import bulk_create_with_history

from accessreq.api.oidc import jwks_url_allowed
from accessreq.deployment_states import START, DeploymentState, check_transition
from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.models import (
    ApiToken,
    AssignmentReason,
    DeploymentApproval,
    DeploymentAssignment,
    DeploymentDecision,
    Environment,
    Grant,
)
from accessreq.policy import (
    STEP_UP_TIERS,
    conflicted,
    decides_for,
    security_admins,
    stage_approvers,
    stages_for,
)
from accessreq.selectors import holds_scope
from accessreq.services.common import MfaContext, now
from accessreq.services.notifications import notify_with_delegates
from audit.services import record
from portal import sql
from portal.models import User

DEPLOY_SCOPE = "deploy"
CHECK_PASSED = "passed"
FULL_SHA = re.compile(r"^[0-9a-f]{40}$")


class DeploymentRefused(Exception):
    """The pipeline's request was refused; answered as an API error with ``status`` and
    ``code``."""

    def __init__(
        self, status: int, code: str, message: str, *, extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.extra = extra or {}


@dataclass(frozen=True)
class OpenedDeployment:
    deployment: DeploymentApproval
    callback_secret: str  # shown once, to verify the callbacks; "" without a callback URL
    audit_event_id: int


def _held_grant(account: User, scope: str, system: str, environment: str) -> Grant | None:
    """The grant through which ``account`` holds the scope now (its entitlement's policy
    routes the approval); the rule is :func:`holds_scope`'s, asked first."""
    if not holds_scope(user=account, scope=scope, system=system, environment=environment):
        return None
    return (
        Grant.objects.filter(
            beneficiary=account,
            revoked_at__isnull=True,
            starts_at__lte=Now(),
            expires_at__gt=Now(),
            entitlement__scopes__slug=scope,
            entitlement__system__slug=system,
            entitlement__environment__slug=environment,
        )
        .select_related("entitlement__system", "entitlement__environment")
        .order_by("pk")
        .first()
    )


def _check_callback_url(url: str) -> None:
    """A callback goes only to a host named in ``DEPLOYMENT_CALLBACK_HOSTS`` (``*.example.com``
    for its subdomains), over https (plain http only to loopback): Gatehouse must not be made to
    POST to any address a pipeline names, such as a service inside the network."""
    if not jwks_url_allowed(url):
        raise DeploymentRefused(
            400,
            "invalid_callback_url",
            "The callback URL must use https (plain http only to this machine).",
        )
    host = (urlsplit(url).hostname or "").lower()
    allowed = settings.DEPLOYMENT_CALLBACK_HOSTS
    if not any(
        host == name or (name.startswith("*.") and host.endswith(name[1:])) for name in allowed
    ):
        raise DeploymentRefused(
            400,
            "callback_host_not_allowed",
            f"Callbacks may go only to the hosts in DEPLOYMENT_CALLBACK_HOSTS, and {host} is not "
            "one" + ("" if allowed else " (none are set)") + "; poll GET /api/v1/deployments/{id}.",
        )


def _check_checks(environment: Environment, checks: dict[str, str]) -> None:
    for name in environment.deployment_checks:
        if name not in checks:
            raise DeploymentRefused(
                400,
                "missing_check",
                f"Deployments to {environment.slug} must report the check '{name}' as passed.",
            )
        if checks[name] != CHECK_PASSED:
            raise DeploymentRefused(
                400,
                "check_failed",
                f"The check '{name}' is {checks[name]}; deployments to {environment.slug} need "
                "it passed.",
            )


def deployment_request(
    *,
    token: ApiToken,
    system: str,
    environment: str,
    commit_sha: str,
    scope: str = DEPLOY_SCOPE,
    checks: dict[str, str] | None = None,
    artifact_digest: str = "",
    links: list[dict[str, str]] | None = None,
    repository: str = "",
    ref: str = "",
    run_id: str = "",
    stage: str = "",
    description: str = "",
    callback_url: str = "",
    http: HttpRequest | None = None,
) -> OpenedDeployment:
    """Open a pending deployment approval for the token's service account, after checking that
    it holds ``scope`` there and that every required check passed; a refusal is audited and
    raised as :class:`DeploymentRefused`."""
    account = token.service_account
    context = {
        "commit_sha": commit_sha.lower(),
        "run_id": run_id,
        "stage": stage,
        "repository": repository,
    }
    context = {k: v for k, v in context.items() if v}
    try:
        return _open(
            token=token,
            account=account,
            system=system,
            environment=environment,
            commit_sha=commit_sha.lower(),
            scope=scope,
            checks=dict(checks or {}),
            artifact_digest=artifact_digest,
            links=list(links or []),
            repository=repository,
            ref=ref,
            run_id=run_id,
            stage=stage,
            description=description,
            callback_url=callback_url,
            context=context,
            http=http,
        )
    except DeploymentRefused as refusal:
        with transaction.atomic():
            record(
                actor=account,
                action="deployment.refused",
                target=("scope", f"{scope}:{system}:{environment}", f"{scope} on {system}"),
                data={
                    "code": refusal.code,
                    "reason": refusal.message,
                    "system": system,
                    "environment": environment,
                    "checks": dict(checks or {}),
                    "token_prefix": token.prefix,
                },
                request=http,
                pipeline=context,
            )
        raise


@transaction.atomic
def _open(
    *,
    token: ApiToken,
    account: User,
    system: str,
    environment: str,
    commit_sha: str,
    scope: str,
    checks: dict[str, str],
    artifact_digest: str,
    links: list[dict[str, str]],
    repository: str,
    ref: str,
    run_id: str,
    stage: str,
    description: str,
    callback_url: str,
    context: dict[str, str],
    http: HttpRequest | None,
) -> OpenedDeployment:
    if not FULL_SHA.match(commit_sha):
        raise DeploymentRefused(400, "invalid_commit", "Give the full 40-character commit SHA.")
    triple = f"{scope}:{system}:{environment}"
    if token.scopes is not None and triple not in token.scopes:
        raise DeploymentRefused(
            403, "token_scope", f"This token does not cover {scope} on {system} in {environment}."
        )
    grant = _held_grant(account, scope, system, environment)
    if grant is None:
        raise DeploymentRefused(
            403,
            "scope_not_held",
            f"{account} does not hold {scope} on {system} in {environment} now; an owner can "
            "request it in Gatehouse.",
        )
    entitlement = grant.entitlement
    _check_checks(entitlement.environment, checks)
    if callback_url:
        _check_callback_url(callback_url)
    stages = stages_for(entitlement)
    for position in stages:
        if not stage_approvers(
            position["rule"], requester=account, beneficiary=account, entitlement=entitlement
        ).people:
            raise DeploymentRefused(
                409,
                "no_approvers",
                f"Nobody can approve stage {position['position']} ({position['rule_label']}); "
                "ask a security admin to name owners.",
            )
    clock = now()
    secret = secrets.token_urlsafe(32) if callback_url else ""
    check_transition(START, DeploymentState.PENDING)
    deployment = DeploymentApproval(
        service_account=account,
        token=token,
        system=entitlement.system,
        environment=entitlement.environment,
        entitlement=entitlement,
        scope=scope,
        commit_sha=commit_sha,
        repository=repository,
        ref=ref,
        run_id=run_id,
        stage_name=stage,
        checks=checks,
        artifact_digest=artifact_digest,
        links=links,
        description=description.strip(),
        callback_url=callback_url,
        state=DeploymentState.PENDING,
        stages=stages,
        current_stage=1,
        created_at=clock,
        stage_opened_at=clock,
        timeout_at=clock + timedelta(hours=settings.DEPLOYMENT_PENDING_HOURS),
    )
    deployment.set_callback_secret(secret)
    try:
        with transaction.atomic():
            deployment.save()
    except IntegrityError:
        waiting = (
            DeploymentApproval.objects.filter(
                service_account=account,
                system=entitlement.system,
                environment=entitlement.environment,
                commit_sha=commit_sha,
                state=DeploymentState.PENDING,
            )
            .values_list("pk", flat=True)
            .first()
        )
        raise DeploymentRefused(
            409,
            "deployment_pending",
            f"A deployment approval for commit {commit_sha[:12]} to {environment} is already "
            f"pending (#{waiting}); poll GET /api/v1/deployments/{waiting} instead.",
            extra={"deployment_id": waiting},
        ) from None
    event = record(
        actor=account,
        action="deployment.requested",
        target=deployment,
        data={
            **_summary(deployment),
            "checks": checks,
            "artifact_digest": artifact_digest,
            "links": [link["url"] for link in links],
            "callback": bool(callback_url),
            "token_id": token.pk,
            "token_prefix": token.prefix,
            "stages": [
                {k: s[k] for k in ("position", "rule", "quorum", "step_up")} for s in stages
            ],
        },
        request=http,
        pipeline=context,
    )
    _open_stage(deployment, 1, at=clock)
    return OpenedDeployment(deployment, secret, event.sequence)


def _summary(deployment: DeploymentApproval) -> dict[str, Any]:
    """What every deployment event says about it (besides the pipeline column)."""
    return {
        "deployment_id": deployment.pk,
        "service_account": str(deployment.service_account),
        "service_account_id": deployment.service_account_id,
        "system": deployment.system.slug,
        "environment": deployment.environment.slug,
        "scope": deployment.scope,
        "commit_sha": deployment.commit_sha,
    }


def _principals_used(deployment: DeploymentApproval) -> set[int]:
    """Who decided, and whom delegates decided for: neither decides this deployment again."""
    used: set[int] = set()
    for approver, on_behalf_of in deployment.decisions.values_list("approver", "on_behalf_of"):
        used.add(approver)
        if on_behalf_of is not None:
            used.add(on_behalf_of)
    return used


def _open_stage(deployment: DeploymentApproval, position: int, *, at: Any) -> None:
    """Assign stage ``position`` to its approvers and email them."""
    stage = deployment.stage(position)
    assert stage is not None
    people, reason = _stage_people(deployment, stage)
    bulk_create_with_history(
        [
            DeploymentAssignment(
                deployment=deployment, stage=position, principal=p, reason=reason, created_at=at
            )
            for p in people
        ],
        DeploymentAssignment,
    )
    _ask(deployment, stage, people)


def _stage_people(deployment: DeploymentApproval, stage: dict[str, Any]) -> tuple[list[User], str]:
    """Who decides ``stage`` now and why: the rule's people minus whoever already decided; the
    security admins when that leaves nobody (as for access requests)."""
    account = deployment.service_account
    approvers = stage_approvers(
        stage["rule"], requester=account, beneficiary=account, entitlement=deployment.entitlement
    )
    used = _principals_used(deployment)
    people = [p for p in approvers.people if p.pk not in used]
    if people:
        return people, approvers.reason
    excluded = used | conflicted(account, account)
    return [p for p in security_admins() if p.pk not in excluded], AssignmentReason.FALLBACK


def _ask(deployment: DeploymentApproval, stage: dict[str, Any], people: list[User]) -> None:
    account = deployment.service_account
    position = stage["position"]
    for person in people:
        notify_with_delegates(
            key=f"deployment:{deployment.pk}:stage:{position}:principal:{person.pk}",
            recipient=person,
            subject=f"Deployment approval needed: {deployment.system} to {deployment.environment}",
            lines=[
                f"{account} asks to deploy commit {deployment.commit_sha} of "
                f"{deployment.system} to {deployment.environment}.",
                f"Stage {position} of {len(deployment.stages)}: {stage['rule_label']}.",
                "Checks: "
                + (", ".join(f"{k} {v}" for k, v in sorted(deployment.checks.items())) or "none"),
            ],
            path=reverse("approvals") + f"#deployment-{deployment.pk}",
        )


@transaction.atomic
def deployments_reroute_from(*, person: User, actor: User) -> int:
    """Take ``person`` (who can no longer decide) off the current stage of every pending
    deployment waiting for them, asking whoever the rule names now (the security admins when
    nobody). Returns how many deployments changed."""
    waiting = (
        DeploymentApproval.objects.filter(
            state=DeploymentState.PENDING, assignments__principal=person
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    changed = 0
    for pk in list(waiting):
        deployment = _lock(pk)
        stage = deployment.stage(deployment.current_stage)
        if deployment.state != DeploymentState.PENDING or stage is None:
            continue
        mine = deployment.assignments.filter(stage=stage["position"], principal=person)
        if not mine.exists():
            continue
        for assignment in mine:
            assignment.delete()
        people, reason = _stage_people(deployment, stage)
        assigned = set(
            deployment.assignments.filter(stage=stage["position"]).values_list(
                "principal", flat=True
            )
        )
        added = [p for p in people if p.pk not in assigned]
        bulk_create_with_history(
            [
                DeploymentAssignment(
                    deployment=deployment,
                    stage=stage["position"],
                    principal=p,
                    reason=reason,
                    created_at=now(),
                )
                for p in added
            ],
            DeploymentAssignment,
        )
        record(
            actor=actor,
            action="deployment.rerouted",
            target=deployment,
            data={
                **_summary(deployment),
                "stage": stage["position"],
                "removed": [str(person)],
                "added": [str(p) for p in added],
                "reason": reason,
            },
        )
        _ask(deployment, stage, added)
        changed += 1
    return changed


def _lock(deployment_id: int) -> DeploymentApproval:
    deployment = (
        DeploymentApproval.objects.select_for_update()
        .filter(pk=deployment_id)
        .select_related("service_account", "system", "environment", "entitlement")
        .first()
    )
    if deployment is None:
        raise NotAllowed("No such deployment.")
    return deployment


def deployment_requires_step_up(deployment: DeploymentApproval) -> bool:
    """Approving needs a fresh second factor: the stage says so, or the tier is high/critical."""
    stage = deployment.stage(deployment.current_stage) or {}
    return bool(stage.get("step_up")) or deployment.environment.risk_tier in STEP_UP_TIERS


def deciding_principal(deployment: DeploymentApproval, actor: User) -> User | None:
    """Whom ``actor`` would decide the current stage for (themself, or an assigned approver
    they stand in for), by the same rule as access requests; ``None`` if they may not. The
    account's owners never decide."""
    account = deployment.service_account
    assigned = set(
        deployment.assignments.filter(stage=deployment.current_stage).values_list(
            "principal", flat=True
        )
    )
    return decides_for(
        actor,
        assigned=assigned,
        used=_principals_used(deployment),
        excluded=conflicted(account, account),
        at=now(),
    )


def _decide_checks(
    deployment: DeploymentApproval, actor: User, mfa: MfaContext, *, approving: bool
) -> tuple[User, dict[str, Any]]:
    """The principal ``actor`` decides for (themself or whom they stand in for) and the stage."""
    if deployment.state != DeploymentState.PENDING:
        if deployment.assignments.filter(principal=actor).exists():
            raise WorkflowError(f"This deployment is no longer pending: it is {deployment.state}.")
        raise NotAllowed("No such deployment.")
    principal = deciding_principal(deployment, actor)
    if principal is None:
        raise NotAllowed("This deployment is not waiting for you.")
    if deployment.timeout_at <= now():
        raise WorkflowError("This deployment approval waited too long and has expired.")
    if approving and deployment_requires_step_up(deployment) and not mfa.fresh:
        raise StepUpRequired(
            "This deployment needs a fresh second factor: enter a code from your authenticator app."
        )
    stage = deployment.stage(deployment.current_stage)
    assert stage is not None
    return principal, stage


def _approvers(deployment: DeploymentApproval) -> list[dict[str, Any]]:
    return [
        {
            "id": d.approver_id,
            "name": str(d.approver),
            "stage": d.stage,
            "decision": d.decision,
            "decided_at": d.decided_at.isoformat(),
            "mfa_method": d.mfa_method,
            "mfa_age_seconds": d.mfa_age_seconds,
            **({"on_behalf_of": str(d.on_behalf_of)} if d.on_behalf_of_id else {}),
        }
        for d in deployment.decisions.select_related("approver", "on_behalf_of").order_by(
            "stage", "decided_at"
        )
    ]


def _on_behalf(principal: User, actor: User) -> dict[str, Any]:
    """What the ledger says of a delegate's decision: for whom."""
    if principal.pk == actor.pk:
        return {}
    return {"on_behalf_of_id": principal.pk, "on_behalf_of": str(principal)}


def _move(
    deployment: DeploymentApproval,
    target: str,
    *,
    actor: Any,
    data: dict[str, Any] | None = None,
    http: HttpRequest | None = None,
) -> None:
    """Move a locked deployment along the state table and record the transition."""
    transition = check_transition(deployment.state, target)
    source = deployment.state
    deployment.state = DeploymentState(target)
    deployment.save()
    record(
        actor=actor,
        action=transition.action,
        target=deployment,
        data={"from": source, "to": target, **_summary(deployment), **(data or {})},
        request=http,
        pipeline=deployment.pipeline_context(),
    )
    if target != DeploymentState.USED and deployment.callback_url:
        from accessreq.tasks import deployment_callback

        pk = deployment.pk
        transaction.on_commit(lambda: deployment_callback.delay(pk, str(target)))


@transaction.atomic
def deployment_approve(
    *,
    actor: User,
    deployment_id: int,
    comment: str = "",
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> DeploymentApproval:
    """Record ``actor``'s approval of the current stage; after the last stage's quorum the
    deployment is approved, valid for its commit for ``DEPLOYMENT_APPROVAL_MINUTES``."""
    mfa = mfa or MfaContext.from_request(http)
    deployment = _lock(deployment_id)
    principal, stage = _decide_checks(deployment, actor, mfa, approving=True)
    clock = now()
    DeploymentDecision.objects.create(
        deployment=deployment,
        stage=stage["position"],
        approver=actor,
        on_behalf_of=principal if principal.pk != actor.pk else None,
        decision="approve",
        comment=comment.strip(),
        mfa_method=mfa.method,
        mfa_age_seconds=mfa.age_seconds,
        decided_at=clock,
    )
    approvals = deployment.decisions.filter(stage=stage["position"], decision="approve").count()
    complete = approvals >= stage["quorum"]
    record(
        actor=actor,
        action="deployment.approval_given",
        target=deployment,
        data={
            **_summary(deployment),
            "stage": stage["position"],
            "stage_rule": stage["rule"],
            "approvals": approvals,
            "quorum": stage["quorum"],
            "stage_complete": complete,
            "comment": comment.strip(),
            **_on_behalf(principal, actor),
            **mfa.as_data(),
        },
        request=http,
        pipeline=deployment.pipeline_context(),
    )
    if not complete:
        return deployment
    if stage["position"] < len(deployment.stages):
        deployment.current_stage = stage["position"] + 1
        deployment.stage_opened_at = clock
        deployment.escalated_at = None
        deployment.save()
        _open_stage(deployment, deployment.current_stage, at=clock)
        return deployment
    deployment.decided_at = clock
    deployment.expires_at = clock + timedelta(minutes=settings.DEPLOYMENT_APPROVAL_MINUTES)
    _move(
        deployment,
        DeploymentState.APPROVED,
        actor=actor,
        data={"approvers": _approvers(deployment), "expires_at": deployment.expires_at.isoformat()},
        http=http,
    )
    return deployment


@transaction.atomic
def deployment_deny(
    *,
    actor: User,
    deployment_id: int,
    comment: str,
    mfa: MfaContext | None = None,
    http: HttpRequest | None = None,
) -> DeploymentApproval:
    """Deny the deployment at its current stage; the comment goes back to the pipeline."""
    mfa = mfa or MfaContext.from_request(http)
    comment = comment.strip()
    deployment = _lock(deployment_id)
    principal, stage = _decide_checks(deployment, actor, mfa, approving=False)
    if not comment:
        raise WorkflowError("Say why you deny the deployment; the pipeline shows your comment.")
    clock = now()
    DeploymentDecision.objects.create(
        deployment=deployment,
        stage=stage["position"],
        approver=actor,
        on_behalf_of=principal if principal.pk != actor.pk else None,
        decision="deny",
        comment=comment,
        mfa_method=mfa.method,
        mfa_age_seconds=mfa.age_seconds,
        decided_at=clock,
    )
    deployment.decided_at = clock
    _move(
        deployment,
        DeploymentState.DENIED,
        actor=actor,
        data={
            "stage": stage["position"],
            "comment": comment,
            "approvers": _approvers(deployment),
            **_on_behalf(principal, actor),
            **mfa.as_data(),
        },
        http=http,
    )
    return deployment


def deployments_expire(*, limit: int = 500) -> int:
    """Expire pending approvals past ``timeout_at`` and approved ones past ``expires_at``
    (database clock); safe to run from two workers. Decisions never depend on this having run:
    the authorization check compares ``expires_at`` with the database clock itself."""
    system = User.objects.system_actor()
    done = 0
    for state, column in (
        (DeploymentState.PENDING, "timeout_at"),
        (DeploymentState.APPROVED, "expires_at"),
    ):
        with transaction.atomic():
            batch = list(
                DeploymentApproval.objects.select_for_update(skip_locked=True)
                .filter(state=state, **{f"{column}__lte": Now()})
                .select_related("service_account", "system", "environment")
                .order_by(column)[:limit]
            )
            for deployment in batch:
                _move(deployment, DeploymentState.EXPIRED, actor=system, data={"was": state})
                done += 1
    return done


def deployments_escalate(*, limit: int = 500) -> int:
    """Add the security admins to deployment stages that have waited longer than
    ``DEPLOYMENT_ESCALATE_AFTER_MINUTES``, once per stage (as for access requests), so a release
    is not held up by an approver who is away. Returns how many were escalated."""
    from django.db.models.functions import Coalesce

    system = User.objects.system_actor()
    cutoff = now() - timedelta(minutes=settings.DEPLOYMENT_ESCALATE_AFTER_MINUTES)
    done = 0
    with transaction.atomic():
        batch = list(
            DeploymentApproval.objects.select_for_update(skip_locked=True)
            .annotate(waiting_since=Coalesce("stage_opened_at", "created_at"))
            .filter(state=DeploymentState.PENDING, escalated_at__isnull=True)
            .filter(waiting_since__lte=cutoff, timeout_at__gt=Now())
            .select_related("service_account", "system", "environment", "entitlement")
            .order_by("waiting_since")[:limit]
        )
        admins = security_admins()
        for deployment in batch:
            stage = deployment.stage(deployment.current_stage)
            if stage is None:
                continue
            account = deployment.service_account
            excluded = conflicted(account, account) | _principals_used(deployment)
            already = set(
                deployment.assignments.filter(stage=stage["position"]).values_list(
                    "principal", flat=True
                )
            )
            added = [a for a in admins if a.pk not in excluded and a.pk not in already]
            clock = now()
            bulk_create_with_history(
                [
                    DeploymentAssignment(
                        deployment=deployment,
                        stage=stage["position"],
                        principal=admin,
                        reason=AssignmentReason.ESCALATION,
                        created_at=clock,
                    )
                    for admin in added
                ],
                DeploymentAssignment,
            )
            deployment.escalated_at = clock
            deployment.save(update_fields=["escalated_at"])
            record(
                actor=system,
                action="deployment.escalated",
                target=deployment,
                data={
                    **_summary(deployment),
                    "stage": stage["position"],
                    "waited_minutes": settings.DEPLOYMENT_ESCALATE_AFTER_MINUTES,
                    "added": [str(a) for a in added],
                },
                pipeline=deployment.pipeline_context(),
            )
            _ask(deployment, stage, added)
            done += 1
    return done


# --- The authorization check's gate -------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """What the deployment gate adds to an authorization decision."""

    allowed: bool
    reason: dict[str, str]
    data: dict[str, Any] = field(default_factory=dict)


def _refused(code: str, message: str) -> Gate:
    return Gate(False, {"code": code, "message": message})


def deployment_approval_required(*, action: str, environment: str) -> bool:
    """Whether ``action`` in ``environment`` needs an approved deployment (deploys only)."""
    if action != DEPLOY_SCOPE:
        return False
    # Asked on every allowed deploy decision: one prepared statement, not an ORM query.
    found = sql.fetch_one(
        "SELECT 1 FROM accessreq_environment WHERE slug = %s AND requires_deployment_approval",
        [environment],
    )
    return found is not None


def deployment_gate(
    *,
    token: ApiToken,
    action: str,
    system: str,
    environment: str,
    context: dict[str, str],
    http: HttpRequest | None = None,
) -> Gate | None:
    """For a deploy to an environment that requires deployment approval: allowed only with an
    approved deployment of this commit, unexpired by the database clock, that no other token
    used; the first use marks it used by ``token``. ``None`` when no approval is required.
    Runs inside the authorization decision's transaction."""
    if not deployment_approval_required(action=action, environment=environment):
        return None
    commit = context.get("commit_sha", "").lower()
    if not FULL_SHA.match(commit):
        return _refused(
            "deployment_approval_required",
            f"Deploys to {environment} need an approved deployment: send the full commit SHA "
            "in context.commit_sha.",
        )
    mine = DeploymentApproval.objects.filter(
        service_account=token.service_account_id,
        system__slug=system,
        environment__slug=environment,
        commit_sha=commit,
    )
    deployment = (
        mine.select_for_update()
        .filter(state__in=[DeploymentState.APPROVED, DeploymentState.USED], expires_at__gt=Now())
        .select_related("service_account", "system", "environment")
        .order_by("-decided_at", "-pk")
        .first()
    )
    if deployment is None:
        latest = mine.order_by("-created_at", "-pk").first()
        if latest is not None and latest.state == DeploymentState.PENDING:
            return _refused(
                "deployment_pending",
                f"Deployment #{latest.pk} of {commit[:12]} is still waiting for approval.",
            )
        if latest is not None and latest.state in (DeploymentState.APPROVED, DeploymentState.USED):
            return _refused(
                "deployment_expired",
                f"The approval of deployment #{latest.pk} has expired; open a new one.",
            )
        if latest is not None and latest.state == DeploymentState.DENIED:
            return _refused("deployment_denied", f"Deployment #{latest.pk} was denied.")
        return _refused(
            "deployment_approval_required",
            f"No approved deployment of commit {commit[:12]} of {system} to {environment}; "
            "open one with POST /api/v1/deployments.",
        )
    if deployment.state == DeploymentState.USED and deployment.used_by_token_id != token.pk:
        return _refused(
            "deployment_used",
            f"The approval of deployment #{deployment.pk} was already used by another token.",
        )
    approvers = _approvers(deployment)
    if deployment.state == DeploymentState.APPROVED:
        deployment.used_at = now()
        deployment.used_by_token = token
        _move(
            deployment,
            DeploymentState.USED,
            actor=token.service_account,
            data={"token_id": token.pk, "token_prefix": token.prefix, "approvers": approvers},
            http=http,
        )
    return Gate(
        True,
        {
            "code": "deployment_approved",
            "message": f"Deployment #{deployment.pk} of {commit[:12]} was approved by "
            + ", ".join(a["name"] for a in approvers if a["decision"] == "approve")
            + ".",
        },
        {"deployment_id": deployment.pk, "approvers": [a["name"] for a in approvers]},
    )


# --- What the API and the callbacks say about a deployment ---------------------------------------


def deployment_state_now(deployment: DeploymentApproval, at: Any) -> str:
    """The state as a pipeline should read it: an approval past its time is ``expired`` even
    before the sweep has run."""
    if deployment.state == DeploymentState.PENDING and deployment.timeout_at <= at:
        return DeploymentState.EXPIRED
    if (
        deployment.state == DeploymentState.APPROVED
        and deployment.expires_at is not None
        and deployment.expires_at <= at
    ):
        return DeploymentState.EXPIRED
    return str(deployment.state)


def _iso(value: Any) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def deployment_as_data(deployment: DeploymentApproval, *, at: Any) -> dict[str, Any]:
    """The deployment as the API answers it and the callback sends it (no secrets)."""
    decisions = _approvers(deployment)
    denial = next((d for d in deployment.decisions.all() if d.decision == "deny"), None)
    return {
        "id": deployment.pk,
        "state": deployment_state_now(deployment, at),
        "system": deployment.system.slug,
        "environment": deployment.environment.slug,
        "scope": deployment.scope,
        "commit_sha": deployment.commit_sha,
        "repository": deployment.repository,
        "ref": deployment.ref,
        "run_id": deployment.run_id,
        "stage": deployment.stage_name,
        "checks": deployment.checks,
        "artifact_digest": deployment.artifact_digest,
        "links": deployment.links,
        "current_stage": deployment.current_stage,
        "stage_count": len(deployment.stages),
        "created_at": _iso(deployment.created_at),
        "timeout_at": _iso(deployment.timeout_at),
        "decided_at": _iso(deployment.decided_at),
        "expires_at": _iso(deployment.expires_at),
        "used_at": _iso(deployment.used_at),
        "approvers": [
            {k: d[k] for k in ("name", "stage", "decision", "decided_at")} for d in decisions
        ],
        "comment": denial.comment if denial else "",
    }
