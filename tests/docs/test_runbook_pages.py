"""Docs reading pages (index, runbook, history, search): open to everyone signed in, closed to
anonymous visitors; the overdue flag and the security liaison show where people look."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from docs.models import Runbook
from docs.services import runbook_update
from tests.docs.helpers import make_runbook

LIAISON = {
    "SECURITY_LIAISON_NAME": "Priya Liaison",
    "SECURITY_LIAISON_CONTACT": "liaison@corp.test",
}


@pytest.fixture
def runbook(db) -> Runbook:
    return make_runbook(
        body=(
            "## Before you start\n\nOpen the **catalog**.\n\n### Pick the environment\n\nprod\n\n"
            "## Ask\n\nWrite a reason. <script>alert(1)</script>\n"
        ),
        owner_email="omar@example.com",
    )


@pytest.fixture
def overdue(db) -> Runbook:
    return make_runbook(
        "break-glass",
        title="Break-glass",
        category="Incidents",
        last_reviewed_at=timezone.localdate() - timedelta(days=100),
        review_every_days=90,
    )


def reading_urls(runbook: Runbook) -> list[str]:
    return [
        reverse("docs:index"),
        reverse("docs:runbook", args=[runbook.slug]),
        reverse("docs:runbook_history", args=[runbook.slug]),
        reverse("docs:search") + "?q=catalog",
        reverse("docs:search"),
    ]


def diagram_urls() -> list[str]:
    """The live diagram pages (built by the diagrams part of the docs), once they exist."""
    try:
        from docs.diagrams import DIAGRAMS
    except ImportError:
        return []
    return [reverse("docs:diagrams")] + [
        reverse("docs:diagram", kwargs={"name": name}) for name in DIAGRAMS
    ]


@pytest.mark.django_db
def test_anonymous_is_sent_to_sign_in(client, runbook) -> None:
    for url in reading_urls(runbook):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
@override_settings(**LIAISON)
def test_every_docs_page_shows_the_security_liaison(
    verified_client, outsider, security_admin, runbook
) -> None:
    pages = reading_urls(runbook) + diagram_urls()
    admin_pages = [
        reverse("docs:runbook_edit", args=[runbook.slug]),
        reverse("docs:runbook_new"),
    ]
    for client, urls in (
        (verified_client(outsider), pages),
        (verified_client(security_admin), admin_pages),
    ):
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, url
            html = response.content.decode()
            assert "Security liaison" in html, url
            assert "Priya Liaison" in html, url
            assert 'href="mailto:liaison@corp.test"' in html, url


@pytest.mark.django_db
@override_settings(SECURITY_LIAISON_CONTACT="https://chat.example.com/#security")
def test_liaison_contact_can_be_a_web_address(verified_client, outsider, runbook) -> None:
    response = verified_client(outsider).get(reverse("docs:index"))
    assert b'href="https://chat.example.com/#security"' in response.content


@pytest.mark.django_db
@override_settings(SECURITY_LIAISON_CONTACT="javascript:alert(1)")
def test_liaison_contact_that_is_no_address_is_plain_text(
    verified_client, outsider, runbook
) -> None:
    response = verified_client(outsider).get(reverse("docs:index"))
    assert b"javascript:alert(1)" in response.content
    assert b'href="javascript' not in response.content


@pytest.mark.django_db
def test_index_lists_runbooks_by_category_with_review_dates(
    verified_client, outsider, runbook, overdue, django_assert_max_num_queries
) -> None:
    client = verified_client(outsider)
    with django_assert_max_num_queries(12):
        response = client.get(reverse("docs:index"))
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index(">Everyday access</h2>") < html.index(">Incidents</h2>")
    assert "Requesting access" in html and "How to ask for access." in html
    assert "omar@example.com" in html
    assert timezone.localdate().strftime("%Y-%m-%d") in html  # last reviewed
    due = (timezone.localdate() + timedelta(days=180)).strftime("%Y-%m-%d")
    assert due in html
    assert 'action="/docs/search/"' in html
    assert reverse("docs:diagrams") in html
    # Only the overdue one is flagged, and the page says how many are overdue.
    assert html.count("overdue-flag") == 1
    assert "1 of 2 runbooks is overdue for review" in html
    # Readers get no editing link.
    assert reverse("docs:runbook_new") not in html


@pytest.mark.django_db
def test_index_query_count_does_not_grow_with_runbooks(
    verified_client, outsider, django_assert_max_num_queries
) -> None:
    client = verified_client(outsider)
    make_runbook("one")
    client.get(reverse("docs:index"))
    for number in range(15):
        make_runbook(f"more-{number}", category=f"Category {number % 4}")
    with django_assert_max_num_queries(12):
        response = client.get(reverse("docs:index"))
    assert response.content.decode().count('class="runbook-link"') == 16


@pytest.mark.django_db
def test_index_empty_state(verified_client, outsider) -> None:
    response = verified_client(outsider).get(reverse("docs:index"))
    assert b"No runbooks yet." in response.content


@pytest.mark.django_db
def test_runbook_page_has_toc_owner_dates_and_escaped_text(
    verified_client, outsider, runbook
) -> None:
    response = verified_client(outsider).get(reverse("docs:runbook", args=[runbook.slug]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "<h1>Requesting access</h1>" in html
    assert 'href="#section-before-you-start"' in html
    assert 'href="#section-pick-the-environment"' in html
    assert '<h2 id="section-before-you-start">' in html
    assert "<strong>catalog</strong>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert" not in html
    assert "omar@example.com" in html
    assert reverse("docs:runbook_history", args=[runbook.slug]) in html
    assert "Overdue for review" not in html
    # Readers see no Edit or Mark reviewed.
    assert reverse("docs:runbook_edit", args=[runbook.slug]) not in html
    assert "Mark reviewed" not in html


@pytest.mark.django_db
def test_overdue_runbook_is_flagged_prominently(verified_client, outsider, overdue) -> None:
    response = verified_client(outsider).get(reverse("docs:runbook", args=[overdue.slug]))
    html = response.content.decode()
    assert 'class="overdue-banner"' in html
    assert "Overdue for review." in html
    due = overdue.last_reviewed_at + timedelta(days=90)
    assert f'Its review was due on <time datetime="{due.isoformat()}">' in html
    assert "(10 days ago)" in html


@pytest.mark.django_db
def test_never_reviewed_runbook_is_overdue(verified_client, outsider) -> None:
    runbook = make_runbook("new-one")
    Runbook.objects.filter(pk=runbook.pk).update(last_reviewed_at=None)
    response = verified_client(outsider).get(reverse("docs:runbook", args=["new-one"]))
    assert b"It has never been reviewed." in response.content


@pytest.mark.django_db
def test_unknown_runbook_is_404(verified_client, outsider) -> None:
    response = verified_client(outsider).get(reverse("docs:runbook", args=["no-such-thing"]))
    assert response.status_code == 404


@pytest.mark.django_db
def test_security_admin_sees_edit_and_mark_reviewed(
    verified_client, security_admin, overdue
) -> None:
    html = (
        verified_client(security_admin)
        .get(reverse("docs:runbook", args=[overdue.slug]))
        .content.decode()
    )
    assert reverse("docs:runbook_edit", args=[overdue.slug]) in html
    assert 'value="mark_reviewed"' in html


@pytest.mark.django_db
def test_history_page_shows_who_when_and_what_changed(
    verified_client, auditor, security_admin, runbook, django_assert_max_num_queries
) -> None:
    for number in range(3):
        runbook_update(
            actor=security_admin,
            runbook=runbook,
            title=f"Requesting access v{number}",
            category="Everyday access",
            summary="How to ask for access.",
            body=runbook.body + f"\nLine {number}\n",
            owner=security_admin if number == 2 else None,
            owner_email="omar@example.com",
            review_every_days=180,
        )
    client = verified_client(auditor)
    with django_assert_max_num_queries(14):
        response = client.get(reverse("docs:runbook_history", args=[runbook.slug]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "4 versions" in html
    assert html.count("Changed by Sam Security") == 3
    assert html.count("Edited in the portal.") == 3
    assert "Created by" in html
    assert "Requesting access v1" in html and "Requesting access v2" in html
    assert '<span class="diff__add">+Line 2</span>' in html
    assert "Sam Security &lt;sam@example.com&gt;" in html  # the owner change, by name
    assert "&lt;script&gt;" in html  # the text in the diff stays escaped
    assert "<script>alert" not in html


@pytest.mark.django_db
def test_history_of_unknown_runbook_is_404(verified_client, outsider) -> None:
    response = verified_client(outsider).get(reverse("docs:runbook_history", args=["nope"]))
    assert response.status_code == 404
