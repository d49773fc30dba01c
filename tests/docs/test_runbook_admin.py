"""Runbooks in the admin: security admins manage them (saves go through the docs services, so
they are audited, history-tracked and marked edited in the portal); auditors only look."""

from __future__ import annotations

import pytest

from audit.models import AuditEvent
from docs.models import Runbook
from tests.docs.helpers import make_runbook


def admin_data(runbook: Runbook | None = None, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "title": runbook.title if runbook else "Admin-made runbook",
        "category": runbook.category if runbook else "Contacts",
        "summary": runbook.summary if runbook else "Made in the admin.",
        "body": runbook.body if runbook else "## One\n\nText.\n",
        "owner": "",
        "owner_email": runbook.owner_email if runbook else "",
        "review_every_days": runbook.review_every_days if runbook else 30,
        "_save": "Save",
    }
    if runbook is None:
        data["slug"] = "admin-made"
    data.update(changes)
    return data


@pytest.mark.django_db
def test_security_admin_edits_a_runbook_in_the_admin(verified_client, security_admin) -> None:
    runbook = make_runbook()
    client = verified_client(security_admin)
    url = f"/admin/docs/runbook/{runbook.pk}/change/"
    assert client.get("/admin/docs/runbook/").status_code == 200
    assert client.get(url).status_code == 200

    response = client.post(url, admin_data(runbook, body="## Changed in the admin\n"))

    assert response.status_code == 302, response.content[:2000]
    runbook.refresh_from_db()
    assert runbook.body == "## Changed in the admin\n"
    assert runbook.edited_in_portal
    assert runbook.updated_by == security_admin
    assert runbook.history.count() == 2
    assert runbook.history.first().history_user == security_admin
    (event,) = AuditEvent.objects.filter(action__startswith="runbook.")
    assert event.action == "runbook.updated"
    assert event.data["changed"] == ["body"]
    # Not also the generic admin event: one change, one event.
    assert not AuditEvent.objects.filter(action__startswith="admin.object").exists()
    assert client.get(f"/admin/docs/runbook/{runbook.pk}/history/").status_code == 200


@pytest.mark.django_db
def test_security_admin_adds_a_runbook_in_the_admin(verified_client, security_admin) -> None:
    response = verified_client(security_admin).post(
        "/admin/docs/runbook/add/", admin_data(owner=security_admin.pk)
    )
    assert response.status_code == 302, response.content[:2000]
    runbook = Runbook.objects.get(slug="admin-made")
    assert runbook.owner == security_admin and runbook.owner_email == security_admin.email
    assert runbook.edited_in_portal
    assert AuditEvent.objects.filter(action="runbook.created").count() == 1


@pytest.mark.django_db
def test_mark_reviewed_admin_action(verified_client, security_admin) -> None:
    from datetime import timedelta

    from django.utils import timezone

    old = make_runbook(last_reviewed_at=timezone.localdate() - timedelta(days=400))
    response = verified_client(security_admin).post(
        "/admin/docs/runbook/", {"action": "mark_reviewed", "_selected_action": [old.pk]}
    )
    assert response.status_code == 302
    old.refresh_from_db()
    assert old.last_reviewed_at == timezone.localdate()
    assert AuditEvent.objects.filter(action="runbook.reviewed").count() == 1


@pytest.mark.django_db
def test_auditor_may_look_but_not_change(verified_client, auditor) -> None:
    auditor.is_staff = True
    auditor.save()
    runbook = make_runbook()
    client = verified_client(auditor)
    assert client.get("/admin/docs/runbook/").status_code == 200
    page = client.get(f"/admin/docs/runbook/{runbook.pk}/change/")
    assert page.status_code == 200
    assert 'name="_save"' not in page.content.decode()
    assert (
        client.post(f"/admin/docs/runbook/{runbook.pk}/change/", admin_data(runbook)).status_code
        == 403
    )
    assert client.get("/admin/docs/runbook/add/").status_code == 403


@pytest.mark.django_db
def test_outsider_stays_out_of_the_admin(verified_client, outsider) -> None:
    response = verified_client(outsider).get("/admin/docs/runbook/")
    assert response.status_code in {302, 403, 404}
