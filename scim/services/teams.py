"""SCIM changes to teams: create, rename, membership (moves), delete."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import slugify

from accessreq.services import lifecycle
from audit.services import record
from portal.history import acting_as
from portal.models import Team
from scim.changes import GroupChanges
from scim.errors import invalid_value, not_found, uniqueness
from scim.models import ScimGroup, ScimToken
from scim.resources import (
    group_members,
    group_resource,
    link_of,
    scim_teams,
    scim_users,
)
from scim.services.common import check_version, event_data, system_actor


def _locked_team(team_id: str) -> Team:
    if not team_id.isdigit() or not scim_teams().filter(pk=int(team_id)).exists():
        raise not_found("Group", team_id)
    return (
        Team.objects.select_for_update(of=("self",))
        .select_related("scim_group")
        .get(pk=int(team_id))
    )


def _unique_slug(name: str) -> str:
    base = slugify(name)[:90] or "team"
    slug, n = base, 1
    while Team.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def _check_group_external_id(external_id: str, team: Team | None) -> None:
    if not external_id:
        return
    taken = ScimGroup.objects.filter(external_id=external_id)
    if team is not None:
        taken = taken.exclude(team=team)
    if taken.exists():
        raise uniqueness(f"externalId {external_id!r} belongs to another group.")


def _apply_members(*, team: Team, changes: GroupChanges, token: ScimToken, http: Any) -> bool:
    """Work out the members the operations leave, then move the people who join (from whatever
    team they were in) and those who leave (to no team), one ``person_move`` each."""
    if not changes.members:
        return False
    current = {str(pk) for pk in scim_users().filter(team=team).values_list("pk", flat=True)}
    target = set(current)
    for op, ids in changes.members:
        if op == "remove_all":
            target = set()
        elif op == "remove":
            target -= ids
        elif op == "replace":
            target = set(ids)
        else:
            target |= ids
    joining = target - current
    leaving = current - target
    numeric = [int(pk) for pk in joining if pk.isdigit()]
    people = {str(u.pk): u for u in scim_users().filter(pk__in=numeric).order_by("pk")}
    unknown = sorted(joining - set(people))
    if unknown:
        raise invalid_value(f"Unknown member id(s): {', '.join(unknown)}.")
    actor = system_actor()
    for person in people.values():
        lifecycle.person_move(user=person, actor=actor, source=token.source, team=team, http=http)
    for person in scim_users().filter(pk__in=[int(pk) for pk in leaving]).order_by("pk"):
        lifecycle.person_move(user=person, actor=actor, source=token.source, team=None, http=http)
    return bool(joining or leaving)


def _apply_group_attributes(
    *, team: Team, link: ScimGroup, changes: GroupChanges, token: ScimToken, http: Any
) -> bool:
    changed: dict[str, dict[str, Any]] = {}
    if changes.display_name is not None and changes.display_name != team.name:
        name = changes.display_name[:100]
        if Team.objects.filter(name__iexact=name).exclude(pk=team.pk).exists():
            raise uniqueness(f"A group named {name!r} exists already.")
        changed["displayName"] = {"before": team.name, "after": name}
        team.name = name
        with acting_as(system_actor()):
            team.save(update_fields=["name"])
    if changes.external_id is not None and changes.external_id != link.external_id:
        _check_group_external_id(changes.external_id[:255], team)
        changed["externalId"] = {"before": link.external_id, "after": changes.external_id[:255]}
        link.external_id = changes.external_id[:255]
    if not changed:
        return False
    link.updated_at = timezone.now()
    with acting_as(system_actor()):
        link.save()
    record(
        actor=system_actor(),
        action="scim.group.changed",
        target=team,
        data=event_data(token, changes=changed),
        request=http,
    )
    return True


@transaction.atomic
def scim_group_create(
    *, token: ScimToken, changes: GroupChanges, http: HttpRequest | None = None
) -> Team:
    """Create a team from a directory group, then move its members into it. A name taken by a
    team is refused with 409 (look it up with ``displayName eq`` to link it instead), unless the
    directory deleted that group before: then it is linked again."""
    if not changes.display_name:
        raise invalid_value("displayName is required.")
    name = changes.display_name[:100]
    actor = system_actor()
    existing = Team.objects.filter(name__iexact=name).first()
    if existing is not None:
        link = link_of(existing)
        if link is None or link.deleted_at is None:
            raise uniqueness(f"A group named {name!r} exists already.")
        link.deleted_at = None
        link.updated_at = timezone.now()
        with acting_as(actor):
            link.save()
        record(
            actor=actor,
            action="scim.group.created",
            target=existing,
            data=event_data(token, displayName=existing.name, relinked=True),
            request=http,
        )
        return scim_group_update(token=token, team_id=str(existing.pk), changes=changes, http=http)
    _check_group_external_id((changes.external_id or "")[:255], None)
    try:
        with transaction.atomic(), acting_as(actor):
            team = Team.objects.create(name=name, slug=_unique_slug(name))
            link = ScimGroup.objects.create(
                team=team, external_id=(changes.external_id or "")[:255]
            )
    except IntegrityError:
        raise uniqueness(f"A group named {name!r} exists already.") from None
    record(
        actor=actor,
        action="scim.group.created",
        target=team,
        data=event_data(token, displayName=name, externalId=link.external_id),
        request=http,
    )
    _apply_members(team=team, changes=changes, token=token, http=http)
    return team


@transaction.atomic
def scim_group_update(
    *,
    token: ScimToken,
    team_id: str,
    changes: GroupChanges,
    http: HttpRequest | None = None,
    if_match: str | None = None,
) -> Team:
    """Apply a PUT or PATCH to a team: rename it, change its externalId, move people in or out."""
    team = _locked_team(team_id)
    check_version(group_resource(team, members=group_members(team)), if_match)
    link = link_of(team) or ScimGroup(team=team)
    attributes = _apply_group_attributes(
        team=team, link=link, changes=changes, token=token, http=http
    )
    moved = _apply_members(team=team, changes=changes, token=token, http=http)
    if moved and not attributes:
        link.updated_at = timezone.now()
        with acting_as(system_actor()):
            link.save()
    return Team.objects.select_related("scim_group").get(pk=team.pk)


@transaction.atomic
def scim_group_delete(
    *, token: ScimToken, team_id: str, http: HttpRequest | None = None, if_match: str | None = None
) -> None:
    """DELETE: every member leaves the team (``person_move`` to no team); the team row stays
    (entitlements and reports refer to it) and is hidden from SCIM from now on."""
    team = _locked_team(team_id)
    check_version(group_resource(team, members=group_members(team)), if_match)
    moved = _apply_members(
        team=team, changes=GroupChanges(members=[("remove_all", set())]), token=token, http=http
    )
    actor = system_actor()
    clock = timezone.now()
    link = link_of(team) or ScimGroup(team=team)
    link.deleted_at = clock
    link.updated_at = clock
    with acting_as(actor):
        link.save()
    record(
        actor=actor,
        action="scim.group.deleted",
        target=team,
        data=event_data(token, displayName=team.name, members_removed=moved),
        request=http,
    )
