"""Changes to runbooks: seeding from the repository's files, portal edits, reviews and reminders.

Each service runs in one transaction and writes its audit event inside it. Portal edits are for
security admins only. Seeding never overwrites a runbook edited in the portal: from the first
portal edit on, the database copy is the runbook and the file is only its starting point.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from accessreq.errors import NotAllowed, WorkflowError
from accessreq.services.notifications import notify
from audit.services import record
from docs.models import LONGEST_REVIEW_INTERVAL, Runbook
from portal.history import acting_as
from portal.models import User
from portal.roles import is_security_admin

REQUIRED_KEYS = ("title", "category", "owner", "review_every_days", "summary")
# Optional: the date the shipped text was last reviewed (YYYY-MM-DD); the seeding day otherwise.
OPTIONAL_KEYS = ("last_reviewed",)
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_KEY_LINE = re.compile(r"^(?P<key>[A-Za-z_][A-Za-z0-9_]*)\s*:\s*(?P<value>.*)$")
MAX_BODY = 200_000
# Fields a portal edit may change; changing any of them makes the portal copy win over the file.
CONTENT_FIELDS = ("title", "category", "summary", "body", "owner", "owner_email")
SETTING_FIELDS = ("review_every_days",)
# Short enough to keep before/after values in the audit event (the body is kept as a hash).
_SHORT_FIELDS = ("title", "category", "summary", "owner_email", "review_every_days")


# --- Runbook files ----------------------------------------------------------------------------


class RunbookFileError(ValueError):
    """A runbook file is malformed; the message names the file and the line."""

    def __init__(self, path: Path, line: int, message: str) -> None:
        self.path, self.line, self.message = path, line, message
        super().__init__(f"{path} line {line}: {message}")


@dataclass(frozen=True)
class RunbookSource:
    """One parsed ``docs/runbooks/<slug>.md``."""

    slug: str
    title: str
    category: str
    summary: str
    owner_email: str
    review_every_days: int
    body: str
    source_hash: str
    last_reviewed: date | None = None


def parse_runbook_file(path: Path) -> RunbookSource:
    """Read one runbook file: a ``---`` block of ``key: value`` lines, then the Markdown."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise RunbookFileError(path, 1, f"is not UTF-8 text ({exc.reason})") from None
    slug = path.stem
    if not SLUG.match(slug) or len(slug) > 100:
        raise RunbookFileError(
            path, 1, "the file name must be a slug: lower-case words joined by hyphens"
        )
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise RunbookFileError(path, 1, "must start with a '---' line opening the front matter")
    values: dict[str, tuple[str, int]] = {}
    end = None
    for number, line in enumerate(lines[1:], start=2):
        if line.strip() == "---":
            end = number
            break
        if not line.strip():
            continue
        match = _KEY_LINE.match(line.strip())
        if match is None:
            raise RunbookFileError(
                path,
                number,
                f"expected 'key: value' or the closing '---', found {line.strip()[:60]!r}",
            )
        key, value = match.group("key"), match.group("value").strip()
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            allowed = ", ".join(REQUIRED_KEYS + OPTIONAL_KEYS)
            raise RunbookFileError(path, number, f"unknown key {key!r} (allowed: {allowed})")
        if key in values:
            raise RunbookFileError(path, number, f"{key!r} is given twice")
        values[key] = (value, number)
    if end is None:
        raise RunbookFileError(path, len(lines), "the front matter is never closed with '---'")
    missing = [key for key in REQUIRED_KEYS if not values.get(key, ("", 0))[0]]
    if missing:
        raise RunbookFileError(
            path, end, f"the front matter lacks required key(s): {', '.join(missing)}"
        )

    def check_length(key: str, limit: int) -> str:
        value, number = values[key]
        if len(value) > limit:
            raise RunbookFileError(path, number, f"{key} is longer than {limit} characters")
        return value

    owner, owner_line = values["owner"]
    try:
        validate_email(owner)
    except ValidationError:
        raise RunbookFileError(
            path, owner_line, f"owner must be an email address, not {owner!r}"
        ) from None
    days_text, days_line = values["review_every_days"]
    if not days_text.isdigit() or not 1 <= int(days_text) <= LONGEST_REVIEW_INTERVAL:
        raise RunbookFileError(
            path,
            days_line,
            f"review_every_days must be a whole number of days from 1 to {LONGEST_REVIEW_INTERVAL}",
        )
    last_reviewed = None
    if "last_reviewed" in values:
        reviewed_text, reviewed_line = values["last_reviewed"]
        try:
            last_reviewed = date.fromisoformat(reviewed_text)
        except ValueError:
            raise RunbookFileError(
                path, reviewed_line, "last_reviewed must be a date such as 2026-01-31"
            ) from None
    body = normalise_body("\n".join(lines[end:]))
    if len(body) > MAX_BODY:
        raise RunbookFileError(path, end + 1, f"the text is longer than {MAX_BODY} characters")
    return RunbookSource(
        slug=slug,
        title=check_length("title", 200),
        category=check_length("category", 100),
        summary=check_length("summary", 300),
        owner_email=owner.lower(),
        review_every_days=int(days_text),
        body=body,
        source_hash=hashlib.sha256(raw).hexdigest(),
        last_reviewed=last_reviewed,
    )


def load_runbook_sources(directory: Path) -> list[RunbookSource]:
    """Parse every ``*.md`` in ``directory`` (sorted by name); the first bad file raises."""
    if not directory.is_dir():
        raise RunbookFileError(directory, 0, "is not a directory")
    return [parse_runbook_file(path) for path in sorted(directory.glob("*.md"))]


# --- Seeding ----------------------------------------------------------------------------------


@dataclass
class SeedReport:
    """What a seeding run did, slug by slug."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Portal edits kept; the flag says whether the file changed since it was last seeded.
    kept_portal_edit: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        return {
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "kept portal edit": len(self.kept_portal_edit),
        }


def _owner_for(email: str) -> User | None:
    if not email:
        return None
    return User.objects.humans().filter(email__iexact=email, is_active=True).first()


def _differs(runbook: Runbook, name: str, value: Any) -> bool:
    if name == "owner":
        return runbook.owner_id != (value.pk if value is not None else None)
    return bool(getattr(runbook, name) != value)


def _short_values(runbook: Runbook) -> dict[str, Any]:
    return {name: getattr(runbook, name) for name in _SHORT_FIELDS}


def _body_hash(body: str) -> str:
    return hashlib.sha256(body.encode()).hexdigest()


def _change_data(before: dict[str, Any], runbook: Runbook, changed: list[str]) -> dict[str, Any]:
    """Audit detail: before/after of the short fields that changed, hashes for the body."""
    data: dict[str, Any] = {"slug": runbook.slug, "changed": changed}
    shown = [name for name in changed if name in _SHORT_FIELDS]
    if shown:
        data["before"] = {name: before[name] for name in shown}
        data["after"] = {name: getattr(runbook, name) for name in shown}
    if "owner" in changed:
        data["owner"] = {"before": before["owner_id"], "after": runbook.owner_id}
    if "body" in changed:
        data["body_sha256"] = {"before": before["body_sha256"], "after": _body_hash(runbook.body)}
    return data


def _snapshot(runbook: Runbook) -> dict[str, Any]:
    return {
        **_short_values(runbook),
        "owner_id": runbook.owner_id,
        "body_sha256": _body_hash(runbook.body),
    }


@transaction.atomic
def runbook_seed(*, directory: Path) -> SeedReport:
    """Create runbooks missing from the database from their files, and update the ones nobody
    edited in the portal whose file changed. Never overwrites a portal edit. Idempotent: a second
    run with the same files changes nothing and writes no event. A bad file changes nothing."""
    sources = load_runbook_sources(directory)
    actor = User.objects.system_actor()
    report = SeedReport()
    existing = {
        runbook.slug: runbook
        for runbook in Runbook.objects.select_for_update().filter(
            slug__in=[source.slug for source in sources]
        )
    }
    today = timezone.localdate()
    with acting_as(actor):
        for source in sources:
            runbook = existing.get(source.slug)
            if runbook is None:
                runbook = Runbook(slug=source.slug, created_at=timezone.now())
                _apply_source(runbook, source, today=today)
                runbook._change_reason = f"Loaded from docs/runbooks/{source.slug}.md"  # type: ignore[attr-defined]
                runbook.save()
                record(
                    actor=actor,
                    action="runbook.seeded",
                    target=runbook,
                    data={"slug": runbook.slug, "file_sha256": source.source_hash},
                )
                report.created.append(source.slug)
            elif runbook.edited_in_portal:
                report.kept_portal_edit.append(
                    (source.slug, runbook.source_hash != source.source_hash)
                )
            elif runbook.source_hash == source.source_hash:
                report.unchanged.append(source.slug)
            else:
                before = _snapshot(runbook)
                changed = _apply_source(runbook, source, today=today)
                runbook._change_reason = f"Updated from docs/runbooks/{source.slug}.md"  # type: ignore[attr-defined]
                runbook.save()
                record(
                    actor=actor,
                    action="runbook.updated_from_file",
                    target=runbook,
                    data={
                        **_change_data(before, runbook, changed),
                        "file_sha256": source.source_hash,
                    },
                )
                report.updated.append(source.slug)
    return report


def _apply_source(runbook: Runbook, source: RunbookSource, *, today: date) -> list[str]:
    """Copy a file's content onto ``runbook``; returns the content fields that changed."""
    owner = _owner_for(source.owner_email)
    new = {
        "title": source.title,
        "category": source.category,
        "summary": source.summary,
        "body": source.body,
        "owner": owner,
        "owner_email": owner.email if owner else source.owner_email,
        "review_every_days": source.review_every_days,
    }
    changed = [name for name, value in new.items() if _differs(runbook, name, value)]
    for name, value in new.items():
        setattr(runbook, name, value)
    runbook.source_hash = source.source_hash
    runbook.last_reviewed_at = source.last_reviewed or today
    runbook.updated_at = timezone.now()
    runbook.updated_by = None
    return changed


# --- Portal edits -----------------------------------------------------------------------------


def _require_editor(actor: User) -> None:
    if not is_security_admin(actor):
        raise NotAllowed("Only security admins edit runbooks.")


def _clean_fields(
    *, title: str, category: str, summary: str, body: str, review_every_days: int
) -> dict[str, Any]:
    title, category, summary = title.strip(), category.strip(), summary.strip()
    if not title:
        raise WorkflowError("Give the runbook a title.")
    if not category:
        raise WorkflowError("Choose a category, such as “Everyday access”.")
    if len(title) > 200 or len(category) > 100 or len(summary) > 300:
        raise WorkflowError(
            "Keep the title under 200, the category under 100 and the summary under 300 characters."
        )
    if len(body) > MAX_BODY:
        raise WorkflowError(f"The text is longer than {MAX_BODY} characters; split the runbook.")
    if not 1 <= review_every_days <= LONGEST_REVIEW_INTERVAL:
        raise WorkflowError(
            f"Review it at least every {LONGEST_REVIEW_INTERVAL} days, and at most daily."
        )
    return {
        "title": title,
        "category": category,
        "summary": summary,
        "body": normalise_body(body),
        "review_every_days": review_every_days,
    }


def normalise_body(body: str) -> str:
    """One newline style and one final newline, as in the files: an edit that only changed line
    endings or trailing blank lines (a form strips them) is not a change."""
    body = body.replace("\r\n", "\n").replace("\r", "\n").strip("\n")
    return body + "\n" if body.strip() else ""


def _owner_email(owner: User | None, owner_email: str) -> str:
    if owner is not None:
        return owner.email
    owner_email = owner_email.strip().lower()
    if owner_email:
        try:
            validate_email(owner_email)
        except ValidationError:
            raise WorkflowError(f"{owner_email} is not an email address.") from None
    return owner_email


@transaction.atomic
def runbook_create(
    *,
    actor: User,
    slug: str,
    title: str,
    category: str,
    summary: str,
    body: str,
    owner: User | None,
    owner_email: str = "",
    review_every_days: int,
    http: HttpRequest | None = None,
) -> Runbook:
    """Write a new runbook in the portal (security admins only); it counts as reviewed today.
    A runbook file with the same slug will never overwrite it."""
    _require_editor(actor)
    slug = slug.strip().lower()
    if not SLUG.match(slug) or len(slug) > 100:
        raise WorkflowError("The address must be lower-case words joined by hyphens.")
    if Runbook.objects.filter(slug=slug).exists():
        raise WorkflowError(f"A runbook at /docs/runbooks/{slug}/ exists already; pick another.")
    fields = _clean_fields(
        title=title,
        category=category,
        summary=summary,
        body=body,
        review_every_days=review_every_days,
    )
    clock = timezone.now()
    runbook = Runbook(
        slug=slug,
        owner=owner,
        owner_email=_owner_email(owner, owner_email),
        last_reviewed_at=timezone.localdate(),
        edited_in_portal=True,
        created_at=clock,
        updated_at=clock,
        updated_by=actor,
        **fields,
    )
    runbook._change_reason = "Written in the portal"  # type: ignore[attr-defined]
    with acting_as(actor):
        runbook.save()
    record(
        actor=actor,
        action="runbook.created",
        target=runbook,
        data={"slug": slug, **_short_values(runbook), "body_sha256": _body_hash(runbook.body)},
        request=http,
    )
    return runbook


@transaction.atomic
def runbook_update(
    *,
    actor: User,
    runbook: Runbook,
    title: str,
    category: str,
    summary: str,
    body: str,
    owner: User | None,
    owner_email: str = "",
    review_every_days: int,
    mark_reviewed: bool = False,
    expected_updated_at: datetime | None = None,
    http: HttpRequest | None = None,
) -> list[str]:
    """Edit a runbook in the portal (security admins only). Returns the fields that changed
    (empty: nothing was saved). A content change marks it ``edited_in_portal`` so seeding never
    overwrites it. ``expected_updated_at`` refuses the save when someone else saved in between."""
    _require_editor(actor)
    locked = Runbook.objects.select_for_update().get(pk=runbook.pk)
    if expected_updated_at is not None and locked.updated_at != expected_updated_at:
        who = locked.updated_by or "Seeding from the runbook files"
        raise WorkflowError(
            f"{who} saved this runbook after you opened it. Your text is still in the form: "
            "copy it, reload the page and merge the two."
        )
    fields = _clean_fields(
        title=title,
        category=category,
        summary=summary,
        body=body,
        review_every_days=review_every_days,
    )
    new: dict[str, Any] = {
        "title": fields["title"],
        "category": fields["category"],
        "summary": fields["summary"],
        "body": fields["body"],
        "owner": owner,
        "owner_email": _owner_email(owner, owner_email),
        "review_every_days": fields["review_every_days"],
    }
    before = _snapshot(locked)
    changed = [name for name, value in new.items() if _differs(locked, name, value)]
    today = timezone.localdate()
    reviewed = mark_reviewed and locked.last_reviewed_at != today
    if not changed and not reviewed:
        return []
    for name in changed:
        setattr(locked, name, new[name])
    if changed:
        locked.updated_at = timezone.now()
        locked.updated_by = actor
        if any(name in CONTENT_FIELDS for name in changed):
            locked.edited_in_portal = True
    if reviewed:
        locked.last_reviewed_at = today
    reason = "Edited in the portal" if changed else "Marked reviewed"
    if changed and reviewed:
        reason += " and marked reviewed"
    locked._change_reason = reason  # type: ignore[attr-defined]
    with acting_as(actor):
        locked.save()
    if changed:
        record(
            actor=actor,
            action="runbook.updated",
            target=locked,
            data={**_change_data(before, locked, changed), "marked_reviewed": reviewed},
            request=http,
        )
    else:
        record(
            actor=actor,
            action="runbook.reviewed",
            target=locked,
            data={"slug": locked.slug, "reviewed_on": today.isoformat()},
            request=http,
        )
    # The caller's instance shows what was saved.
    for name in (*new, "updated_at", "updated_by", "edited_in_portal", "last_reviewed_at"):
        setattr(runbook, name, getattr(locked, name))
    return changed + (["last_reviewed_at"] if reviewed else [])


@transaction.atomic
def runbook_mark_reviewed(
    *, actor: User, runbook: Runbook, http: HttpRequest | None = None
) -> bool:
    """Record that a security admin reviewed the runbook today, restarting its review interval.
    False (and nothing written) when it was already marked reviewed today."""
    _require_editor(actor)
    locked = Runbook.objects.select_for_update().get(pk=runbook.pk)
    today = timezone.localdate()
    if locked.last_reviewed_at == today:
        return False
    previous = locked.last_reviewed_at
    locked.last_reviewed_at = today
    locked._change_reason = "Marked reviewed"  # type: ignore[attr-defined]
    with acting_as(actor):
        locked.save()
    record(
        actor=actor,
        action="runbook.reviewed",
        target=locked,
        data={
            "slug": locked.slug,
            "reviewed_on": today.isoformat(),
            "previously": previous.isoformat() if previous else None,
        },
        request=http,
    )
    runbook.last_reviewed_at = today
    return True


# --- Review reminders -------------------------------------------------------------------------


@transaction.atomic
def runbook_review_reminders_send(*, today: date | None = None) -> int:
    """Email the owner of each runbook due for review, once per due date (the notification key
    is unique). Writes nothing when no runbook is due. Returns how many reminders it queued."""
    today = today or timezone.localdate()
    actor = User.objects.system_actor()
    queued = 0
    for runbook in Runbook.objects.filter(owner__isnull=False).select_related("owner"):
        due = runbook.next_review_due
        if due is not None and due > today:
            continue
        assert runbook.owner is not None
        due_text = due.isoformat() if due else "never reviewed"
        notification = notify(
            key=f"runbook:{runbook.pk}:due:{due.isoformat() if due else 'never'}",
            recipient=runbook.owner,
            subject=f"Runbook due for review: {runbook.title}",
            lines=[
                f"The runbook “{runbook.title}”, which you own, is due for review "
                f"(due {due_text}; reviewed every {runbook.review_every_days} days).",
                "Read it against how Gatehouse works today, fix what is out of date, then "
                "press “Mark reviewed” on its page (or ask a security admin to).",
            ],
            path=reverse("docs:runbook", kwargs={"slug": runbook.slug}),
        )
        if notification is None:
            continue  # reminded already for this due date, or the owner can't receive email
        record(
            actor=actor,
            action="runbook.review_reminded",
            target=runbook,
            data={"slug": runbook.slug, "due": due_text, "owner": runbook.owner.email},
        )
        queued += 1
    return queued
