"""Reads of the docs pages: the runbook list, search (ranked, highlighted), and history."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib.postgres.search import SearchHeadline, SearchQuery, SearchRank, SearchVector
from django.db import connection
from django.db.models import BooleanField, Case, F, Q, QuerySet, Value, When
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from docs.models import Runbook

SEARCH_CONFIG = "english"
MAX_QUERY = 200
MAX_TERMS = 8
MAX_RESULTS = 50
SNIPPET_BEFORE = 80
SNIPPET_AFTER = 160


def runbooks_for_index(*, user: Any) -> QuerySet[Runbook]:
    """Every runbook the person may read, by category then title, with its owner."""
    return Runbook.objects.visible_to(user).select_related("owner").order_by("category", "title")


def runbook_categories() -> list[str]:
    return list(Runbook.objects.order_by("category").values_list("category", flat=True).distinct())


def runbook_history(runbook: Runbook) -> QuerySet[Any]:
    """The runbook's history rows, newest first, with who made each."""
    history: Any = runbook.history
    return history.select_related("history_user").order_by("-history_date", "-history_id")


# --- Search -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    """One search result; the three texts are escaped, with only ``<mark>`` tags added."""

    runbook: Runbook
    title: SafeString
    summary: SafeString
    snippet: SafeString
    title_hit: bool


_DIAGRAM_TAG = re.compile(r"\{\{\s*diagram:[^}]*\}\}")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)\s]*(?:\s+\"[^\"]*\")?\)")
_LINK_REMNANT = re.compile(r"\]\([^)\s]*\)?")
_HEADING = re.compile(r"(?m)^[ \t]*#{1,6}[ \t]+(.*?)[ \t#]*$")
_LINE_MARKUP = re.compile(r"(?m)^[ \t]*(?:#{1,6}|[-*+]|\d+[.)]|>+)[ \t]+")
_INLINE_MARKUP = re.compile(r"\*\*|__|`+|\*|\|")
_SPACE = re.compile(r"\s+")


def plain_text(markdown: str) -> str:
    """Markdown with its markup taken out, for snippets (not for display as HTML)."""
    text = _DIAGRAM_TAG.sub(" ", markdown)
    text = _LINK.sub(r"\1", text)
    # A headline fragment may cut a link in half: drop what is left of its syntax too.
    text = _LINK_REMNANT.sub("", text).replace("[", "").replace("]", "")
    # A heading runs into the text after it; a separator keeps "Steps · Open the catalog" apart.
    text = _HEADING.sub(r"\1 · ", text)
    text = _LINE_MARKUP.sub(" ", text)
    text = re.sub(r"(?m)^[ \t]*(?:-{3,}|:?-+:?(?:[ \t]*\|[ \t]*:?-+:?)*)[ \t]*$", " ", text)
    text = _INLINE_MARKUP.sub("", text)
    return _SPACE.sub(" ", text).strip()


def _marked(text: str, start: str, stop: str) -> SafeString:
    """Escape ``text`` and turn the sentinel markers PostgreSQL put in into ``<mark>`` tags."""
    html = str(escape(text)).replace(start, "<mark>").replace(stop, "</mark>")
    return mark_safe(html)  # noqa: S308 - escaped first; the sentinels are our own random words


def search_terms(text: str) -> list[str]:
    """The words of a query for the simple (SQLite) search: quotes and operators dropped."""
    words = re.sub(r"[\"'()]", " ", text).split()
    terms: list[str] = []
    for word in words:
        word = word.lstrip("-+").casefold()
        if word and word not in {"or", "and"} and word not in terms:
            terms.append(word)
    return terms[:MAX_TERMS]


def highlight(text: str, terms: list[str]) -> SafeString:
    """``text`` escaped, with every case-insensitive occurrence of a term in ``<mark>``."""
    if not terms:
        return mark_safe(escape(text))  # noqa: S308 - escaped
    pattern = re.compile(
        "|".join(re.escape(term) for term in sorted(terms, key=len, reverse=True)), re.IGNORECASE
    )
    parts: list[str] = []
    position = 0
    for match in pattern.finditer(text):
        parts.append(str(escape(text[position : match.start()])))
        parts.append(f"<mark>{escape(match.group())}</mark>")
        position = match.end()
    parts.append(str(escape(text[position:])))
    return mark_safe("".join(parts))  # noqa: S308 - every piece escaped


def snippet_around(text: str, terms: list[str]) -> str:
    """A stretch of ``text`` around the first occurrence of any term, cut at word boundaries."""
    folded = text.casefold()
    hits = [index for term in terms if (index := folded.find(term)) >= 0]
    if not hits:
        return ""
    first = min(hits)
    start = max(0, first - SNIPPET_BEFORE)
    end = min(len(text), first + SNIPPET_AFTER)
    if start > 0:
        space = text.find(" ", start, first)
        start = space + 1 if space >= 0 else start
    if end < len(text):
        space = text.rfind(" ", first, end)
        end = space if space > first else end
    return ("… " if start > 0 else "") + text[start:end] + (" …" if end < len(text) else "")


def runbook_search(*, user: Any, text: str) -> list[SearchHit]:
    """Runbooks matching ``text``, best first: title matches, then by relevance.

    PostgreSQL: full-text search (websearch syntax: words, "a phrase", -not) over title (weight
    A), summary (B) and body (C), ranked by ts_rank, with ts_headline snippets. SQLite: every word
    must occur (case-insensitively) in the title, summary or body; title hits first.
    """
    text = text.strip()[:MAX_QUERY]
    if not text:
        return []
    runbooks = Runbook.objects.visible_to(user).select_related("owner")
    if connection.vendor == "postgresql":
        return _search_postgresql(runbooks, text)
    return _search_simple(runbooks, text)


def _search_postgresql(runbooks: QuerySet[Runbook], text: str) -> list[SearchHit]:
    query = SearchQuery(text, search_type="websearch", config=SEARCH_CONFIG)
    document = (
        SearchVector("title", weight="A", config=SEARCH_CONFIG)
        + SearchVector("summary", weight="B", config=SEARCH_CONFIG)
        + SearchVector("body", weight="C", config=SEARCH_CONFIG)
    )
    # Random words PostgreSQL wraps hits in; everything else is escaped before they become marks.
    nonce = secrets.token_hex(6)
    start, stop = f"ghmark{nonce}start", f"ghmark{nonce}stop"
    marks: dict[str, Any] = {"config": SEARCH_CONFIG, "start_sel": start, "stop_sel": stop}
    found = (
        runbooks.annotate(
            document=document, title_document=SearchVector("title", config=SEARCH_CONFIG)
        )
        .filter(document=query)
        .annotate(
            rank=SearchRank(F("document"), query),
            title_hit=Case(
                When(title_document=query, then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
            title_marked=SearchHeadline("title", query, highlight_all=True, **marks),
            summary_marked=SearchHeadline("summary", query, highlight_all=True, **marks),
            body_marked=SearchHeadline(
                "body",
                query,
                max_words=40,
                min_words=20,
                max_fragments=2,
                fragment_delimiter=" … ",
                **marks,
            ),
        )
        .order_by("-title_hit", "-rank", "title")[:MAX_RESULTS]
    )
    hits = []
    for runbook in found:
        body = plain_text(runbook.body_marked)
        hits.append(
            SearchHit(
                runbook=runbook,
                title=_marked(runbook.title_marked, start, stop),
                summary=_marked(runbook.summary_marked, start, stop),
                # A snippet only when the body matched; the summary is shown anyway.
                snippet=_marked(body, start, stop) if start in body else mark_safe(""),
                title_hit=runbook.title_hit,
            )
        )
    return hits


def _search_simple(runbooks: QuerySet[Runbook], text: str) -> list[SearchHit]:
    terms = search_terms(text)
    if not terms:
        return []
    for term in terms:
        runbooks = runbooks.filter(
            Q(title__icontains=term) | Q(summary__icontains=term) | Q(body__icontains=term)
        )
    scored = []
    for runbook in runbooks[: MAX_RESULTS * 4]:
        title, summary = runbook.title.casefold(), runbook.summary.casefold()
        body = plain_text(runbook.body)
        in_title = sum(term in title for term in terms)
        in_summary = sum(term in summary for term in terms)
        in_body = sum(body.casefold().count(term) for term in terms)
        scored.append(((-in_title, -in_summary, -in_body, runbook.title.casefold()), runbook, body))
    scored.sort(key=lambda item: item[0])
    return [
        SearchHit(
            runbook=runbook,
            title=highlight(runbook.title, terms),
            summary=highlight(runbook.summary, terms),
            snippet=highlight(snippet_around(body, terms), terms),
            title_hit=key[0] < 0,
        )
        for key, runbook, body in scored[:MAX_RESULTS]
    ]
