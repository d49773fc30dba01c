"""Editing runbooks: only security admins (everyone else gets 404), a server-side preview that
saves nothing, and every save writes a history row and an audit event in its transaction."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accessreq.errors import NotAllowed, WorkflowError
from audit.models import AuditEvent
from docs.models import Runbook
from docs.services import runbook_create, runbook_mark_reviewed, runbook_update
from tests.docs.helpers import make_runbook


@pytest.fixture
def runbook(db) -> Runbook:
    return make_runbook(last_reviewed_at=timezone.localdate() - timedelta(days=30))


def edit_data(runbook: Runbook, **changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "title": runbook.title,
        "category": runbook.category,
        "summary": runbook.summary,
        "body": runbook.body,
        "owner_email": runbook.owner_email,
        "review_every_days": runbook.review_every_days,
        "opened_version": runbook.updated_at.isoformat(),
        "action": "save",
    }
    data.update(changes)
    return data


NEW = {
    "title": "Rotating webhook secrets",
    "slug": "rotating-webhook-secrets",
    "category": "Pipelines and secrets",
    "summary": "Swap a connector's webhook secret without downtime.",
    "body": "## Steps\n\n1. Add the new secret.\n",
    "owner_email": "sam@example.com",
    "review_every_days": 90,
    "action": "save",
}


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def editor_urls(runbook: Runbook) -> list[str]:
    return [
        reverse("docs:runbook_edit", args=[runbook.slug]),
        reverse("docs:runbook_new"),
        reverse("docs:runbook_preview"),
    ]


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client, runbook) -> None:
    for url in editor_urls(runbook):
        for response in (client.get(url), client.post(url, edit_data(runbook))):
            assert response.status_code == 302, url
            assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["outsider", "auditor", "manager"])
def test_everyone_but_security_admins_gets_404_and_changes_nothing(
    request, verified_client, runbook, persona
) -> None:
    client = verified_client(request.getfixturevalue(persona))
    edit = reverse("docs:runbook_edit", args=[runbook.slug])
    assert client.get(edit).status_code == 404
    assert client.post(edit, edit_data(runbook, body="Defaced")).status_code == 404
    assert client.post(edit, {"action": "mark_reviewed"}).status_code == 404
    assert client.post(edit, edit_data(runbook, action="preview")).status_code == 404
    assert client.get(reverse("docs:runbook_new")).status_code == 404
    assert client.post(reverse("docs:runbook_new"), NEW).status_code == 404
    preview = client.post(reverse("docs:runbook_preview"), {"body": "## Hi"})
    assert preview.status_code == 404
    runbook.refresh_from_db()
    assert runbook.body != "Defaced"
    assert runbook.last_reviewed_at == timezone.localdate() - timedelta(days=30)
    assert not Runbook.objects.filter(slug=NEW["slug"]).exists()
    assert not AuditEvent.objects.filter(action__startswith="runbook.").exists()


@pytest.mark.django_db
def test_services_refuse_anyone_but_security_admins(runbook, auditor, outsider) -> None:
    for actor in (auditor, outsider):
        with pytest.raises(NotAllowed):
            runbook_update(
                actor=actor,
                runbook=runbook,
                title="x",
                category="x",
                summary="",
                body="",
                owner=None,
                review_every_days=10,
            )
        with pytest.raises(NotAllowed):
            runbook_mark_reviewed(actor=actor, runbook=runbook)
        with pytest.raises(NotAllowed):
            runbook_create(
                actor=actor,
                slug="x",
                title="x",
                category="x",
                summary="",
                body="",
                owner=None,
                review_every_days=10,
            )


@pytest.mark.django_db
def test_security_admin_edits_with_history_and_audit_event(
    verified_client, security_admin, runbook
) -> None:
    client = verified_client(security_admin)
    url = reverse("docs:runbook_edit", args=[runbook.slug])
    page = client.get(url)
    assert page.status_code == 200
    assert b"Preview" in page.content and b'name="body"' in page.content
    history_before = runbook.history.count()

    response = client.post(
        url,
        edit_data(
            runbook,
            title="Requesting access today",
            body=runbook.body + "\n## Extending\n\nAsk again.\n",
            owner_email="SAM@example.com",
            review_every_days=60,
        ),
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("docs:runbook", args=[runbook.slug])
    runbook.refresh_from_db()
    assert runbook.title == "Requesting access today"
    assert "## Extending" in runbook.body
    assert runbook.owner == security_admin
    assert runbook.owner_email == "sam@example.com"
    assert runbook.review_every_days == 60
    assert runbook.edited_in_portal
    assert runbook.updated_by == security_admin
    assert runbook.history.count() == history_before + 1
    latest = runbook.history.first()
    assert latest.history_user == security_admin
    assert latest.title == "Requesting access today"
    (event,) = events("runbook.updated")
    assert event.actor_id == security_admin.pk
    assert event.target_id == str(runbook.pk)
    assert event.data["changed"] == ["title", "body", "owner", "owner_email", "review_every_days"]
    assert event.data["before"]["title"] == "Requesting access"
    assert event.data["after"]["title"] == "Requesting access today"
    assert event.data["owner"] == {"before": None, "after": security_admin.pk}
    assert event.data["marked_reviewed"] is False
    assert event.session_hash  # tied to the request that made it
    # The page shows the new version.
    html = client.get(response["Location"]).content.decode()
    assert 'href="#section-extending"' in html
    assert "Saved “Requesting access today”." in html


@pytest.mark.django_db
def test_saving_without_changes_writes_nothing(verified_client, security_admin, runbook) -> None:
    client = verified_client(security_admin)
    response = client.post(reverse("docs:runbook_edit", args=[runbook.slug]), edit_data(runbook))
    assert response.status_code == 302
    assert runbook.history.count() == 1
    assert not AuditEvent.objects.filter(action__startswith="runbook.").exists()
    runbook.refresh_from_db()
    assert not runbook.edited_in_portal


@pytest.mark.django_db
def test_windows_line_endings_alone_are_no_change(security_admin, runbook) -> None:
    changed = runbook_update(
        actor=security_admin,
        runbook=runbook,
        title=runbook.title,
        category=runbook.category,
        summary=runbook.summary,
        body=runbook.body.replace("\n", "\r\n"),
        owner=None,
        review_every_days=runbook.review_every_days,
    )
    assert changed == []


@pytest.mark.django_db
def test_preview_renders_on_the_server_and_saves_nothing(
    verified_client, security_admin, runbook
) -> None:
    client = verified_client(security_admin)
    response = client.post(
        reverse("docs:runbook_edit", args=[runbook.slug]),
        edit_data(
            runbook,
            action="preview",
            body="## Draft heading\n\nNew *text* <img src=x onerror=alert(1)>\n\n"
            "{{ diagram:no-such-diagram }}",
        ),
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert 'id="preview"' in html
    assert '<h2 id="section-draft-heading">Draft heading</h2>' in html
    assert "<em>text</em>" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "Unknown diagram: no-such-diagram" in html
    # The draft stays in the form, and nothing was saved.
    assert "## Draft heading" in html
    runbook.refresh_from_db()
    assert "Draft heading" not in runbook.body
    assert runbook.history.count() == 1
    assert not AuditEvent.objects.filter(action__startswith="runbook.").exists()


@pytest.mark.django_db
def test_preview_endpoint_for_the_script(verified_client, security_admin) -> None:
    client = verified_client(security_admin)
    response = client.post(reverse("docs:runbook_preview"), {"body": "## Hi\n\n<b>x</b>"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<h2 id="section-hi">Hi</h2>' in html
    assert "&lt;b&gt;x&lt;/b&gt;" in html
    assert "<html" not in html  # a fragment, not a page
    assert client.get(reverse("docs:runbook_preview")).status_code == 405


@pytest.mark.django_db
def test_invalid_edit_shows_errors_and_changes_nothing(
    verified_client, security_admin, runbook
) -> None:
    response = verified_client(security_admin).post(
        reverse("docs:runbook_edit", args=[runbook.slug]),
        edit_data(runbook, title="", review_every_days=0),
    )
    assert response.status_code == 400
    assert b"field--error" in response.content
    runbook.refresh_from_db()
    assert runbook.title == "Requesting access"


@pytest.mark.django_db
def test_save_is_refused_when_someone_else_saved_meanwhile(
    verified_client, security_admin, runbook
) -> None:
    opened = runbook.updated_at.isoformat()
    runbook_update(
        actor=security_admin,
        runbook=runbook,
        title="Changed by a colleague",
        category=runbook.category,
        summary=runbook.summary,
        body=runbook.body,
        owner=None,
        review_every_days=runbook.review_every_days,
    )
    response = verified_client(security_admin).post(
        reverse("docs:runbook_edit", args=[runbook.slug]),
        edit_data(runbook, opened_version=opened, title="My stale edit", body="Mine"),
    )
    assert response.status_code == 400
    assert "saved this runbook after you opened it" in response.content.decode()
    assert b"Mine" in response.content  # the person's text is not lost
    runbook.refresh_from_db()
    assert runbook.title == "Changed by a colleague"
    assert len(events("runbook.updated")) == 1


@pytest.mark.django_db
def test_mark_reviewed_restarts_the_review_interval(
    verified_client, security_admin, runbook
) -> None:
    client = verified_client(security_admin)
    url = reverse("docs:runbook_edit", args=[runbook.slug])
    response = client.post(url, {"action": "mark_reviewed"})
    assert response.status_code == 302
    runbook.refresh_from_db()
    assert runbook.last_reviewed_at == timezone.localdate()
    assert runbook.next_review_due == timezone.localdate() + timedelta(days=180)
    assert not runbook.edited_in_portal  # a review is not an edit: the file may still update it
    (event,) = events("runbook.reviewed")
    assert event.data["reviewed_on"] == timezone.localdate().isoformat()
    assert runbook.history.first().history_user == security_admin
    # Twice the same day: nothing more is written.
    client.post(url, {"action": "mark_reviewed"})
    assert len(events("runbook.reviewed")) == 1
    assert (
        "Reviewed today"
        in client.get(reverse("docs:runbook", args=[runbook.slug])).content.decode()
    )


@pytest.mark.django_db
def test_edit_with_mark_reviewed_box(verified_client, security_admin, runbook) -> None:
    verified_client(security_admin).post(
        reverse("docs:runbook_edit", args=[runbook.slug]),
        edit_data(runbook, summary="Updated summary.", mark_reviewed="on"),
    )
    runbook.refresh_from_db()
    assert runbook.last_reviewed_at == timezone.localdate()
    (event,) = events("runbook.updated")
    assert event.data["marked_reviewed"] is True


@pytest.mark.django_db
def test_security_admin_writes_a_new_runbook(verified_client, security_admin, runbook) -> None:
    client = verified_client(security_admin)
    preview = client.post(reverse("docs:runbook_new"), {**NEW, "action": "preview"})
    assert preview.status_code == 200 and b'id="section-steps"' in preview.content
    assert not Runbook.objects.filter(slug=NEW["slug"]).exists()

    response = client.post(reverse("docs:runbook_new"), NEW)

    assert response.status_code == 302
    created = Runbook.objects.get(slug=NEW["slug"])
    assert response["Location"] == reverse("docs:runbook", args=[created.slug])
    assert created.owner == security_admin
    assert created.edited_in_portal
    assert created.last_reviewed_at == timezone.localdate()
    assert created.history.count() == 1
    (event,) = events("runbook.created")
    assert event.data["slug"] == NEW["slug"]
    # The same address again is refused with a message.
    again = client.post(reverse("docs:runbook_new"), {**NEW, "slug": runbook.slug})
    assert again.status_code == 400
    assert "exists already" in again.content.decode()


@pytest.mark.django_db
def test_create_refuses_a_bad_address(security_admin) -> None:
    with pytest.raises(WorkflowError, match="lower-case words"):
        runbook_create(
            actor=security_admin,
            slug="Bad Address",
            title="x",
            category="x",
            summary="",
            body="",
            owner=None,
            review_every_days=10,
        )


@pytest.mark.django_db
def test_a_refused_edit_rolls_back_with_its_event(security_admin, runbook) -> None:
    with pytest.raises(WorkflowError):
        runbook_update(
            actor=security_admin,
            runbook=runbook,
            title="   ",
            category="x",
            summary="",
            body="changed",
            owner=None,
            review_every_days=10,
        )
    runbook.refresh_from_db()
    assert runbook.body != "changed"
    assert runbook.history.count() == 1
    assert not AuditEvent.objects.filter(action__startswith="runbook.").exists()
