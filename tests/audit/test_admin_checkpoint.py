"""Security admins can sign a checkpoint on demand from the admin."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent, Checkpoint
from audit.services import record


@pytest.mark.django_db
def test_sign_now_button(verified_client, security_admin, settings, tmp_path) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "key.pem")
    client = verified_client(security_admin)
    page = client.get("/admin/audit/checkpoint/")
    assert page.status_code == 200
    assert "Sign a checkpoint now" in page.content.decode()
    assert client.get("/admin/audit/checkpoint/sign/").status_code == 403
    record(actor=security_admin, action="user.changed", target=security_admin)
    response = client.post("/admin/audit/checkpoint/sign/", follow=True)
    assert "Signed a checkpoint of" in response.content.decode()
    checkpoint = Checkpoint.objects.get()
    signed = AuditEvent.objects.get(action="audit.checkpoint.signed")
    assert signed.actor_id == security_admin.pk
    assert signed.data["tree_size"] == checkpoint.tree_size


@pytest.mark.django_db
def test_outsiders_cannot_sign(verified_client, requester) -> None:
    response = verified_client(requester).post("/admin/audit/checkpoint/sign/", follow=True)
    assert response.status_code == 403
    assert not Checkpoint.objects.exists()
