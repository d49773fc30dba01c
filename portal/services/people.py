"""Changes to people: deactivation ends every session at once. The whole of offboarding (pending
requests, reviews, delegations, orphaned service accounts) is ``accessreq.services.lifecycle``;
this is its first step."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from audit.services import record
from portal.history import acting_as
from portal.models import Session, User


def user_sessions_end(*, user: User) -> int:
    """Delete every session of ``user``; returns how many were ended."""
    deleted, _ = Session.objects.filter(user_id=user.pk).delete()
    return deleted


@transaction.atomic
def user_deactivate(
    *, user: User, actor: User, reason: str = "", request: HttpRequest | None = None
) -> tuple[int, int]:
    """Deactivate ``user``, end their sessions (the next request they make is signed out) and
    revoke every grant they hold; returns how many sessions ended and grants were revoked."""
    locked = User.objects.select_for_update().get(pk=user.pk)
    was_active = locked.is_active
    locked.is_active = False
    with acting_as(actor):
        locked.save(update_fields=["is_active"])
    ended = user_sessions_end(user=locked)
    record(
        actor=actor,
        action="user.deactivated",
        target=locked,
        data={"reason": reason, "sessions_ended": ended, "was_active": was_active},
        request=request,
    )
    # Access checks already refuse a deactivated person; revoking also tells the connectors.
    from accessreq.services.grants import grants_revoke_for_person

    with acting_as(actor):
        revoked = grants_revoke_for_person(
            beneficiary=locked,
            actor=actor,
            reason=f"Account deactivated{': ' + reason if reason else ''}",
            http=request,
        )
    user.is_active = False
    return ended, revoked


@transaction.atomic
def user_set_employment_status(
    *, user: User, status: str, actor: User, request: HttpRequest | None = None
) -> None:
    """Record a change of employment status; ``left`` is a leaver's whole offboarding."""
    if status not in User.EmploymentStatus.values:
        raise ValueError(f"Unknown employment status {status!r}.")
    if status == User.EmploymentStatus.LEFT:
        from accessreq.services.lifecycle import person_leave

        person_leave(
            user=user,
            actor=actor,
            reason="left the organisation",
            source="portal",
            http=request,
        )
        return
    locked = User.objects.select_for_update().get(pk=user.pk)
    before = locked.employment_status
    if before == status:
        return
    locked.employment_status = status
    with acting_as(actor):
        locked.save(update_fields=["employment_status"])
    record(
        actor=actor,
        action="user.changed",
        target=locked,
        data={"employment_status": {"before": before, "after": status}},
        request=request,
    )
    user.employment_status = status
