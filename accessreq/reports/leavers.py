"""Leavers and movers: people marked leaving or left, or moved to another team or manager, in a
period; the access they held at that moment, what they hold now, and how fast it was removed.

Changes come from the person's model history (``User.history``): each saved version is compared
with the one before it, and one row is one saved change (a save that changed the status and the
team at once is one row naming both). A leaver should hold nothing now: anything still held is
flagged. A mover keeps access that is still justified, so the time to removal is shown only when
everything held at the move has ended.

The change's time is the history's (the app's clock) while revocations are stamped by the
database's clock, so access ended up to ``CLOCK_SLACK`` before the change still counts as held
at it: a revocation made by the change itself is never missed because two clocks disagree.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar

from django import forms
from django.db.models import (
    Aggregate,
    CharField,
    Count,
    F,
    JSONField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat, JSONObject

from accessreq.models import Grant
from accessreq.reports import common
from accessreq.reports.base import Column, Report, register
from accessreq.reports.forms import PeriodForm
from portal.models import User

CLOCK_SLACK = timedelta(seconds=5)
LEAVING = (User.EmploymentStatus.LEAVING, User.EmploymentStatus.LEFT)
CHANGES = {"leavers": "Leavers", "movers": "Movers (team or manager)"}
_SEPARATOR = "\n"


class LeaversForm(PeriodForm):
    change = forms.ChoiceField(
        label="Change",
        choices=[("", "Leavers and movers"), *CHANGES.items()],
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Rows are people, not access to one system.
        for name in ("system", "environment", "tier"):
            del self.fields[name]
        self.fields["team"].help_text = "Their team before or after the change."


class _Lines(Aggregate):
    """Text values joined by newlines, in no set order: ``GROUP_CONCAT`` on SQLite,
    ``STRING_AGG`` on PostgreSQL."""

    function = "GROUP_CONCAT"
    output_field = TextField()

    def __init__(self, expression: Any) -> None:
        super().__init__(expression, Value(_SEPARATOR))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(compiler, connection, function="STRING_AGG", **extra)


def _previous(field: str | Any, output_field: Any = None) -> Subquery:
    """``field`` of the person's version just before this one."""
    versions = (
        User.history.model.objects.filter(id=OuterRef("id"))
        .filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
        )
        .order_by("-history_date", "-history_id")
    )
    value = F(field) if isinstance(field, str) else field
    return Subquery(versions.values(value=value)[:1], output_field=output_field)


def _per_person(grants: QuerySet[Grant], aggregate: Any) -> Subquery:
    return Subquery(
        grants.order_by().values("beneficiary_id").annotate(value=aggregate).values("value")[:1]
    )


def _label() -> Concat:
    return Concat(
        Value("#"),
        Cast("pk", CharField()),
        Value(" "),
        "entitlement__system__name",
        Value(" / "),
        "entitlement__environment__name",
        Value(" / "),
        "entitlement__name",
        output_field=TextField(),
    )


def people_changes(since: datetime, until: datetime, at: datetime) -> QuerySet[Any]:
    """Saved versions of people in ``[since, until)`` that marked them leaving or left or changed
    their team or manager, annotated with the version before and with their access then and at
    ``at`` (all in this one statement, so a page of rows is one query)."""
    change = OuterRef("history_date")
    mine = Grant.objects.filter(beneficiary_id=OuterRef("id"))
    # Held at the change: started by then, not ended or revoked before it.
    then = mine.filter(created_at__lte=change, starts_at__lte=change).filter(
        expires_at__gt=change - CLOCK_SLACK
    )
    then = then.filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=change - CLOCK_SLACK))
    # Held (or about to be) at ``at``.
    held = mine.filter(revoked_at__isnull=True, expires_at__gt=at)
    kept = then.filter(revoked_at__isnull=True, expires_at__gt=at)
    versions = (
        User.history.model.objects.filter(
            history_date__gte=since,
            history_date__lt=until,
            history_type="~",
            kind=User.Kind.HUMAN,
        )
        .annotate(
            status_before=_previous("employment_status"),
            team_before=Coalesce(_previous("team_id"), Value(0)),
            manager_before=Coalesce(_previous("manager_id"), Value(0)),
            team_now=Coalesce("team_id", Value(0)),
            manager_now=Coalesce("manager_id", Value(0)),
        )
        .filter(status_before__isnull=False)
        .filter(
            (Q(employment_status__in=LEAVING) & ~Q(employment_status=F("status_before")))
            | ~Q(team_now=F("team_before"))
            | ~Q(manager_now=F("manager_before"))
        )
    )
    return versions.annotate(
        names_before=_previous(
            JSONObject(
                team=F("team__name"),
                manager_name=F("manager__display_name"),
                manager_email=F("manager__email"),
            ),
            output_field=JSONField(),
        ),
        status_today=Subquery(
            User.objects.filter(pk=OuterRef("id")).order_by().values("employment_status")[:1]
        ),
        then_count=Coalesce(_per_person(then, Count("pk")), Value(0)),
        then_names=_per_person(then, _Lines(_label())),
        then_ended=_per_person(then, Max(Coalesce("revoked_at", "expires_at"))),
        kept_count=Coalesce(_per_person(kept, Count("pk")), Value(0)),
        held_count=Coalesce(_per_person(held, Count("pk")), Value(0)),
        held_names=_per_person(held, _Lines(_label())),
    )


def _names(text: str | None) -> str:
    """The grants' labels, one a line, in grant order."""
    if not text:
        return ""
    lines = text.split(_SEPARATOR)
    return _SEPARATOR.join(sorted(lines, key=lambda line: int(line[1:].split(" ", 1)[0])))


def _manager(name: str | None, email: str | None) -> str:
    if not email:
        return "none"
    return f"{name} <{email}>" if name else email


def _team(name: str | None, key: int) -> str:
    if not key:
        return "no team"
    return name or f"team #{key} (deleted)"


@register
class LeaversMovers(Report):
    slug = "leavers-movers"
    title = "Leavers and movers"
    summary = (
        "People marked leaving or left, or moved to another team or manager, in a period: the "
        "access they held then, what they still hold (a leaver should hold nothing) and how "
        "fast it was removed."
    )
    form_class = LeaversForm
    columns: ClassVar[list[Column]] = [
        Column("person", "Person", 1.5),
        Column("change", "Change", 1.6),
        Column("at", "When", 1.0),
        Column("by", "Changed by", 1.3),
        Column("then_count", "Held then", 0.5),
        Column("then", "Access at the change", 2.0),
        Column("held_count", "Held now", 0.5),
        Column("held", "Access held now", 2.0),
        Column("removed", "Removed in", 1.1),
        Column("breaches", "Flag", 1.4),
    ]

    def queryset(self) -> QuerySet[Any]:
        versions = people_changes(self.params["since"], self.params["until"], self.at)
        if team := self.params.get("team"):
            versions = versions.filter(Q(team_now=team.pk) | Q(team_before=team.pk))
        if text := (self.params.get("person") or "").strip():
            versions = versions.filter(Q(display_name__icontains=text) | Q(email__icontains=text))
        leaver = Q(employment_status__in=LEAVING) & ~Q(employment_status=F("status_before"))
        if self.params.get("change") == "leavers":
            versions = versions.filter(leaver)
        elif self.params.get("change") == "movers":
            versions = versions.exclude(leaver)
        return versions.select_related("team", "manager", "history_user").order_by(
            "history_date", "history_id"
        )

    def facts(self) -> list[tuple[str, str]]:
        facts = [
            ("Changed from", common.utc(self.params["since"])),
            ("Changed before", common.utc(self.params["until"])),
        ]
        if self.params.get("change"):
            facts.append(("Change", CHANGES[self.params["change"]]))
        for key, label in (("team", "Team"), ("person", "Person")):
            if self.params.get(key):
                facts.append((label, str(self.params[key])))
        return facts

    def cells(self, version: Any) -> list[Any]:
        before = version.names_before or {}
        leaver = (
            version.employment_status in LEAVING
            and version.employment_status != version.status_before
        )
        changes = []
        if leaver:
            changes.append(f"Marked {version.get_employment_status_display().lower()}")
        if version.team_now != version.team_before:
            was = _team(before.get("team"), version.team_before)
            now = _team(version.team.name if version.team else None, version.team_now)
            changes.append(f"Team: {was} → {now}")
        if version.manager_now != version.manager_before:
            was = _manager(before.get("manager_name"), before.get("manager_email"))
            now = (
                _manager(version.manager.display_name, version.manager.email)
                if version.manager
                else "none"
            )
            changes.append(f"Manager: {was} → {now}")
        return [
            common.person(version),
            "\n".join(changes),
            common.utc(version.history_date),
            common.person(version.history_user) or "Not recorded",
            version.then_count,
            _names(version.then_names),
            version.held_count,
            _names(version.held_names),
            self._removed(version, leaver=leaver),
            self._flag(version, leaver=leaver),
        ]

    def _removed(self, version: Any, *, leaver: bool) -> str:
        if not version.then_count:
            return "Nothing to remove" if leaver else "n/a (mover)"
        if version.kept_count:
            held = f"{version.kept_count} of {version.then_count}"
            return f"Not removed: {held} still held" if leaver else f"n/a (mover): {held} kept"
        return common.duration(max(version.then_ended - version.history_date, timedelta(0)))

    def _flag(self, version: Any, *, leaver: bool) -> str:
        if not leaver or not version.held_count:
            return "None"
        if version.status_today == User.EmploymentStatus.ACTIVE:
            return "None"  # back at work: what they hold now is theirs again
        if version.status_today == User.EmploymentStatus.LEAVING:
            return f"Leaving and still holds {version.held_count}: remove by their last day"
        return f"Left but still holds {version.held_count}"
