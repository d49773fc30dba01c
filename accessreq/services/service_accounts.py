"""Service accounts: created by security admins, owned by people who request access and mint
tokens for them. A service account is a ``User`` of kind ``service`` that never signs in."""

from __future__ import annotations

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.http import HttpRequest

from accessreq.errors import NotAllowed, WorkflowError
from audit.services import record
from portal.history import acting_as
from portal.models import User
from portal.roles import is_security_admin

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}[a-z0-9]$")
EMAIL_DOMAIN = "service.invalid"  # RFC 2606: never a real mailbox


def _check_owners(owners: list[User]) -> None:
    if not owners:
        raise WorkflowError("Name at least one owner: someone must answer for the account.")
    for person in owners:
        if person.kind != User.Kind.HUMAN or not person.is_active:
            raise WorkflowError(f"{person} can't own a service account: owners are active people.")


@transaction.atomic
def service_account_create(
    *,
    actor: User,
    name: str,
    owners: list[User],
    description: str = "",
    http: HttpRequest | None = None,
) -> User:
    """Create a service account named ``name`` (lower-case letters, digits, hyphens) owned by
    ``owners``. Only security admins may; it gets no password, so it can never sign in."""
    if not (is_security_admin(actor) and actor.is_active):
        raise NotAllowed("No such page.")
    name = name.strip().lower()
    if not NAME.match(name):
        raise WorkflowError(
            "Name it with 3 to 64 lower-case letters, digits and hyphens, e.g. payments-deployer."
        )
    _check_owners(owners)
    account = User(email=f"{name}@{EMAIL_DOMAIN}", display_name=name, kind=User.Kind.SERVICE)
    account.set_unusable_password()
    try:
        with transaction.atomic(), acting_as(actor):
            account.save()
    except IntegrityError:
        raise WorkflowError(f"A service account named {name} already exists.") from None
    account.owners.set(owners)
    record(
        actor=actor,
        action="service_account.created",
        target=account,
        data={
            "name": name,
            "owners": sorted(person.email for person in owners),
            "description": description.strip()[:200],
        },
        request=http,
    )
    return account


@transaction.atomic
def service_account_set_owners(
    *, actor: User, account_id: int, owners: list[User], http: HttpRequest | None = None
) -> User:
    """Replace the owners of a service account. Security admins and its current owners may;
    nobody can leave it without an owner."""
    account = User.objects.select_for_update().filter(pk=account_id, kind=User.Kind.SERVICE).first()
    if account is None:
        raise NotAllowed("No such service account.")
    current = list(account.owners.all())
    owns = actor in current and actor.is_active
    if not (owns or (is_security_admin(actor) and actor.is_active)):
        raise NotAllowed("No such service account.")
    _check_owners(owners)
    before = sorted(person.email for person in current)
    after = sorted(person.email for person in owners)
    if before == after:
        return account
    account.owners.set(owners)
    data: dict[str, Any] = {"from": before, "to": after}
    record(
        actor=actor,
        action="service_account.owners_changed",
        target=account,
        data=data,
        request=http,
    )
    return account
