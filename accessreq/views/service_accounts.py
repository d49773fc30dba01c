"""Service accounts in the portal: their access, API tokens (mint, revoke, rotate) and the trust
rules that let CI jobs act as them; and the trusted CI issuers, for security admins."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db.models import Count, Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accessreq.errors import NotAllowed, StepUpRequired, WorkflowError
from accessreq.forms import (
    IssuerForm,
    MintTokenForm,
    OwnersForm,
    RevokeTokenForm,
    ServiceAccountForm,
    TrustRuleForm,
)
from accessreq.models import (
    ApiToken,
    DeploymentApproval,
    DeploymentDecision,
    Grant,
    TokenKind,
    TrustedIssuer,
    TrustRule,
)
from accessreq.selectors import service_accounts_managed_by, service_accounts_visible_to
from accessreq.services.common import MfaContext
from accessreq.services.deployments import deployment_state_now
from accessreq.services.pipelines import (
    issuer_create,
    issuer_update,
    trust_rule_create,
    trust_rule_delete,
)
from accessreq.services.service_accounts import (
    service_account_create,
    service_account_set_owners,
)
from accessreq.services.tokens import IssuedToken, token_issue, token_revoke, token_rotate
from portal.auth import signed_in_user
from portal.models import User
from portal.roles import can_read_audit, is_security_admin
from portal.services.mfa import mfa_is_fresh, mfa_verify

RECENT_EXCHANGED = 20
RECENT_DEPLOYMENTS = 20


def _account(user: User, account_id: int) -> User:
    account = service_accounts_visible_to(user).filter(pk=account_id).first()
    if account is None:
        raise Http404("No such service account.")
    return account


def _show_errors(request: HttpRequest, form: Any) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, str(error))


@require_http_methods(["GET", "POST"])
def service_accounts(request: HttpRequest) -> HttpResponse:
    """The service accounts the person owns (all of them for security admins and auditors);
    security admins create new ones here (POST)."""
    user = signed_in_user(request)
    form = ServiceAccountForm(request.POST or None)
    if request.method == "POST":
        if not is_security_admin(user):
            raise Http404("No such page.")
        if form.is_valid():
            try:
                account = service_account_create(
                    actor=user,
                    name=form.cleaned_data["name"],
                    owners=form.cleaned_data["owners"],
                    description=form.cleaned_data["description"],
                    http=request,
                )
            except WorkflowError as error:
                form.add_error("name", str(error))
            else:
                messages.success(
                    request,
                    f"Created {account}. Its owners can now request access for it and add "
                    "trust rules.",
                )
                return redirect("service_account_detail", account.pk)
    now = timezone.now()
    accounts = (
        service_accounts_visible_to(user)
        .prefetch_related("owners")
        .annotate(
            live_tokens=Count(
                "api_tokens",
                filter=Q(api_tokens__revoked_at__isnull=True, api_tokens__expires_at__gt=now),
                distinct=True,
            ),
            rule_count=Count("trust_rules", distinct=True),
        )
        .order_by("display_name", "pk")
    )
    context = {
        "accounts": list(accounts),
        "is_security_admin": is_security_admin(user),
        "can_see_issuers": can_read_audit(user),
        "create_form": form,
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "accessreq/service_accounts/list.html", context, status=status)


def _detail_context(
    request: HttpRequest, user: User, account: User, **extra: Any
) -> dict[str, Any]:
    now = timezone.now()
    need_code = not mfa_is_fresh(request)  # minting and rotating then ask for a code inline
    tokens = ApiToken.objects.filter(service_account=account).for_listing()
    minted = list(tokens.filter(kind=TokenKind.MINTED)[:100])
    exchanged = list(tokens.filter(kind=TokenKind.EXCHANGED)[:RECENT_EXCHANGED])
    for token in minted + exchanged:
        token.state = token.state_at(now)  # type: ignore[attr-defined]
    deployments = list(
        DeploymentApproval.objects.of_account(account)
        .for_listing()
        .prefetch_related(
            Prefetch(
                "decisions",
                queryset=DeploymentDecision.objects.select_related(
                    "approver", "on_behalf_of"
                ).order_by("stage", "decided_at"),
            )
        )
        .order_by("-created_at", "-pk")[:RECENT_DEPLOYMENTS]
    )
    for deployment in deployments:
        deployment.state_now = deployment_state_now(deployment, now)  # type: ignore[attr-defined]
    owns = service_accounts_managed_by(user).filter(pk=account.pk).exists()
    admin = is_security_admin(user) and user.is_active
    return {
        "deployments": deployments,
        "recent_deployments": RECENT_DEPLOYMENTS,
        "account": account,
        "owners": list(account.owners.order_by("display_name")),
        "grants": list(
            Grant.objects.filter(beneficiary=account).live().for_listing().order_by("expires_at")
        ),
        "minted": minted,
        "exchanged": exchanged,
        "flagged_tokens": tokens.usable().filter(flagged_at__isnull=False).count(),
        "recent_exchanged": RECENT_EXCHANGED,
        "rules": list(TrustRule.objects.filter(service_account=account).for_listing()),
        "can_mint": owns and account.is_active,
        "can_revoke": owns or admin,
        "can_manage_rules": owns or admin,
        "can_change_owners": owns or admin,
        "owners_form": OwnersForm(
            initial={"owners": ", ".join(o.email for o in account.owners.order_by("email"))}
        ),
        "mint_form": MintTokenForm(need_code=need_code),
        "need_code": need_code,
        "rule_form": TrustRuleForm(),
        "now": now,
        **extra,
    }


@require_GET
def service_account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    user = signed_in_user(request)
    account = _account(user, account_id)
    return render(
        request, "accessreq/service_accounts/detail.html", _detail_context(request, user, account)
    )


def _show_secret(
    request: HttpRequest, account: User, issued: IssuedToken, verb: str
) -> HttpResponse:
    """The one page that ever shows a token's secret; nothing may cache it."""
    response = render(
        request,
        "accessreq/service_accounts/token_created.html",
        {"account": account, "issued": issued, "verb": verb},
    )
    response["Cache-Control"] = "no-store"
    return response


def _step_up(request: HttpRequest, user: User, code: str) -> str:
    """Check an inline authenticator code, if one was typed; the error to show, or ""."""
    if not code:
        return ""
    result = mfa_verify(request=request, user=user, code=code)
    return "" if result.ok else result.error


@require_POST
def token_mint(request: HttpRequest, account_id: int) -> HttpResponse:
    user = signed_in_user(request)
    account = _account(user, account_id)
    form = MintTokenForm(request.POST, need_code=not mfa_is_fresh(request))
    if form.is_valid():
        error = _step_up(request, user, form.cleaned_data["code"])
        if error:
            form.add_error("code", error)
    if form.is_valid():
        try:
            issued = token_issue(
                actor=user,
                service_account=account,
                kind=TokenKind.MINTED,
                name=form.cleaned_data["name"],
                lifetime_days=form.cleaned_data["lifetime_days"],
                mfa=MfaContext.from_request(request),
                http=request,
            )
        except NotAllowed:
            raise Http404("No such service account.") from None
        except StepUpRequired as error:
            form.add_error("code", str(error))
        except WorkflowError as error:
            messages.error(request, str(error))
            return redirect("service_account_detail", account.pk)
        else:
            return _show_secret(request, account, issued, "minted")
    context = _detail_context(request, user, account, mint_form=form)
    return render(request, "accessreq/service_accounts/detail.html", context, status=400)


def _account_token(user: User, account_id: int, token_id: int) -> tuple[User, ApiToken]:
    account = _account(user, account_id)
    token = ApiToken.objects.filter(service_account=account, pk=token_id).first()
    if token is None:
        raise Http404("No such token.")
    return account, token


@require_POST
def token_revoke_page(request: HttpRequest, account_id: int, token_id: int) -> HttpResponse:
    user = signed_in_user(request)
    account, token = _account_token(user, account_id, token_id)
    form = RevokeTokenForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        token_revoke(actor=user, token_id=token.pk, reason=reason, http=request)
    except NotAllowed:
        raise Http404("No such token.") from None
    except WorkflowError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Revoked {token.prefix}…; it is refused from now on.")
    return redirect("service_account_detail", account.pk)


@require_POST
def token_rotate_page(request: HttpRequest, account_id: int, token_id: int) -> HttpResponse:
    user = signed_in_user(request)
    account, token = _account_token(user, account_id, token_id)
    error = _step_up(request, user, request.POST.get("code", "").strip()[:20])
    if error:
        messages.error(request, f"{token.prefix}… was not rotated: {error}")
        return redirect("service_account_detail", account.pk)
    try:
        issued = token_rotate(
            actor=user, token_id=token.pk, mfa=MfaContext.from_request(request), http=request
        )
    except NotAllowed:
        raise Http404("No such token.") from None
    except WorkflowError as error:  # StepUpRequired included: the rows then ask for a code
        messages.error(request, str(error))
        return redirect("service_account_detail", account.pk)
    return _show_secret(request, account, issued, "rotated")


@require_POST
def trust_rule_add(request: HttpRequest, account_id: int) -> HttpResponse:
    user = signed_in_user(request)
    account = _account(user, account_id)
    form = TrustRuleForm(request.POST)
    if not form.is_valid():
        context = _detail_context(request, user, account, rule_form=form)
        return render(request, "accessreq/service_accounts/detail.html", context, status=400)
    data = form.cleaned_data
    try:
        trust_rule_create(
            actor=user,
            service_account_id=account.pk,
            issuer_id=data["issuer"].pk,
            repository=data["repository"],
            ref=data["ref"],
            environment=data["environment"],
            workflow=data["workflow"],
            http=request,
        )
    except NotAllowed:
        raise Http404("No such service account.") from None
    except WorkflowError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request, f"Jobs of {data['repository']} matching the rule now act as {account}."
        )
    return redirect("service_account_detail", account.pk)


@require_POST
def trust_rule_remove(request: HttpRequest, account_id: int, rule_id: int) -> HttpResponse:
    user = signed_in_user(request)
    account = _account(user, account_id)
    if not TrustRule.objects.filter(pk=rule_id, service_account=account).exists():
        raise Http404("No such trust rule.")
    try:
        trust_rule_delete(actor=user, rule_id=rule_id, http=request)
    except NotAllowed:
        raise Http404("No such trust rule.") from None
    messages.success(request, "Trust rule removed; matching jobs can no longer get tokens.")
    return redirect("service_account_detail", account.pk)


# --- Trusted issuers ------------------------------------------------------------------------


def _issuer_reader(request: HttpRequest) -> User:
    user = signed_in_user(request)
    if not can_read_audit(user):
        raise Http404("No such page.")
    return user


@require_http_methods(["GET", "POST"])
def issuers(request: HttpRequest) -> HttpResponse:
    """Trusted CI issuers; security admins add them, auditors read."""
    user = _issuer_reader(request)
    form = IssuerForm()
    status = 200
    if request.method == "POST":
        if not is_security_admin(user):
            raise Http404("No such page.")
        form = IssuerForm(request.POST)
        if form.is_valid():
            try:
                issuer = issuer_create(actor=user, values=form.cleaned_data, http=request)
            except WorkflowError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"{issuer} is trusted; owners can now add trust rules.")
                return redirect("issuers")
        status = 400
    context = {
        "issuers": list(TrustedIssuer.objects.annotate(rule_count=Count("rules")).order_by("name")),
        "form": form,
        "can_edit": is_security_admin(user),
    }
    return render(request, "accessreq/service_accounts/issuers.html", context, status=status)


@require_http_methods(["GET", "POST"])
def issuer_edit(request: HttpRequest, issuer_id: int) -> HttpResponse:
    user = _issuer_reader(request)
    if not is_security_admin(user):
        raise Http404("No such issuer.")
    issuer = TrustedIssuer.objects.filter(pk=issuer_id).first()
    if issuer is None:
        raise Http404("No such issuer.")
    form = IssuerForm.for_issuer(issuer)
    status = 200
    if request.method == "POST":
        form = IssuerForm.for_issuer(issuer, request.POST)
        if form.is_valid():
            try:
                issuer_update(
                    actor=user, issuer_id=issuer.pk, values=form.cleaned_data, http=request
                )
            except WorkflowError as error:
                form.add_error(None, str(error))
            else:
                messages.success(request, f"Saved {form.cleaned_data['name']}.")
                return redirect("issuers")
        status = 400
    context = {"issuer": issuer, "form": form}
    return render(request, "accessreq/service_accounts/issuer_edit.html", context, status=status)


@require_POST
def service_account_owners(request: HttpRequest, account_id: int) -> HttpResponse:
    """Replace the owners (security admins and current owners)."""
    user = signed_in_user(request)
    account = _account(user, account_id)
    form = OwnersForm(request.POST)
    if not form.is_valid():
        context = _detail_context(request, user, account, owners_form=form)
        return render(request, "accessreq/service_accounts/detail.html", context, status=400)
    try:
        service_account_set_owners(
            actor=user, account_id=account.pk, owners=form.cleaned_data["owners"], http=request
        )
    except NotAllowed:
        raise Http404("No such service account.") from None
    except WorkflowError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"The owners of {account} are saved.")
    return redirect("service_account_detail", account.pk)
