"""Docs pages: the runbook list, a runbook, search and history for everyone signed in; the
editor (with a server-side preview) for security admins only, 404 for anyone else."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accessreq.errors import NotAllowed, WorkflowError
from docs import selectors
from docs.forms import RunbookForm, RunbookNewForm, SearchForm
from docs.markdown import Rendered, render_markdown
from docs.models import Runbook
from docs.services import MAX_BODY, runbook_create, runbook_mark_reviewed, runbook_update
from portal.auth import signed_in_user
from portal.models import User
from portal.roles import is_security_admin

HISTORY_PER_PAGE = 20
# A body diff longer than this is cut; the full texts are in the admin's history.
DIFF_MAX_LINES = 400
_FIELD_LABELS = {
    "title": "Title",
    "category": "Category",
    "summary": "Summary",
    "body": "Text",
    "owner": "Owner account",
    "owner_email": "Owner email",
    "review_every_days": "Review every (days)",
    "last_reviewed_at": "Last reviewed",
    "edited_in_portal": "Edited in the portal",
    "slug": "Address",
}


def _diagrams() -> list[dict[str, str]]:
    """The live diagrams (name, title, description, page), or none while they are not built."""
    try:
        from docs import diagrams
    except ImportError:
        return []
    known: dict[str, Any] = getattr(diagrams, "DIAGRAMS", {})
    return [
        {
            "name": name,
            "title": str(getattr(diagram, "title", name)),
            "description": str(getattr(diagram, "description", "")),
            "url": reverse("docs:diagram", kwargs={"name": name}),
        }
        for name, diagram in known.items()
    ]


@require_GET
def index(request: HttpRequest) -> HttpResponse:
    """Runbooks by category with owner and review dates; search; the live diagrams."""
    user = signed_in_user(request)
    runbooks = list(selectors.runbooks_for_index(user=user))
    groups = [
        (category, list(items)) for category, items in groupby(runbooks, lambda r: r.category)
    ]
    context = {
        "groups": groups,
        "runbook_count": len(runbooks),
        "overdue_count": sum(runbook.is_overdue for runbook in runbooks),
        "search_form": SearchForm(),
        "diagrams": _diagrams(),
        "can_edit": is_security_admin(user),
    }
    return render(request, "docs/index.html", context)


@require_GET
def runbook_detail(request: HttpRequest, slug: str) -> HttpResponse:
    """One runbook: owner, review dates, table of contents and the rendered text."""
    user = signed_in_user(request)
    runbook = get_object_or_404(
        Runbook.objects.visible_to(user).select_related("owner", "updated_by"), slug=slug
    )
    context = {
        "runbook": runbook,
        "rendered": render_markdown(runbook.body),
        "can_edit": is_security_admin(user),
        "reviewed_today": runbook.last_reviewed_at == timezone.localdate(),
    }
    return render(request, "docs/runbook.html", context)


def _editor(
    request: HttpRequest,
    *,
    form: RunbookForm,
    runbook: Runbook | None,
    preview: Rendered | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "form": form,
        "runbook": runbook,
        "preview": preview,
        "categories": selectors.runbook_categories(),
    }
    return render(request, "docs/runbook_form.html", context, status=status)


def _preview_of(request: HttpRequest) -> Rendered:
    return render_markdown(request.POST.get("body", "")[:MAX_BODY])


@require_http_methods(["GET", "POST"])
def runbook_edit(request: HttpRequest, slug: str) -> HttpResponse:
    """Edit a runbook (security admins; 404 for anyone else). Buttons: Preview renders the text
    without saving, Save stores it, and Mark reviewed restarts the review interval."""
    user = signed_in_user(request)
    runbook = get_object_or_404(Runbook.objects.editable_by(user), slug=slug)
    if request.method == "GET":
        form = RunbookForm(
            initial={
                "title": runbook.title,
                "category": runbook.category,
                "summary": runbook.summary,
                "body": runbook.body,
                "owner_email": runbook.owner_email,
                "review_every_days": runbook.review_every_days,
                "opened_version": runbook.updated_at.isoformat(),
            }
        )
        return _editor(request, form=form, runbook=runbook)

    action = request.POST.get("action", "save")
    if action == "mark_reviewed":
        try:
            marked = runbook_mark_reviewed(actor=user, runbook=runbook, http=request)
        except NotAllowed:
            raise Http404 from None
        if marked:
            messages.success(request, f"“{runbook.title}” is marked reviewed today.")
        else:
            messages.info(request, f"“{runbook.title}” was already marked reviewed today.")
        return redirect("docs:runbook", slug=runbook.slug)

    form = RunbookForm(request.POST)
    if action == "preview":
        return _editor(request, form=form, runbook=runbook, preview=_preview_of(request))
    if not form.is_valid():
        return _editor(request, form=form, runbook=runbook, status=400)
    data = form.cleaned_data
    try:
        changed = runbook_update(
            actor=user,
            runbook=runbook,
            title=data["title"],
            category=data["category"],
            summary=data["summary"],
            body=data["body"],
            owner=form.owner(),
            owner_email=data["owner_email"],
            review_every_days=data["review_every_days"],
            mark_reviewed=data["mark_reviewed"],
            expected_updated_at=data["opened_version"],
            http=request,
        )
    except NotAllowed:
        raise Http404 from None
    except WorkflowError as error:
        form.add_error(None, str(error))
        return _editor(request, form=form, runbook=runbook, status=400)
    if changed:
        messages.success(request, f"Saved “{runbook.title}”.")
    else:
        messages.info(request, "Nothing changed, so nothing was saved.")
    return redirect("docs:runbook", slug=runbook.slug)


@require_http_methods(["GET", "POST"])
def runbook_new(request: HttpRequest) -> HttpResponse:
    """Write a new runbook (security admins; 404 for anyone else)."""
    user = signed_in_user(request)
    if not is_security_admin(user):
        raise Http404
    if request.method == "GET":
        return _editor(request, form=RunbookNewForm(), runbook=None)
    form = RunbookNewForm(request.POST)
    if request.POST.get("action") == "preview":
        return _editor(request, form=form, runbook=None, preview=_preview_of(request))
    if not form.is_valid():
        return _editor(request, form=form, runbook=None, status=400)
    data = form.cleaned_data
    try:
        runbook = runbook_create(
            actor=user,
            slug=data["slug"],
            title=data["title"],
            category=data["category"],
            summary=data["summary"],
            body=data["body"],
            owner=form.owner(),
            owner_email=data["owner_email"],
            review_every_days=data["review_every_days"],
            http=request,
        )
    except NotAllowed:
        raise Http404 from None
    except WorkflowError as error:
        form.add_error(None, str(error))
        return _editor(request, form=form, runbook=None, status=400)
    messages.success(request, f"Published “{runbook.title}”.")
    return redirect("docs:runbook", slug=runbook.slug)


@require_POST
def runbook_preview(request: HttpRequest) -> HttpResponse:
    """The rendered preview alone, for the editor's script (security admins; 404 otherwise)."""
    user = signed_in_user(request)
    if not is_security_admin(user):
        raise Http404
    if len(request.POST.get("body", "")) > MAX_BODY:
        return HttpResponseBadRequest("The text is too long to preview.")
    return render(request, "docs/includes/preview.html", {"preview": _preview_of(request)})


# --- History ----------------------------------------------------------------------------------


@dataclass
class FieldChange:
    label: str
    old: str
    new: str


@dataclass
class HistoryEntry:
    record: Any
    kind: str
    who: str
    changes: list[FieldChange] = field(default_factory=list)
    body_diff: list[tuple[str, str]] = field(default_factory=list)
    body_diff_cut: bool = False


def _shown(name: str, value: Any, owners: dict[int, User]) -> str:
    if value is None or value == "":
        return "—"
    if name == "owner":
        owner = owners.get(value)
        return f"{owner.display_name} <{owner.email}>" if owner else f"user #{value}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _body_diff(old: str, new: str) -> tuple[list[tuple[str, str]], bool]:
    lines = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=2))[2:]
    diff = []
    for line in lines[:DIFF_MAX_LINES]:
        kind = {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")
        diff.append((kind, line))
    return diff, len(lines) > DIFF_MAX_LINES


def _history_entries(rows: list[Any], older: Any) -> list[HistoryEntry]:
    """Pair each history row with the one before it and say what changed."""
    pairs = list(zip(rows, [*rows[1:], older], strict=True))
    owner_ids = {row.owner_id for row in [*rows, older] if row is not None and row.owner_id}
    owners = User.objects.in_bulk(owner_ids)
    entries = []
    for row, previous in pairs:
        who = str(row.history_user) if row.history_user else "Gatehouse system"
        kind = {"+": "Created", "~": "Changed", "-": "Deleted"}.get(row.history_type, "Changed")
        entry = HistoryEntry(record=row, kind=kind, who=who)
        if previous is not None and row.history_type == "~":
            delta = row.diff_against(previous, included_fields=list(_FIELD_LABELS))
            for change in delta.changes:
                if change.field == "body":
                    entry.body_diff, entry.body_diff_cut = _body_diff(
                        change.old or "", change.new or ""
                    )
                    entry.changes.append(FieldChange(_FIELD_LABELS["body"], "", ""))
                else:
                    entry.changes.append(
                        FieldChange(
                            _FIELD_LABELS[change.field],
                            _shown(change.field, change.old, owners),
                            _shown(change.field, change.new, owners),
                        )
                    )
        entries.append(entry)
    return entries


@require_GET
def runbook_history(request: HttpRequest, slug: str) -> HttpResponse:
    """Every saved version of a runbook: who, when, and what changed (the text as a diff)."""
    user = signed_in_user(request)
    runbook = get_object_or_404(Runbook.objects.visible_to(user), slug=slug)
    history = selectors.runbook_history(runbook)
    page = Paginator(history, HISTORY_PER_PAGE).get_page(request.GET.get("page"))
    rows = list(page.object_list)
    older = history[page.end_index()] if page.has_next() else None
    context = {
        "runbook": runbook,
        "page": page,
        "entries": _history_entries(rows, older),
    }
    return render(request, "docs/history.html", context)


# --- Search -----------------------------------------------------------------------------------


@require_GET
def search(request: HttpRequest) -> HttpResponse:
    """Full-text search across the runbooks, with highlighted snippets."""
    user = signed_in_user(request)
    form = SearchForm(request.GET or None)
    text = ""
    if form.is_valid():
        text = form.cleaned_data["q"].strip()
    hits = selectors.runbook_search(user=user, text=text) if text else []
    context = {"form": form, "text": text, "hits": hits}
    return render(request, "docs/search.html", context, status=400 if form.errors else 200)
