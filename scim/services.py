"""State changes a directory makes through SCIM: people and teams created, changed, moved,
deactivated and deleted.

Every function runs in one transaction, acts as the system actor with the SCIM token's name in
each event (``source`` is ``scim:<token name>``), and leaves joining, moving, leaving and
returning to ``accessreq.services.lifecycle``, which grants birthright access, flags grants for
review and revokes access. Attribute changes are audited here as ``user.changed``.

A person is in at most one team (``User.team``): adding them to a group moves them there from
their previous team; removing them from their team's group leaves them without one. Deleting a
person or a group is never an erasure: a deleted person has left (``person_leave``) and a
deleted group's members have no team any more; both rows stay for the audit trail and are hidden
from SCIM from then on (a later POST with the same userName or displayName links them again).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.text import slugify

from accessreq.services import lifecycle
from audit.services import record
from portal.history import acting_as
from portal.models import Team, User
from scim.changes import GroupChanges, UserChanges
from scim.errors import ScimError, invalid_value, not_found, uniqueness
from scim.models import ScimGroup, ScimIdentity, ScimToken
from scim.resources import (
    group_members,
    group_resource,
    identity_of,
    link_of,
    scim_teams,
    scim_users,
    user_resource,
)


def _actor() -> User:
    return User.objects.system_actor()


def _data(token: ScimToken, **extra: Any) -> dict[str, Any]:
    return {"source": token.source, "scim_token": token.name, "scim_token_id": token.pk, **extra}


def _check_version(resource: dict[str, Any], if_match: str | None) -> None:
    """RFC 7644 §3.14: a write with ``If-Match`` goes ahead only on the current version."""
    if not if_match:
        return
    wanted = {part.strip() for part in if_match.split(",")}
    current = resource["meta"]["version"]
    if "*" not in wanted and current not in wanted and current.removeprefix("W/") not in wanted:
        raise ScimError(412, f"The resource changed: its version is now {current}.")


# --- People ------------------------------------------------------------------------------------


def _locked_user(user_id: str) -> User:
    if not user_id.isdigit() or not scim_users().filter(pk=int(user_id)).exists():
        raise not_found("User", user_id)
    return (
        User.objects.select_for_update(of=("self",))
        .select_related("manager", "team", "team__scim_group", "scim_identity")
        .get(pk=int(user_id))
    )


def _user_name(value: str) -> str:
    email = value.strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise invalid_value(f"userName {value!r} is not an email address.") from None
    if len(email) > 254:
        raise invalid_value("userName is too long.")
    return email


def _manager(manager_id: str, user: User | None) -> User | None:
    if not manager_id:
        return None
    manager = scim_users().filter(pk=int(manager_id)).first() if manager_id.isdigit() else None
    if manager is None:
        raise invalid_value(f"manager {manager_id!r} is not a known user.")
    if user is not None and manager.pk == user.pk:
        raise invalid_value("A person cannot be their own manager.")
    return manager


def _check_external_id(external_id: str, user: User | None) -> None:
    if not external_id:
        return
    taken = ScimIdentity.objects.filter(external_id=external_id)
    if user is not None:
        taken = taken.exclude(user=user)
    if taken.exists():
        raise uniqueness(f"externalId {external_id!r} belongs to another user.")


def _joined(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def _new_display_name(changes: UserChanges, user: User, identity: ScimIdentity) -> str:
    """displayName wins, then name.formatted; a change of the name parts renames a person whose
    display name was made from them."""
    if changes.display_name:
        return changes.display_name[:150]
    if changes.formatted_name:
        return changes.formatted_name[:150]
    if changes.given_name is not None or changes.family_name is not None:
        before = _joined(identity.given_name, identity.family_name)
        if not user.display_name or user.display_name == before:
            given = identity.given_name if changes.given_name is None else changes.given_name
            family = identity.family_name if changes.family_name is None else changes.family_name
            return _joined(given, family)[:150] or user.display_name
    return user.display_name


_USER_FIELDS = {"email": "userName", "display_name": "displayName"}
# Field -> (its SCIM name in audit data, its length in ScimIdentity).
_IDENTITY_FIELDS = {
    "external_id": ("externalId", 255),
    "given_name": ("name.givenName", 150),
    "family_name": ("name.familyName", 150),
    "work_email": ("emails.work", 254),
    "department": ("department", 150),
}


def _apply_attributes(
    *,
    user: User,
    identity: ScimIdentity,
    changes: UserChanges,
    token: ScimToken,
    clock: datetime,
    http: HttpRequest | None,
) -> dict[str, dict[str, Any]]:
    """Set the plain attributes (no lifecycle meaning) and return what changed."""
    changed: dict[str, dict[str, Any]] = {}
    if changes.user_name is not None:
        email = _user_name(changes.user_name)
        if email != user.email:
            if User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists():
                raise uniqueness(f"userName {email!r} is taken.")
            changed["userName"] = {"before": user.email, "after": email}
            user.email = email
    display_name = _new_display_name(changes, user, identity)
    if display_name != user.display_name:
        changed["displayName"] = {"before": user.display_name, "after": display_name}
        user.display_name = display_name
    if changes.external_id is not None:
        _check_external_id(changes.external_id[:255], user)
    for field, (label, _) in _IDENTITY_FIELDS.items():
        value = getattr(changes, field)
        if value is None:
            continue
        value = value[: _IDENTITY_FIELDS[field][1]]
        if field == "work_email" and value:
            value = _user_name(value)
        if value != getattr(identity, field):
            changed[label] = {"before": getattr(identity, field), "after": value}
            setattr(identity, field, value)
    if changed:
        fields = [f for f, label in _USER_FIELDS.items() if label in changed]
        if fields:
            try:
                with transaction.atomic(), acting_as(_actor()):
                    user.save(update_fields=fields)
            except IntegrityError:
                raise uniqueness(f"userName {user.email!r} is taken.") from None
        identity.updated_at = clock
        with acting_as(_actor()):
            identity.save()
        record(
            actor=_actor(),
            action="user.changed",
            target=user,
            data=_data(token, changes=changed),
            request=http,
        )
    return changed


@transaction.atomic
def scim_user_create(
    *, token: ScimToken, changes: UserChanges, http: HttpRequest | None = None
) -> User:
    """Create a person from a directory: a human with no password (they sign in through SSO or
    set one with a reset), then ``person_join``. A userName someone already has is refused with
    409, unless the directory deleted that person before: then they are linked again and
    changed like a PUT (a rehire; ``person_return`` restores the account, not the access)."""
    if changes.user_name is None:
        raise invalid_value("userName is required.")
    email = _user_name(changes.user_name)
    existing = User.objects.filter(email__iexact=email).first()
    if existing is not None:
        identity = identity_of(existing)
        rehire = (
            identity is not None
            and identity.deleted_at is not None
            and existing.kind == User.Kind.HUMAN
            and not existing.is_superuser
        )
        if not rehire or identity is None:
            raise uniqueness(f"userName {email!r} is taken.")
        identity.deleted_at = None
        with acting_as(_actor()):
            identity.save(update_fields=["deleted_at"])
        record(
            actor=_actor(),
            action="scim.user.relinked",
            target=existing,
            data=_data(token, userName=email),
            request=http,
        )
        if changes.active is None:
            changes.active = True
        return scim_user_update(token=token, user_id=str(existing.pk), changes=changes, http=http)

    _check_external_id((changes.external_id or "")[:255], None)
    manager = _manager(changes.manager_id or "", None)
    identity = ScimIdentity(created_by_token=token)
    for field in _IDENTITY_FIELDS:
        value = getattr(changes, field) or ""
        setattr(identity, field, value[: _IDENTITY_FIELDS[field][1]])
    if identity.work_email:
        identity.work_email = _user_name(identity.work_email)
    display_name = (
        changes.display_name
        or changes.formatted_name
        or _joined(identity.given_name, identity.family_name)
        or email
    )[:150]
    actor = _actor()
    try:
        with transaction.atomic(), acting_as(actor):
            user = User.objects.create_user(
                email, None, display_name=display_name, manager=manager, kind=User.Kind.HUMAN
            )
            identity.user = user
            identity.save()
    except IntegrityError:
        raise uniqueness(f"userName {email!r} or that externalId is taken.") from None
    record(
        actor=actor,
        action="user.created",
        target=user,
        data=_data(
            token,
            userName=email,
            externalId=identity.external_id,
            manager_id=manager.pk if manager else None,
            department=identity.department,
        ),
        request=http,
    )
    lifecycle.person_join(user=user, actor=actor, source=token.source, http=http)
    if changes.active is False:
        lifecycle.person_leave(
            user=user,
            actor=actor,
            reason="created inactive in the directory",
            source=token.source,
            http=http,
        )
    return User.objects.get(pk=user.pk)


@transaction.atomic
def scim_user_update(
    *,
    token: ScimToken,
    user_id: str,
    changes: UserChanges,
    http: HttpRequest | None = None,
    if_match: str | None = None,
) -> User:
    """Apply a PUT or PATCH: ``active: true`` for someone inactive is ``person_return``; plain
    attributes are changed and audited; a new manager is ``person_move``; ``active: false`` is
    ``person_leave`` (in that order, so a returning person's changes land on an active account
    and a leaver's last changes are recorded before they go)."""
    user = _locked_user(user_id)
    _check_version(user_resource(user), if_match)
    identity = identity_of(user) or ScimIdentity(user=user, created_by_token=token)
    actor = _actor()
    clock = timezone.now()
    touched = False
    if changes.active is True and not user.is_active:
        lifecycle.person_return(user=user, actor=actor, source=token.source, http=http)
        user.refresh_from_db()
        touched = True
    if _apply_attributes(
        user=user, identity=identity, changes=changes, token=token, clock=clock, http=http
    ):
        touched = True
    if changes.manager_id is not None:
        manager = _manager(changes.manager_id, user)
        if (manager.pk if manager else None) != user.manager_id:
            lifecycle.person_move(
                user=user, actor=actor, source=token.source, manager=manager, http=http
            )
            user.refresh_from_db()
            touched = True
    if changes.active is False and user.is_active:
        lifecycle.person_leave(
            user=user,
            actor=actor,
            reason="deactivated in the directory",
            source=token.source,
            http=http,
        )
        touched = True
    if touched and identity.pk is not None and identity.updated_at != clock:
        identity.updated_at = clock
        with acting_as(actor):
            identity.save(update_fields=["updated_at"])
    return User.objects.select_related("manager", "team", "team__scim_group", "scim_identity").get(
        pk=user.pk
    )


@transaction.atomic
def scim_user_delete(
    *, token: ScimToken, user_id: str, http: HttpRequest | None = None, if_match: str | None = None
) -> None:
    """DELETE: the person leaves (``person_leave``: sessions ended, access revoked) and is hidden
    from SCIM from now on; the row stays, with its history and audit trail."""
    user = _locked_user(user_id)
    _check_version(user_resource(user), if_match)
    actor = _actor()
    if user.is_active:
        lifecycle.person_leave(
            user=user,
            actor=actor,
            reason="deleted in the directory",
            source=token.source,
            http=http,
        )
    clock = timezone.now()
    identity = identity_of(user) or ScimIdentity(user=user, created_by_token=token)
    identity.deleted_at = clock
    identity.updated_at = clock
    with acting_as(actor):
        identity.save()
    record(
        actor=actor,
        action="scim.user.deleted",
        target=user,
        data=_data(token, userName=user.email, externalId=identity.external_id),
        request=http,
    )


# --- Teams -------------------------------------------------------------------------------------


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
    actor = _actor()
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
        with acting_as(_actor()):
            team.save(update_fields=["name"])
    if changes.external_id is not None and changes.external_id != link.external_id:
        _check_group_external_id(changes.external_id[:255], team)
        changed["externalId"] = {"before": link.external_id, "after": changes.external_id[:255]}
        link.external_id = changes.external_id[:255]
    if not changed:
        return False
    link.updated_at = timezone.now()
    with acting_as(_actor()):
        link.save()
    record(
        actor=_actor(),
        action="scim.group.changed",
        target=team,
        data=_data(token, changes=changed),
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
    actor = _actor()
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
            data=_data(token, displayName=existing.name, relinked=True),
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
        data=_data(token, displayName=name, externalId=link.external_id),
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
    _check_version(group_resource(team, members=group_members(team)), if_match)
    link = link_of(team) or ScimGroup(team=team)
    attributes = _apply_group_attributes(
        team=team, link=link, changes=changes, token=token, http=http
    )
    moved = _apply_members(team=team, changes=changes, token=token, http=http)
    if moved and not attributes:
        link.updated_at = timezone.now()
        with acting_as(_actor()):
            link.save()
    return Team.objects.select_related("scim_group").get(pk=team.pk)


@transaction.atomic
def scim_group_delete(
    *, token: ScimToken, team_id: str, http: HttpRequest | None = None, if_match: str | None = None
) -> None:
    """DELETE: every member leaves the team (``person_move`` to no team); the team row stays
    (entitlements and reports refer to it) and is hidden from SCIM from now on."""
    team = _locked_team(team_id)
    _check_version(group_resource(team, members=group_members(team)), if_match)
    moved = _apply_members(
        team=team, changes=GroupChanges(members=[("remove_all", set())]), token=token, http=http
    )
    actor = _actor()
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
        data=_data(token, displayName=team.name, members_removed=moved),
        request=http,
    )
