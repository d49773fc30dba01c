"""Runbook search, on both databases: finds, ranks title matches above body-only matches, and
highlights hits with <mark> while escaping everything else."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.urls import reverse

from docs.selectors import highlight, plain_text, runbook_search, snippet_around
from tests.docs.helpers import make_runbook


@pytest.fixture
def runbooks(db) -> dict[str, object]:
    return {
        "title": make_runbook(
            "webhook-secrets",
            title="Webhook secrets",
            category="Pipelines and secrets",
            summary="Rotate a connector's shared secret.",
            body="## Steps\n\nAdd the new value, then remove the old one.\n",
        ),
        "body": make_runbook(
            "connectors",
            title="Connectors",
            category="Pipelines and secrets",
            summary="How provisioning reaches other systems.",
            body=(
                "## Delivery\n\nEach connector posts a **webhook** to the target. A failed "
                "webhook is retried; after five webhook failures an alert is raised. "
                "<script>alert(1)</script> The webhook body is signed.\n"
            ),
        ),
        "other": make_runbook(
            "offboarding", title="Offboarding", category="People", body="Deactivate the account."
        ),
    }


def slugs(hits) -> list[str]:
    return [hit.runbook.slug for hit in hits]


@pytest.mark.django_db
def test_title_match_ranks_above_body_only_matches(runbooks, outsider) -> None:
    hits = runbook_search(user=outsider, text="webhook")
    assert slugs(hits) == ["webhook-secrets", "connectors"]
    assert hits[0].title_hit and not hits[1].title_hit


@pytest.mark.django_db
def test_hits_are_highlighted_and_everything_else_escaped(runbooks, outsider) -> None:
    title_hit, body_hit = runbook_search(user=outsider, text="Webhook")
    assert str(title_hit.title) == "<mark>Webhook</mark> secrets"
    assert "<mark>webhook</mark>" in str(body_hit.snippet)
    assert "<script>" not in str(body_hit.snippet)
    assert "**" not in str(body_hit.snippet)  # Markdown markup is left out of snippets
    # The title-only hit has no body snippet; its summary is shown instead.
    assert str(title_hit.snippet) == ""
    assert str(title_hit.summary) == "Rotate a connector&#x27;s shared secret."


@pytest.mark.django_db
def test_every_word_must_match(runbooks, outsider) -> None:
    assert slugs(runbook_search(user=outsider, text="webhook retried")) == ["connectors"]
    assert slugs(runbook_search(user=outsider, text="webhook nonexistentword")) == []


@pytest.mark.django_db
def test_search_is_case_insensitive_and_finds_summaries(runbooks, outsider) -> None:
    assert slugs(runbook_search(user=outsider, text="PROVISIONING")) == ["connectors"]


@pytest.mark.django_db
def test_html_in_the_body_is_never_markup_in_a_snippet(outsider) -> None:
    make_runbook(
        "evil",
        title="Evil",
        body='Before <img src=x onerror="alert(1)"> the keyword appears here <b>bold</b>.',
    )
    (hit,) = runbook_search(user=outsider, text="keyword")
    snippet = str(hit.snippet)
    assert "<mark>keyword</mark>" in snippet
    # The only tags are our marks (PostgreSQL's headline drops HTML; SQLite's snippet escapes it).
    tags = re.findall(r"<\s*/?\s*([a-zA-Z]+)", snippet)
    assert set(tags) == {"mark"}


@pytest.mark.django_db
def test_search_page_for_readers(verified_client, outsider, runbooks) -> None:
    client = verified_client(outsider)
    response = client.get(reverse("docs:search"), {"q": "webhook"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "2 runbooks match “webhook”." in html
    assert html.index("/docs/runbooks/webhook-secrets/") < html.index("/docs/runbooks/connectors/")
    assert "<mark>Webhook</mark> secrets" in html
    assert "<script>alert(1)" not in html


@pytest.mark.django_db
def test_search_page_empty_states(verified_client, outsider, runbooks) -> None:
    client = verified_client(outsider)
    blank = client.get(reverse("docs:search")).content.decode()
    assert "Type a word or two" in blank
    none = client.get(reverse("docs:search"), {"q": "<b>zebra</b>"}).content.decode()
    assert "No runbook matches “&lt;b&gt;zebra&lt;/b&gt;”." in none
    assert "<b>zebra</b>" not in none


@pytest.mark.django_db
def test_search_query_too_long_is_refused(verified_client, outsider) -> None:
    response = verified_client(outsider).get(reverse("docs:search"), {"q": "x" * 201})
    assert response.status_code == 400


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL full-text search only")
def test_postgresql_search_stems_words_and_understands_phrases(runbooks, outsider) -> None:
    # "failures" and "failed" share the stem "fail"; a quoted phrase must appear as written.
    assert slugs(runbook_search(user=outsider, text="failing")) == ["connectors"]
    assert slugs(runbook_search(user=outsider, text='"webhook body"')) == ["connectors"]
    assert slugs(runbook_search(user=outsider, text="webhook -retried")) == ["webhook-secrets"]


def test_snippet_helpers() -> None:
    text = plain_text("## Heading\n\n- item with [a link](https://x.example) and `code`\n")
    assert text == "Heading · item with a link and code"
    # A fragment that cut a link in half loses the link syntax too.
    assert plain_text("see [Tokens](/docs/runbooks/tok … and [a](b)") == "see Tokens … and a"
    assert snippet_around("a " * 100 + "needle " + "b " * 100, ["needle"]).startswith("… ")
    assert str(highlight("A <b> and B", ["b"])) == "A &lt;<mark>b</mark>&gt; and <mark>B</mark>"
