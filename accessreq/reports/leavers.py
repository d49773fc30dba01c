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

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django import forms
from django.db.models import BigIntegerField, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accessreq.models import Grant
from accessreq.reports import common
from accessreq.reports.base import Column, Report, register
from accessreq.reports.forms import PeriodForm
from portal.models import Team, User

CLOCK_SLACK = timedelta(seconds=5)
ID: BigIntegerField[int, int] = BigIntegerField()
LEAVING = (User.EmploymentStatus.LEAVING, User.EmploymentStatus.LEFT)
CHANGES = {"leavers": "Leavers", "movers": "Movers (team or manager)"}
GRANT_FIELDS = (
    "pk",
    "beneficiary_id",
    "created_at",
    "starts_at",
    "expires_at",
    "revoked_at",
    *common.ENTITLEMENT_NAME_FIELDS,
)


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


def _previous(field: str) -> Subquery:
    """``field`` of the person's version just before this one."""
    versions = (
        User.history.model.objects.filter(id=OuterRef("id"))
        .filter(
            Q(history_date__lt=OuterRef("history_date"))
            | Q(history_date=OuterRef("history_date"), history_id__lt=OuterRef("history_id"))
        )
        .order_by("-history_date", "-history_id")
    )
    return Subquery(versions.values(field)[:1])


# A version that marked the person leaving or left (from another status).
BECAME_LEAVER = Q(employment_status__in=LEAVING) & ~Q(employment_status=F("status_before"))


def people_changes(since: datetime, until: datetime) -> QuerySet[Any]:
    """Saved versions of people in ``[since, until)`` that marked them leaving or left or changed
    their team or manager, annotated with the version before (team and manager ids, 0 for none)."""
    return (
        User.history.model.objects.filter(
            history_date__gte=since,
            history_date__lt=until,
            history_type="~",
            kind=User.Kind.HUMAN,
        )
        .annotate(
            status_before=_previous("employment_status"),
            team_before=Coalesce(_previous("team_id"), Value(0), output_field=ID),
            manager_before=Coalesce(_previous("manager_id"), Value(0), output_field=ID),
            team_now=Coalesce("team_id", Value(0), output_field=ID),
            manager_now=Coalesce("manager_id", Value(0), output_field=ID),
        )
        .filter(status_before__isnull=False)
        .filter(BECAME_LEAVER | ~Q(team_now=F("team_before")) | ~Q(manager_now=F("manager_before")))
    )


def held_at_change(grant: dict[str, Any], when: datetime) -> bool:
    """Started by ``when``, and neither ended nor revoked before it (within the clock slack)."""
    edge = when - CLOCK_SLACK
    return (
        grant["created_at"] <= when
        and grant["starts_at"] <= when
        and grant["expires_at"] > edge
        and (grant["revoked_at"] is None or grant["revoked_at"] > edge)
    )


def held_now(grant: dict[str, Any], at: datetime) -> bool:
    """Held or about to be at ``at``: not revoked and not ended."""
    return grant["revoked_at"] is None and grant["expires_at"] > at


def _label(grant: dict[str, Any]) -> str:
    return f"#{grant['pk']} " + common.entitlement_text(grant)


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
        Column("breaches", "Flag", 1.4),
        Column("removed", "Removed in", 1.1),
        Column("then_count", "Held then", 0.5),
        Column("then", "Access at the change", 2.0),
        Column("held_count", "Held now", 0.5),
        Column("held", "Access held now", 2.0),
        Column("by", "Changed by", 1.3),
    ]
    fields = (
        "history_id",
        "id",
        "display_name",
        "email",
        "employment_status",
        "status_before",
        "team_now",
        "team_before",
        "manager_now",
        "manager_before",
        "history_date",
        "history_user__display_name",
        "history_user__email",
    )

    def queryset(self) -> QuerySet[Any]:
        versions = people_changes(self.params["since"], self.params["until"])
        if team := self.params.get("team"):
            versions = versions.filter(Q(team_now=team.pk) | Q(team_before=team.pk))
        if text := (self.params.get("person") or "").strip():
            versions = versions.filter(Q(display_name__icontains=text) | Q(email__icontains=text))
        if self.params.get("change") == "leavers":
            versions = versions.filter(BECAME_LEAVER)
        elif self.params.get("change") == "movers":
            versions = versions.exclude(BECAME_LEAVER)
        return versions.order_by("history_date", "history_id")

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

    def attach(self, records: list[dict[str, Any]]) -> None:
        """The people's grants that could matter (held at any of these changes, or now), their
        current status, and the names of the teams and managers involved: three queries."""
        if not records:
            return
        people = {record["id"] for record in records}
        teams = {record[key] for record in records for key in ("team_now", "team_before")}
        managers = {record[key] for record in records for key in ("manager_now", "manager_before")}
        earliest = min(record["history_date"] for record in records) - CLOCK_SLACK
        grants: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for grant in (
            Grant.objects.filter(beneficiary_id__in=people, expires_at__gt=earliest)
            .filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=earliest))
            .order_by("pk")
            .values(*GRANT_FIELDS)
        ):
            grants[grant["beneficiary_id"]].append(grant)
        team_names = dict(Team.objects.filter(pk__in=teams).values_list("pk", "name"))
        users = {
            user["pk"]: user
            for user in User.objects.filter(pk__in=people | managers).values(
                "pk", "display_name", "email", "employment_status"
            )
        }
        for record in records:
            record["grants"] = grants[record["id"]]
            record["team_names"] = team_names
            record["users"] = users

    def cells(self, version: dict[str, Any]) -> list[Any]:
        when = version["history_date"]
        leaver = (
            version["employment_status"] in LEAVING
            and version["employment_status"] != version["status_before"]
        )
        then = [grant for grant in version["grants"] if held_at_change(grant, when)]
        held = [grant for grant in version["grants"] if held_now(grant, self.at)]
        kept = [grant for grant in then if held_now(grant, self.at)]
        today = version["users"].get(version["id"], {}).get("employment_status")
        return [
            common.named(version["display_name"], version["email"]),
            "\n".join(self._changes(version, leaver=leaver)),
            common.utc(when),
            self._flag(leaver=leaver, held=len(held), today=today),
            self._removed(when, then, kept, leaver=leaver),
            len(then),
            "\n".join(_label(grant) for grant in then),
            len(held),
            "\n".join(_label(grant) for grant in held),
            common.named(version["history_user__display_name"], version["history_user__email"])
            or "Not recorded",
        ]

    def _changes(self, version: dict[str, Any], *, leaver: bool) -> list[str]:
        changes = []
        if leaver:
            status = User.EmploymentStatus(version["employment_status"]).label
            changes.append(f"Marked {str(status).lower()}")
        if version["team_now"] != version["team_before"]:
            was, now = (self._team(version, key) for key in ("team_before", "team_now"))
            changes.append(f"Team: {was} → {now}")
        if version["manager_now"] != version["manager_before"]:
            was, now = (self._manager(version, key) for key in ("manager_before", "manager_now"))
            changes.append(f"Manager: {was} → {now}")
        return changes

    @staticmethod
    def _team(version: dict[str, Any], key: str) -> str:
        pk = version[key]
        if not pk:
            return "no team"
        return str(version["team_names"].get(pk) or f"team #{pk} (deleted)")

    @staticmethod
    def _manager(version: dict[str, Any], key: str) -> str:
        pk = version[key]
        if not pk:
            return "none"
        user = version["users"].get(pk)
        return common.named(user["display_name"], user["email"]) if user else f"#{pk} (deleted)"

    @staticmethod
    def _removed(
        when: datetime, then: list[dict[str, Any]], kept: list[dict[str, Any]], *, leaver: bool
    ) -> str:
        if not then:
            return "Nothing to remove" if leaver else "n/a (mover)"
        if kept:
            held = f"{len(kept)} of {len(then)}"
            return f"Not removed: {held} still held" if leaver else f"n/a (mover): {held} kept"
        last = max(
            min(grant["revoked_at"] or grant["expires_at"], grant["expires_at"]) for grant in then
        )
        return common.duration(max(last - when, timedelta(0)))

    @staticmethod
    def _flag(*, leaver: bool, held: int, today: str | None) -> str:
        if not leaver or not held or today == User.EmploymentStatus.ACTIVE:
            # Movers keep what is still justified; someone back at work holds their own access.
            return "None"
        if today == User.EmploymentStatus.LEAVING:
            return f"Leaving and still holds {held}: remove by their last day"
        return f"Left but still holds {held}"
