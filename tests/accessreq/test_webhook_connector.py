"""The webhook connector against a real HTTP server on 127.0.0.1: signed JSON events, retries,
failure alerts that leave the grant alone, and removal confirmed only by a 2xx answer."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from accessreq.connectors import webhook
from accessreq.models import (
    Connector,
    ConnectorKind,
    Entitlement,
    Grant,
    GrantState,
    Operation,
    ProvisioningTask,
    RiskTier,
    TaskStatus,
)
from accessreq.selectors import holds_scope
from accessreq.services.common import MfaContext
from accessreq.services.grants import grant_revoke
from accessreq.services.requests import request_approve, request_submit
from audit.models import AuditEvent
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory

FRESH = MfaContext("totp", 10)
REASON = "Deploy the hotfix for the payments outage"
SECRET = "a-long-random-webhook-secret-0123456789"


@dataclass
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server in a thread that records each POST and answers ``status``."""

    status: int = 200
    deliveries: list[Delivery] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_port}/gatehouse/events"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server naming
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.deliveries.append(Delivery(dict(self.headers.items()), body))
                answer = json.dumps({"ok": receiver.status < 300}).encode()
                self.send_response(receiver.status)
                if 300 <= receiver.status < 400:
                    self.send_header("Location", "/elsewhere")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def do_GET(self) -> None:  # noqa: N802 - a followed redirect would arrive here
                receiver.deliveries.append(Delivery(dict(self.headers.items()), b""))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.start()
    yield server
    server.stop()


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just free)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/gatehouse/events"


def make_connector(url: str, *, max_attempts: int = 3) -> Connector:
    connector = Connector(
        name="deploy-hook",
        kind=ConnectorKind.WEBHOOK,
        url=url,
        max_attempts=max_attempts,
        timeout_seconds=5,
    )
    connector.set_secret(SECRET)
    connector.save()
    return connector


@pytest.fixture
def entitlement_for(db, owner):
    def make(connector: Connector) -> Entitlement:
        system = SystemFactory(name="payments", slug="payments")
        env = EnvironmentFactory(name="dev", slug="dev", risk_tier=RiskTier.LOW)
        item = EntitlementFactory(
            system=system,
            environment=env,
            name="Deployer",
            slug="deployer",
            connector=connector,
            scopes=["deploy", "rollback"],
        )
        item.owners.add(owner)
        return item

    return make


def activate(person, item, approver, capture) -> Grant:
    """Submit and approve a low-tier request, running what is queued on commit."""
    with capture(execute=True):
        req = request_submit(
            actor=person, entitlement=item, justification=REASON, duration=timedelta(hours=8)
        )
        request_approve(actor=approver, request_id=req.pk, mfa=FRESH)
    req.refresh_from_db()
    assert req.grant is not None
    return req.grant


@pytest.mark.django_db
def test_activation_posts_one_signed_event_and_confirms(
    receiver, entitlement_for, requester, owner, django_capture_on_commit_callbacks
) -> None:
    item = entitlement_for(make_connector(receiver.url))
    grant = activate(requester, item, owner, django_capture_on_commit_callbacks)

    assert len(receiver.deliveries) == 1
    delivery = receiver.deliveries[0]
    headers = delivery.headers
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Gatehouse-Event"] == "grant.activated"
    timestamp, signature = headers["X-Gatehouse-Timestamp"], headers["X-Gatehouse-Signature"]
    assert webhook.verify(SECRET, timestamp, delivery.body, signature)
    assert not webhook.verify("another-secret-entirely", timestamp, delivery.body, signature)
    assert not webhook.verify(SECRET, timestamp, delivery.body + b" ", signature)

    event = delivery.event
    assert event["event"] == "grant.activated" and event["operation"] == "provision"
    assert event["grant"]["id"] == grant.pk
    assert event["grant"]["beneficiary"] == {"id": requester.pk, "email": requester.email}
    assert event["grant"]["system"] == "payments" and event["grant"]["environment"] == "dev"
    assert event["grant"]["scopes"] == ["deploy", "rollback"]
    assert event["grant"]["expires_at"] == grant.expires_at.isoformat()
    assert event["delivery"] == headers["X-Gatehouse-Delivery"]

    grant.refresh_from_db()
    task = ProvisioningTask.objects.get(grant=grant)
    assert task.status == TaskStatus.CONFIRMED and task.attempts == 1
    assert task.response_status == 200 and '"ok": true' in task.response_body
    assert grant.provisioned_at == task.confirmed_at is not None
    confirmed = AuditEvent.objects.get(action="provisioning.confirmed")
    assert confirmed.data["grant_id"] == grant.pk and confirmed.data["response_status"] == 200


@pytest.mark.django_db
def test_server_error_is_retried_then_alerts_and_leaves_the_grant_alone(
    receiver,
    entitlement_for,
    requester,
    owner,
    verified_client,
    django_capture_on_commit_callbacks,
) -> None:
    receiver.status = 500
    item = entitlement_for(make_connector(receiver.url, max_attempts=3))
    grant = activate(requester, item, owner, django_capture_on_commit_callbacks)
    before = Grant.objects.values("state", "starts_at", "expires_at").get(pk=grant.pk)

    assert len(receiver.deliveries) == 3
    # A retry repeats the delivery id, so a receiver can dedupe.
    assert {d.headers["X-Gatehouse-Delivery"] for d in receiver.deliveries} == {
        f"gatehouse-task-{ProvisioningTask.objects.get().pk}"
    }
    task = ProvisioningTask.objects.get()
    assert task.status == TaskStatus.FAILED and task.attempts == 3
    assert task.response_status == 500 and task.last_error == "HTTP 500"
    actions = list(
        AuditEvent.objects.filter(action__contains="provisioning")
        .order_by("sequence")
        .values_list("action", flat=True)
    )
    assert actions == [
        "provisioning.attempt_failed",
        "provisioning.attempt_failed",
        "alert.provisioning.failed",
    ]
    assert Grant.objects.values("state", "starts_at", "expires_at").get(pk=grant.pk) == before
    grant.refresh_from_db()
    assert grant.state == GrantState.ACTIVE and grant.provisioned_at is None
    # The failing connector does not take away access the grant gives.
    assert holds_scope(user=requester, scope="deploy", system="payments", environment="dev")
    page = verified_client(requester).get("/access/")
    assert str(page.context["active"][0].status) == "Connector failed, security team alerted"
    assert "Connector failed" in page.content.decode()


@pytest.mark.django_db
def test_revoke_is_confirmed_only_after_a_2xx(
    receiver,
    entitlement_for,
    requester,
    owner,
    security_admin,
    verified_client,
    django_capture_on_commit_callbacks,
) -> None:
    item = entitlement_for(make_connector(receiver.url, max_attempts=2))
    grant = activate(requester, item, owner, django_capture_on_commit_callbacks)
    assert len(receiver.deliveries) == 1

    receiver.status = 503
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(actor=owner, grant_id=grant.pk, reason="Moved to another team")
    revokes = receiver.deliveries[1:]
    assert len(revokes) == 2
    assert revokes[0].headers["X-Gatehouse-Event"] == "grant.revoked"
    assert revokes[0].event["operation"] == "deprovision"
    grant.refresh_from_db()
    assert grant.state == GrantState.REVOKED and grant.revoked_at is not None
    assert grant.deprovisioned_at is None  # the connector has not confirmed the removal
    removal = ProvisioningTask.objects.get(operation=Operation.DEPROVISION)
    assert removal.status == TaskStatus.FAILED
    assert AuditEvent.objects.filter(action="alert.provisioning.failed").count() == 1

    # The receiver recovers; a security admin sends it again from the provisioning page.
    receiver.status = 204
    client = verified_client(security_admin)
    assert removal in client.get("/provisioning/").context["needs_person"]
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/provisioning/{removal.pk}/retry/")
    assert response.status_code == 302
    assert len(receiver.deliveries) == 4
    grant.refresh_from_db()
    removal.refresh_from_db()
    assert removal.status == TaskStatus.CONFIRMED and removal.response_status == 204
    assert grant.deprovisioned_at == removal.confirmed_at is not None
    retried = AuditEvent.objects.get(action="provisioning.retried")
    assert retried.actor_id == security_admin.pk and retried.data["grant_id"] == grant.pk
    confirmed = AuditEvent.objects.filter(action="provisioning.confirmed").order_by("sequence")
    assert [e.data["operation"] for e in confirmed] == ["provision", "deprovision"]
    ended = verified_client(requester).get("/access/").context["ended"]
    assert str(ended[0].status).startswith("Removed, confirmed")


@pytest.mark.django_db
def test_a_server_that_is_down_is_a_recorded_failure_not_a_crash(
    entitlement_for, requester, owner, django_capture_on_commit_callbacks
) -> None:
    item = entitlement_for(make_connector(closed_port_url(), max_attempts=2))
    grant = activate(requester, item, owner, django_capture_on_commit_callbacks)
    task = ProvisioningTask.objects.get()
    assert task.status == TaskStatus.FAILED and task.attempts == 2
    assert task.response_status is None
    assert "refused" in task.last_error.lower() or "URLError" in task.last_error
    alert = AuditEvent.objects.get(action="alert.provisioning.failed")
    assert alert.data["error"] and alert.data["attempt"] == 2
    grant.refresh_from_db()
    assert grant.state == GrantState.ACTIVE and grant.provisioned_at is None


@pytest.mark.django_db
def test_a_redirect_is_not_a_confirmation(
    receiver, entitlement_for, requester, owner, django_capture_on_commit_callbacks
) -> None:
    receiver.status = 302
    item = entitlement_for(make_connector(receiver.url, max_attempts=1))
    grant = activate(requester, item, owner, django_capture_on_commit_callbacks)
    # Only the POST arrived: the redirect was not followed as a GET without the signed body.
    assert len(receiver.deliveries) == 1 and receiver.deliveries[0].body
    task = ProvisioningTask.objects.get()
    assert task.status == TaskStatus.FAILED and task.response_status == 302
    grant.refresh_from_db()
    assert grant.provisioned_at is None


def test_verify_refuses_old_timestamps_and_odd_signatures() -> None:
    body = b'{"event":"grant.activated"}'
    now = str(int(time.time()))
    good = webhook.sign(SECRET, now, body)
    assert webhook.verify(SECRET, now, body, good)
    stale = str(int(time.time()) - 3600)
    assert not webhook.verify(SECRET, stale, body, webhook.sign(SECRET, stale, body))
    assert not webhook.verify(SECRET, "not-a-number", body, good)
    assert not webhook.verify(SECRET, now, body, "sha256=ünïcode")


@pytest.mark.django_db
def test_a_setup_still_failing_when_access_ends_is_cancelled_and_never_sent_again(
    receiver, entitlement_for, requester, owner, django_capture_on_commit_callbacks
) -> None:
    """The set-up fails, the access is revoked, then a late retry (or an admin's "retry") runs:
    the receiver must never be told to set up access that was taken away."""
    from accessreq.services.provisioning import provisioning_retry
    from accessreq.tasks import provisioning_run

    receiver.status = 503
    item = entitlement_for(make_connector(receiver.url, max_attempts=2))
    grant = activate(requester, item, owner, django_capture_on_commit_callbacks)
    setup = ProvisioningTask.objects.get(grant=grant, operation=Operation.PROVISION)
    assert setup.status == TaskStatus.FAILED and len(receiver.deliveries) == 2

    receiver.status = 200
    with django_capture_on_commit_callbacks(execute=True):
        grant_revoke(actor=owner, grant_id=grant.pk, reason="Project cancelled")
    setup.refresh_from_db()
    assert setup.status == TaskStatus.CANCELLED
    assert AuditEvent.objects.filter(action="provisioning.cancelled").count() == 1
    assert [d.event["operation"] for d in receiver.deliveries[2:]] == ["deprovision"]

    provisioning_run.apply(args=[setup.pk])  # a late retry
    security = owner
    security.is_superuser = True
    security.save()
    with pytest.raises(Exception, match="Only a failed task"):
        provisioning_retry(actor=security, task_id=setup.pk)
    assert [d.event["operation"] for d in receiver.deliveries[2:]] == ["deprovision"]
    setup.refresh_from_db()
    assert setup.status == TaskStatus.CANCELLED
