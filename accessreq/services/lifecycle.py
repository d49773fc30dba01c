"""Joiners, movers and leavers: what a person's access does when the directory (SCIM), single
sign-on or the admin site says they joined, changed team or manager, left, or came back; and
people who stopped signing in.

- A joiner gets nothing unless their team has birthright access (granted by the system actor).
- A mover's grants go to their new manager in a one-off review campaign, and their pending
  requests are asked again of whoever the policy names now.
- A leaver's pending requests are withdrawn, their sessions ended and grants revoked through the
  connectors, their delegations cancelled, the approvals and reviews waiting for them handed on,
  and the tokens of service accounts only they owned flagged: all in one transaction, each step
  its own audit event, with a ``person.left`` event that counts them.

Each function locks the person's row first, so two directory pushes for one person (a retry, or
SCIM and the admin site at once) run one after the other, and the second finds nothing to do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse

from accessreq.errors import WorkflowError
from accessreq.models import (
    LIVE_GRANT_STATES,
    AccessRequest,
    BirthrightAccess,
    CampaignTemplate,
    DeadlineAction,
    Grant,
    GrantState,
    RequestState,
    ReviewerRule,
)
from accessreq.services.common import now
from accessreq.services.notifications import notify
from audit.services import record
from portal.history import acting_as
from portal.models import Team, User

MOVER_TEMPLATE = "Team or manager change"


class _Unchanged:
    def __repr__(self) -> str:
        return "UNCHANGED"


UNCHANGED: Any = _Unchanged()
"""``person_move``'s default for a field the caller does not change."""


def _lock(user: User, *, people_only: bool = True) -> User:
    locked = (
        User.objects.select_for_update(of=("self",))
        .select_related("team", "manager")
        .get(pk=user.pk)
    )
    if people_only and locked.kind != User.Kind.HUMAN:
        raise WorkflowError(f"{locked} is not a person; the identity lifecycle is for people.")
    return locked


def _name(obj: Any) -> str | None:
    return str(obj) if obj is not None else None


# --- Joiners -----------------------------------------------------------------------------------


def _birthright(person: User) -> list[int]:
    """Grant the birthright access of ``person``'s team; the ids of the grants made."""
    if person.team_id is None or not person.is_active:
        return []
    from accessreq.services.grants import grant_birthright

    made = []
    rows = BirthrightAccess.objects.filter(team_id=person.team_id).select_related(
        "entitlement__system", "entitlement__environment", "team"
    )
    for row in rows.order_by("pk"):
        grant = grant_birthright(
            beneficiary=person,
            entitlement=row.entitlement,
            duration=row.duration,
            team_name=row.team.name,
        )
        if grant is not None:
            made.append(grant.pk)
    return made


@transaction.atomic
def person_join(*, user: User, actor: User, source: str, http: HttpRequest | None = None) -> None:
    """Record that a new person's row was created (by SCIM, single sign-on or the admin site) and
    give them their team's birthright access, if it has any; nothing else by default."""
    person = _lock(user)
    grants = _birthright(person)
    record(
        actor=actor,
        action="person.joined",
        target=person,
        data={
            "source": source,
            "email": person.email,
            "team": _name(person.team),
            "manager": _name(person.manager),
            "birthright_grants": grants,
        },
        request=http,
    )


# --- Movers ------------------------------------------------------------------------------------


def mover_template() -> CampaignTemplate | None:
    """The template of movers' reviews, made on first use (editable in the admin: its duration,
    reminders and deadline action apply). Never scheduled. ``None`` while there is no security
    admin to fall back on."""
    template = CampaignTemplate.objects.filter(name=MOVER_TEMPLATE).first()
    if template is not None:
        return template
    from accessreq.policy import security_admins

    admins = security_admins()
    if not admins:
        return None
    template, _ = CampaignTemplate.objects.get_or_create(
        name=MOVER_TEMPLATE,
        defaults={
            "description": "One-off reviews of a person's access by their new manager after a "
            "change of team or manager. Launched by the identity lifecycle, never on a schedule.",
            "reviewer_rule": ReviewerRule.MANAGER,
            "fallback_reviewer": admins[0],
            "owner": admins[0],
            "duration_days": settings.MOVER_REVIEW_DAYS,
            "deadline_action": DeadlineAction.REVOKE,
            "is_active": False,
        },
    )
    return template


def _mover_review(person: User, *, actor: User, at: datetime) -> int | None:
    """Open a review of everything ``person`` holds by their (new) manager; the campaign id."""
    grants = list(
        Grant.objects.filter(
            beneficiary=person,
            state=GrantState.ACTIVE,
            revoked_at__isnull=True,
            starts_at__lte=at,
            expires_at__gt=at,
        )
        .select_related("beneficiary__team", "entitlement__system", "entitlement__environment")
        .order_by("pk")
    )
    if not grants:
        return None
    template = mover_template()
    if template is None:
        return None
    from accessreq.services.campaigns import campaign_launch_for_grants

    campaign = campaign_launch_for_grants(
        template=template,
        period=f"#{person.pk} {at:%Y-%m-%d %H:%M:%S}",
        grants=grants,
        actor=actor,
        at=at,
    )
    return campaign.pk


def _reroute(request_ids: list[int], *, actor: User, why: str, http: HttpRequest | None) -> int:
    from accessreq.services.requests import request_reroute

    return sum(
        request_reroute(actor=actor, request_id=pk, why=why, http=http) for pk in request_ids
    )


@transaction.atomic
def person_move(
    *,
    user: User,
    actor: User,
    source: str,
    team: Team | None = UNCHANGED,
    manager: User | None = UNCHANGED,
    http: HttpRequest | None = None,
) -> bool:
    """Change ``user``'s team and/or manager. What they hold goes to a review by their new
    manager, pending requests about them are asked of whoever the policy now names, and a new
    team's birthright access is granted. Returns whether anything changed."""
    person = _lock(user)
    changes: dict[str, dict[str, str | None]] = {}
    fields = []
    if team is not UNCHANGED and (team.pk if team else None) != person.team_id:
        changes["team"] = {"before": _name(person.team), "after": _name(team)}
        person.team = team
        fields.append("team")
    if manager is not UNCHANGED and (manager.pk if manager else None) != person.manager_id:
        if manager is not None and manager.pk == person.pk:
            raise WorkflowError("A person can't be their own manager.")
        changes["manager"] = {"before": _name(person.manager), "after": _name(manager)}
        person.manager = manager
        fields.append("manager")
    if not changes:
        return False
    with acting_as(actor):
        person.save(update_fields=fields)
    clock = now()
    review = _mover_review(person, actor=actor, at=clock)
    pending = list(
        AccessRequest.objects.filter(state=RequestState.PENDING)
        .filter(Q(beneficiary=person) | Q(requester=person))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    rerouted = _reroute(pending, actor=actor, why=f"{person} changed team or manager", http=http)
    grants = _birthright(person) if "team" in changes else []
    record(
        actor=actor,
        action="person.moved",
        target=person,
        data={
            "source": source,
            **changes,
            "review_campaign_id": review,
            "requests_rerouted": rerouted,
            "birthright_grants": grants,
        },
        request=http,
    )
    for field in fields:
        setattr(user, field, getattr(person, field))
    return True


# --- Leavers -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offboarded:
    """What offboarding one person did (each is also its own audit event)."""

    requests_withdrawn: int = 0
    sessions_ended: int = 0
    grants_revoked: int = 0
    delegations_cancelled: int = 0
    requests_rerouted: int = 0
    reviews_reassigned: int = 0
    tokens_flagged: int = 0


def _offboard(person: User, *, actor: User, reason: str, http: HttpRequest | None) -> Offboarded:
    """Everything but the employment status: the deactivated (or departed) person can do
    nothing, holds nothing, and nobody waits for them."""
    from accessreq.services.campaigns import items_reassign_from
    from accessreq.services.delegation import delegations_cancel_for
    from accessreq.services.requests import requests_withdraw_for_leaver
    from accessreq.services.tokens import tokens_flag_orphaned
    from portal.services.people import user_deactivate

    withdrawn = requests_withdraw_for_leaver(person=person, actor=actor, reason=reason, http=http)
    ended, revoked = user_deactivate(user=person, actor=actor, reason=reason, request=http)
    delegations = delegations_cancel_for(
        person=person, actor=actor, reason=f"{person} left", http=http
    )
    waiting = list(
        AccessRequest.objects.filter(
            state=RequestState.PENDING,
            assignments__principal=person,
            assignments__stage=F("current_stage"),
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    rerouted = _reroute(waiting, actor=actor, why=f"{person} can no longer decide", http=http)
    from accessreq.services.deployments import deployments_reroute_from

    rerouted += deployments_reroute_from(person=person, actor=actor)
    reviews = items_reassign_from(
        person=person, actor=actor, reason=f"{person} can no longer review ({reason})"
    )
    flagged = tokens_flag_orphaned(leaver=person, actor=actor, http=http)
    return Offboarded(withdrawn, ended, revoked, delegations, rerouted, reviews, flagged)


@transaction.atomic
def person_deactivate(
    *, user: User, actor: User, reason: str, source: str, http: HttpRequest | None = None
) -> Offboarded:
    """Deactivate an account without saying the person left (an investigation, a long leave):
    the same offboarding as a leaver's. Service accounts too."""
    person = _lock(user, people_only=False)
    done = _offboard(person, actor=actor, reason=reason, http=http)
    user.is_active = False
    return done


@transaction.atomic
def person_leave(
    *, user: User, actor: User, reason: str, source: str, http: HttpRequest | None = None
) -> Offboarded:
    """``user`` left the organisation: marked left, then offboarded. Safe to repeat: someone who
    already left and holds nothing gets no new events."""
    person = _lock(user)
    before = person.employment_status
    if before == User.EmploymentStatus.LEFT and not person.is_active:
        live = Grant.objects.filter(beneficiary=person, state__in=LIVE_GRANT_STATES).exists()
        if not live:
            return Offboarded()
    if before != User.EmploymentStatus.LEFT:
        person.employment_status = User.EmploymentStatus.LEFT
        with acting_as(actor):
            person.save(update_fields=["employment_status"])
    done = _offboard(person, actor=actor, reason=reason, http=http)
    record(
        actor=actor,
        action="person.left",
        target=person,
        data={
            "source": source,
            "reason": reason,
            "employment_status": {"before": before, "after": User.EmploymentStatus.LEFT},
            **asdict(done),
        },
        request=http,
    )
    if person.manager is not None and person.manager.is_active:
        notify(
            key=f"person:{person.pk}:left:{now():%Y%m%d%H%M}",
            recipient=person.manager,
            subject=f"{person} has left: access removed",
            lines=[
                f"{person} was marked as having left ({reason}).",
                f"Revoked {done.grants_revoked} grant(s), withdrew {done.requests_withdrawn} "
                f"pending request(s), handed on {done.reviews_reassigned} review(s).",
            ],
            path=reverse("home"),
        )
    user.employment_status = User.EmploymentStatus.LEFT
    user.is_active = False
    return done


@transaction.atomic
def person_return(*, user: User, actor: User, source: str, http: HttpRequest | None = None) -> bool:
    """Someone who left (or was deactivated) is active again: they can sign in, and get their
    team's birthright access like a joiner; nothing they held before comes back. Returns whether
    anything changed."""
    person = _lock(user)
    if person.is_active and person.employment_status == User.EmploymentStatus.ACTIVE:
        return False
    before = {"is_active": person.is_active, "employment_status": person.employment_status}
    person.is_active = True
    person.employment_status = User.EmploymentStatus.ACTIVE
    person.inactive_since = None
    person.access_suspended_at = None
    with acting_as(actor):
        person.save(
            update_fields=[
                "is_active",
                "employment_status",
                "inactive_since",
                "access_suspended_at",
            ]
        )
    grants = _birthright(person)
    record(
        actor=actor,
        action="person.returned",
        target=person,
        data={"source": source, "before": before, "birthright_grants": grants},
        request=http,
    )
    user.is_active = True
    user.employment_status = User.EmploymentStatus.ACTIVE
    return True


# --- Inactivity --------------------------------------------------------------------------------


def _last_seen() -> Any:
    return Coalesce("last_login", "date_joined")


def people_inactivity_sweep(*, at: datetime | None = None, limit: int = 1000) -> dict[str, int]:
    """Flag active people who have not signed in for ``INACTIVITY_FLAG_DAYS`` and tell their
    manager; when ``INACTIVITY_SUSPEND_DAYS`` is set, revoke the access of those gone that long
    too. Once per person until they sign in again (which clears both marks)."""
    clock = at or now()
    system = User.objects.system_actor()
    people = User.objects.filter(kind=User.Kind.HUMAN, is_active=True).annotate(seen=_last_seen())
    counts = {"flagged": 0, "suspended": 0}
    if settings.INACTIVITY_FLAG_DAYS:
        cutoff = clock - timedelta(days=settings.INACTIVITY_FLAG_DAYS)
        for pk in people.filter(inactive_since__isnull=True, seen__lt=cutoff).values_list(
            "pk", flat=True
        )[:limit]:
            counts["flagged"] += _flag_inactive(pk, actor=system, at=clock, cutoff=cutoff)
    if settings.INACTIVITY_SUSPEND_DAYS:
        cutoff = clock - timedelta(days=settings.INACTIVITY_SUSPEND_DAYS)
        for pk in people.filter(access_suspended_at__isnull=True, seen__lt=cutoff).values_list(
            "pk", flat=True
        )[:limit]:
            counts["suspended"] += _suspend_inactive(pk, actor=system, at=clock, cutoff=cutoff)
    return counts


def _still_inactive(pk: int, cutoff: datetime) -> User | None:
    """The person, locked, if they are still active and still have not signed in since."""
    return (
        User.objects.select_for_update(of=("self",))
        .select_related("manager")
        .annotate(seen=_last_seen())
        .filter(pk=pk, is_active=True, seen__lt=cutoff)
        .first()
    )


@transaction.atomic
def _flag_inactive(pk: int, *, actor: User, at: datetime, cutoff: datetime) -> int:
    person = _still_inactive(pk, cutoff)
    if person is None or person.inactive_since is not None:
        return 0
    person.inactive_since = at
    person.save(update_fields=["inactive_since"])
    days = settings.INACTIVITY_FLAG_DAYS
    record(
        actor=actor,
        action="person.inactive",
        target=person,
        data={
            "days": days,
            "last_login": person.last_login.isoformat() if person.last_login else None,
        },
    )
    if person.manager is not None and person.manager.is_active:
        notify(
            key=f"person:{person.pk}:inactive:{at:%Y%m%d}",
            recipient=person.manager,
            subject=f"{person} has not signed in for {days} days",
            lines=[
                f"{person} has not signed in to Gatehouse for {days} days.",
                "If they left or no longer need their access, tell the security team.",
            ],
            path=reverse("home"),
        )
    return 1


@transaction.atomic
def _suspend_inactive(pk: int, *, actor: User, at: datetime, cutoff: datetime) -> int:
    person = _still_inactive(pk, cutoff)
    if person is None or person.access_suspended_at is not None:
        return 0
    from accessreq.services.grants import grants_revoke_for_person

    days = settings.INACTIVITY_SUSPEND_DAYS
    reason = f"Suspended: no sign-in for {days} days"
    revoked = grants_revoke_for_person(beneficiary=person, actor=actor, reason=reason)
    person.access_suspended_at = at
    person.inactive_since = person.inactive_since or at
    person.save(update_fields=["access_suspended_at", "inactive_since"])
    record(
        actor=actor,
        action="person.access_suspended",
        target=person,
        data={"days": days, "grants_revoked": revoked},
    )
    for recipient in {person.manager, person} - {None}:
        if recipient is not None and recipient.is_active:
            notify(
                key=f"person:{person.pk}:suspended:{recipient.pk}:{at:%Y%m%d}",
                recipient=recipient,
                subject=f"Access suspended: {person} has not signed in for {days} days",
                lines=[
                    f"{person} has not signed in for {days} days, so {revoked} grant(s) were "
                    "revoked. Request access again when it is needed.",
                ],
                path=reverse("my_access"),
            )
    return 1


def person_seen(user: User) -> None:
    """At sign-in: clear the inactivity marks (access that was suspended is not restored)."""
    if user.inactive_since is None and user.access_suspended_at is None:
        return
    with transaction.atomic():
        updated = User.objects.filter(pk=user.pk).update(
            inactive_since=None, access_suspended_at=None
        )
        if updated:
            record(actor=user, action="person.active_again", target=user, data={})
    user.inactive_since = user.access_suspended_at = None
