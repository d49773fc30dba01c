"""SCIM changes to people: create (join), update (attributes, move, leave, return), delete."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from accessreq.services import lifecycle
from audit.services import record
from portal.history import acting_as
from portal.models import User
from scim.changes import UserChanges
from scim.errors import invalid_value, not_found, uniqueness
from scim.models import ScimIdentity, ScimToken
from scim.resources import (
    identity_of,
    scim_users,
    user_resource,
)
from scim.services.common import check_version, event_data, system_actor


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
                with transaction.atomic(), acting_as(system_actor()):
                    user.save(update_fields=fields)
            except IntegrityError:
                raise uniqueness(f"userName {user.email!r} is taken.") from None
        identity.updated_at = clock
        with acting_as(system_actor()):
            identity.save()
        record(
            actor=system_actor(),
            action="user.changed",
            target=user,
            data=event_data(token, changes=changed),
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
        with acting_as(system_actor()):
            identity.save(update_fields=["deleted_at"])
        record(
            actor=system_actor(),
            action="scim.user.relinked",
            target=existing,
            data=event_data(token, userName=email),
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
    actor = system_actor()
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
        data=event_data(
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
    check_version(user_resource(user), if_match)
    identity = identity_of(user) or ScimIdentity(user=user, created_by_token=token)
    actor = system_actor()
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
    check_version(user_resource(user), if_match)
    actor = system_actor()
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
        data=event_data(token, userName=user.email, externalId=identity.external_id),
        request=http,
    )
