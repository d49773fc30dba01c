"""The admin for policies, conflict rules and connectors (audited, history-tracked, the webhook
secret write-only) and the read-only views of what only the workflow services change."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from accessreq.models import (
    AccessRequest,
    ApprovalPolicy,
    ApproverRule,
    ConflictRule,
    Connector,
    ConnectorKind,
    Delegation,
    Entitlement,
    Grant,
    Notification,
    PolicyStage,
    ProvisioningTask,
    RiskTier,
)
from accessreq.services.common import MfaContext, now
from accessreq.services.requests import request_approve, request_submit
from audit.models import AuditEvent
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory

FRESH = MfaContext("totp", 10)
REASON = "Deploy the hotfix for the payments outage"
SECRET = "write-only-secret-value-7f3a9c2e5b"


@pytest.fixture
def workflow(db, requester, manager, owner, security_admin, django_capture_on_commit_callbacks):
    """One of everything: a request with its approval, a grant, a provisioning task, emails, a
    conflict rule and a delegation."""
    desk = Connector.objects.create(name="ops desk", kind=ConnectorKind.MANUAL)
    env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
    system = SystemFactory(name="payments", slug="payments")
    deployer = EntitlementFactory(
        system=system, environment=env, name="Deployer", slug="deployer", connector=desk
    )
    deployer.owners.add(owner)
    approver = EntitlementFactory(system=system, environment=env, name="Approver", slug="approver")
    ConflictRule.objects.create(first=deployer, second=approver, reason="Deployers don't approve")
    with django_capture_on_commit_callbacks(execute=True):
        req = request_submit(
            actor=requester, entitlement=deployer, justification=REASON, duration=timedelta(hours=8)
        )
        request_approve(actor=manager, request_id=req.pk, mfa=FRESH)
    clock = now()
    Delegation.objects.create(
        delegator=manager, delegate=owner, starts_at=clock, ends_at=clock + timedelta(days=3)
    )
    return {"request": req, "entitlement": deployer, "connector": desk}


MODELS: dict[str, Any] = {
    "scope": None,
    "system": None,
    "environment": None,
    "entitlement": Entitlement,
    "approvalpolicy": ApprovalPolicy,
    "conflictrule": ConflictRule,
    "connector": Connector,
    "accessrequest": AccessRequest,
    "grant": Grant,
    "delegation": Delegation,
    "provisioningtask": ProvisioningTask,
    "notification": Notification,
}


@pytest.mark.django_db
@pytest.mark.parametrize("name", list(MODELS))
def test_changelist_and_a_change_page_load_for_a_security_admin(
    verified_client, security_admin, workflow, name
) -> None:
    client = verified_client(security_admin)
    listing = client.get(f"/admin/accessreq/{name}/")
    assert listing.status_code == 200, name
    model = MODELS[name]
    if model is not None:
        obj = model.objects.order_by("pk").first()
        assert obj is not None, name
        page = client.get(f"/admin/accessreq/{name}/{obj.pk}/change/")
        assert page.status_code == 200, name
        history = client.get(f"/admin/accessreq/{name}/{obj.pk}/history/")
        assert history.status_code == 200, name


@pytest.mark.django_db
def test_request_page_shows_its_approvals_and_assignments(
    verified_client, security_admin, workflow
) -> None:
    req = workflow["request"]
    html = (
        verified_client(security_admin)
        .get(f"/admin/accessreq/accessrequest/{req.pk}/change/")
        .content.decode()
    )
    assert "Mina Manager" in html  # the approver, in the Approval inline
    assert "Named by the policy" in html  # the stage assignment's reason


@pytest.mark.django_db
@pytest.mark.parametrize(
    "name", ["accessrequest", "grant", "delegation", "provisioningtask", "notification"]
)
def test_what_services_change_is_read_only_in_the_admin(
    verified_client, security_admin, workflow, name
) -> None:
    client = verified_client(security_admin)
    obj = MODELS[name].objects.order_by("pk").first()
    assert client.get(f"/admin/accessreq/{name}/add/").status_code == 403
    page = client.get(f"/admin/accessreq/{name}/{obj.pk}/change/")
    assert 'name="_save"' not in page.content.decode()
    assert client.post(f"/admin/accessreq/{name}/{obj.pk}/change/", {}).status_code == 403
    assert (
        client.post(f"/admin/accessreq/{name}/{obj.pk}/delete/", {"post": "yes"}).status_code == 403
    )
    assert MODELS[name].objects.filter(pk=obj.pk).exists()


@pytest.mark.django_db
def test_people_without_staff_rights_stay_out(verified_client, outsider, workflow) -> None:
    response = verified_client(outsider).get("/admin/accessreq/grant/")
    assert response.status_code in (302, 403)
    assert "Grant #" not in response.content.decode()


def _stage(n: int, *, rule: str, quorum: int = 1, step_up: bool = False, pk: int | None = None):
    data = {
        f"stages-{n}-position": str(n + 1),
        f"stages-{n}-approver_rule": rule,
        f"stages-{n}-quorum": str(quorum),
        f"stages-{n}-id": str(pk) if pk else "",
    }
    if step_up:
        data[f"stages-{n}-step_up"] = "on"
    return data


@pytest.mark.django_db
def test_policy_and_its_stages_are_edited_together_audited_and_tracked(
    verified_client, security_admin
) -> None:
    client = verified_client(security_admin)
    data = {
        "name": "Payments prod override",
        "tier": "",
        "description": "Two people at once for payments.",
        "stages-TOTAL_FORMS": "2",
        "stages-INITIAL_FORMS": "0",
        "stages-MIN_NUM_FORMS": "1",
        "stages-MAX_NUM_FORMS": "1000",
        **_stage(0, rule=ApproverRule.MANAGER, step_up=True),
        **_stage(1, rule=ApproverRule.SYSTEM_OWNER, quorum=2, step_up=True),
    }
    response = client.post("/admin/accessreq/approvalpolicy/add/", data)
    assert response.status_code == 302, response.context["errors"]
    policy = ApprovalPolicy.objects.get(name="Payments prod override")
    stages = list(policy.stages.order_by("position"))
    assert [(s.approver_rule, s.quorum, s.step_up) for s in stages] == [
        (ApproverRule.MANAGER, 1, True),
        (ApproverRule.SYSTEM_OWNER, 2, True),
    ]
    created = AuditEvent.objects.filter(action="admin.object.created", actor_id=security_admin.pk)
    assert sorted(e.target_type for e in created) == [
        "accessreq.approvalpolicy",
        "accessreq.policystage",
        "accessreq.policystage",
    ]
    assert all(s.history.latest().history_user_id == security_admin.pk for s in stages)

    change = {
        "name": policy.name,
        "tier": "",
        "description": policy.description,
        "stages-TOTAL_FORMS": "2",
        "stages-INITIAL_FORMS": "2",
        "stages-MIN_NUM_FORMS": "1",
        "stages-MAX_NUM_FORMS": "1000",
        **_stage(0, rule=ApproverRule.MANAGER, step_up=True, pk=stages[0].pk),
        **_stage(1, rule=ApproverRule.SYSTEM_OWNER, quorum=3, step_up=True, pk=stages[1].pk),
        "stages-0-policy": str(policy.pk),
        "stages-1-policy": str(policy.pk),
    }
    response = client.post(f"/admin/accessreq/approvalpolicy/{policy.pk}/change/", change)
    assert response.status_code == 302
    stages[1].refresh_from_db()
    assert stages[1].quorum == 3
    changed = AuditEvent.objects.get(
        action="admin.object.changed", target_type="accessreq.policystage"
    )
    assert changed.data["fields"] == ["quorum"] and changed.target_id == str(stages[1].pk)
    assert stages[1].history.latest().quorum == 3
    assert stages[1].history.latest().history_user_id == security_admin.pk

    change["stages-0-DELETE"] = "on"
    client.post(f"/admin/accessreq/approvalpolicy/{policy.pk}/change/", change)
    assert list(policy.stages.values_list("position", flat=True)) == [2]
    deleted = AuditEvent.objects.get(
        action="admin.object.deleted", target_type="accessreq.policystage"
    )
    assert deleted.target_id == str(stages[0].pk)
    assert PolicyStage.history.filter(id=stages[0].pk, history_type="-").exists()


def _connector_data(**overrides: str) -> dict[str, str]:
    data = {
        "name": "deploy-hook",
        "kind": ConnectorKind.WEBHOOK,
        "url": "https://hooks.example.com/gatehouse",
        "secret": "",
        "timeout_seconds": "10",
        "max_attempts": "5",
        "is_active": "on",
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_connector_secret_is_write_only(verified_client, security_admin) -> None:
    client = verified_client(security_admin)
    refused = client.post("/admin/accessreq/connector/add/", _connector_data())
    assert refused.status_code == 200
    assert "A webhook connector needs a signing secret" in refused.content.decode()
    assert not Connector.objects.exists()

    response = client.post("/admin/accessreq/connector/add/", _connector_data(secret=SECRET))
    assert response.status_code == 302
    connector = Connector.objects.get(name="deploy-hook")
    assert connector.secret() == SECRET
    assert SECRET not in connector.secret_encrypted  # encrypted at rest

    pages = [
        client.get(f"/admin/accessreq/connector/{connector.pk}/change/"),
        client.get("/admin/accessreq/connector/"),
        client.get(f"/admin/accessreq/connector/{connector.pk}/history/"),
    ]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert SECRET not in html and connector.secret_encrypted not in html
    assert 'type="password"' in pages[0].content.decode()
    event = AuditEvent.objects.get(action="admin.object.created", target_type="accessreq.connector")
    assert "secret" in event.data["fields"] and SECRET not in str(event.data)
    assert not hasattr(connector.history.latest(), "secret_encrypted")

    # Saving without typing a secret keeps the stored one; typing one replaces it.
    client.post(
        f"/admin/accessreq/connector/{connector.pk}/change/", _connector_data(max_attempts="3")
    )
    connector.refresh_from_db()
    assert connector.max_attempts == 3 and connector.secret() == SECRET
    client.post(
        f"/admin/accessreq/connector/{connector.pk}/change/",
        _connector_data(secret="another-secret-value-0123456789"),
    )
    connector.refresh_from_db()
    assert connector.secret() == "another-secret-value-0123456789"


@pytest.mark.django_db
def test_entitlement_form_has_policy_break_glass_and_connector(
    verified_client, security_admin, workflow
) -> None:
    item = workflow["entitlement"]
    page = verified_client(security_admin).get(f"/admin/accessreq/entitlement/{item.pk}/change/")
    fields = page.context["adminform"].form.fields
    assert {"policy", "emergency_capable", "connector"} <= set(fields)


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["accessrequest", "grant", "provisioningtask"])
def test_an_old_version_page_cannot_write_a_record(
    verified_client, security_admin, requester, workflow, name
) -> None:
    """simple-history's page for an old version saves on POST after checking only the view
    right; for records only services change, that POST is refused and nothing changes."""
    client = verified_client(security_admin)
    obj = MODELS[name].objects.order_by("pk").first()
    version = obj.history.order_by("history_id").first()
    url = f"/admin/accessreq/{name}/{obj.pk}/history/{version.history_id}/"
    assert client.get(url).status_code in (200, 403)
    before = {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields}
    events = AuditEvent.objects.count()
    response = client.post(url, {"beneficiary": requester.pk, "state": "approved"})
    assert response.status_code == 403
    obj.refresh_from_db()
    assert {f.attname: getattr(obj, f.attname) for f in obj._meta.concrete_fields} == before
    assert AuditEvent.objects.count() == events
