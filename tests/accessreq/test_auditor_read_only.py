"""An auditor changes nothing: a POST, with a plausible body, to every page address of the
portal is refused, and nothing the portal governs is different afterwards.

The addresses come from the URL configuration itself, each parameter filled with a real object
(a pending request someone else must decide, a live grant of someone else's, an open campaign
and its items, a provisioning task, a runbook, another person's export), so a page added later
is swept too. Left out, with the reason: the sign-in, MFA and own-account pages (a person's own
session and second factor, not what the portal governs), the bearer-token API and SCIM (no
session: a POST without a token is a 401), the
admin (refused by its own login, tested in test_reports_views), the two evidence downloads that
are POSTs by design and record only their own export (audit export), and the catalog's request
form (an auditor may ask for access as any employee; the approvers then decide).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.contrib import messages
from django.urls import URLPattern, URLResolver, get_resolver

from accessreq.models import (
    AccessRequest,
    Approval,
    Campaign,
    Connector,
    ConnectorKind,
    Delegation,
    Entitlement,
    Grant,
    Operation,
    ProvisioningTask,
    ReportExport,
    ReviewItem,
)
from audit.models import AuditEvent
from docs.models import Runbook
from portal.models import User
from tests.accessreq.test_campaign_views import build_campaign
from tests.accessreq.workflow_helpers import make_entitlement, submit
from tests.docs.helpers import make_runbook

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_file")]

SKIPPED_PREFIXES = (
    "accounts/",
    "mfa/",
    "account/",
    "api/",
    "scim/v2",
    "admin/",
    "healthz",
    "metrics",
)
# POSTs by design for auditors: they build and record an export, nothing else.
EXPORT_POSTS = {"audit/export/"}
_PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")
REFUSED = {400, 403, 404, 405}


def _patterns(resolvers: list[Any], prefix: str = "") -> list[str]:
    found = []
    for entry in resolvers:
        text = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(_patterns(entry.url_patterns, text))
        elif isinstance(entry, URLPattern):
            found.append(text)
    return found


def snapshot() -> dict[str, Any]:
    """What the portal governs, compared before and after."""
    return {
        "requests": sorted(AccessRequest.objects.values_list("pk", "state", "current_stage")),
        "approvals": Approval.objects.count(),
        "grants": sorted(Grant.objects.values_list("pk", "state", "expires_at", "revoked_at")),
        "items": sorted(ReviewItem.objects.values_list("pk", "decision", "reviewer_id")),
        "campaigns": sorted(Campaign.objects.values_list("pk", "state")),
        "tasks": sorted(ProvisioningTask.objects.values_list("pk", "status", "attempts")),
        "delegations": Delegation.objects.count(),
        "entitlements": Entitlement.objects.count(),
        "people": sorted(User.objects.values_list("pk", "is_active", "employment_status")),
        "runbooks": sorted(Runbook.objects.values_list("slug", "body")),
        "exports": ReportExport.objects.count(),
        "changes": AuditEvent.objects.exclude(action__startswith="auth.").count(),
    }


def sweep_values(requester, manager, owner, security_admin, auditor) -> dict[str, Any]:
    """A real object for each URL parameter, none of them the auditor's (or an outsider's)."""
    world = build_campaign(requester, manager, owner, security_admin)
    pending = submit(requester, make_entitlement(owners=[owner], name="pending-one"))
    grant = Grant.objects.filter(state="active").first()
    assert grant is not None
    connector = Connector.objects.create(name="manual", kind=ConnectorKind.MANUAL)
    task = ProvisioningTask.objects.create(
        grant=grant, operation=Operation.PROVISION, connector=connector, status="failed"
    )
    runbook = make_runbook()
    export = ReportExport.objects.create(
        requested_by=security_admin, report="approvals", title="Approvals", format="csv"
    )
    return {
        "request_id": pending.pk,
        "grant_id": grant.pk,
        "item_id": world.pending.pk,
        "campaign_id": world.campaign.pk,
        "task_id": task.pk,
        "export_id": export.pk,
        "sequence": AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True)[0],
        "slug": runbook.slug,
        "name": "approval",
        "fmt": "csv",
        "kind": "pending",
        "account_id": auditor.pk,
        "token_id": 1,
        "issuer_id": 1,
        "rule_id": 1,
        "deployment_id": 1,
        "delegation_id": 1,
        "_world": world,
        "_pending": pending,
    }


def test_an_auditor_posts_to_every_page_and_changes_nothing(
    verified_client, auditor, requester, manager, owner, security_admin
):
    values = sweep_values(requester, manager, owner, security_admin, auditor)
    world, pending = values["_world"], values["_pending"]
    body = {
        "decision": "approve",
        "comment": "An auditor should not be able to do this",
        "reason": "An auditor should not be able to do this",
        "confirm": "yes",
        "duration": "8:00:00",
        "items": [str(world.pending.pk)],
        "requests": [str(pending.pk)],
        "title": "Changed",
        "body": "Changed by an auditor",
        "summary": "Changed",
        "template": str(world.template.pk),
    }
    client = verified_client(auditor)
    before = snapshot()
    swept: list[str] = []
    accepted: list[str] = []
    for pattern in _patterns(get_resolver().url_patterns):
        path = pattern.lstrip("^").rstrip("$").replace("\\Z", "")
        if path.startswith(SKIPPED_PREFIXES) or path in EXPORT_POSTS:
            continue
        if path.startswith("catalog/") and "request" in path:
            continue
        missing = [name for _, name in _PARAM.findall(path) if name not in values]
        assert not missing, f"give the sweep a value for {missing} in {path}"
        url = "/" + _PARAM.sub(lambda m: str(values[m.group(2)]), path)
        response = client.post(url, body)
        swept.append(url)
        # A form posted back to its page (post/redirect/get) refuses with an error message.
        told = [m for m in response.wsgi_request._messages if m.level >= messages.WARNING]
        refused = response.status_code in REFUSED or (
            response.status_code == 302
            and ("/accounts/login/" in response["Location"] or bool(told))
        )
        if not refused:
            accepted.append(f"{url} {response.status_code}")
    assert accepted == [], "POSTs an auditor was not refused"
    assert len(swept) > 40
    assert snapshot() == before
