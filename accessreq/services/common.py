"""Helpers the workflow services share: the clock, MFA context and the state-table check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from accessreq.models import AccessRequest
from accessreq.states import RequestState, check_transition
from audit.services import database_now, record


def now() -> datetime:
    """The database clock: expiry and start times are compared with the clock grants are read by."""
    return database_now()


@dataclass(frozen=True)
class MfaContext:
    """How and how long ago the acting person last verified a second factor."""

    method: str = ""
    age_seconds: int | None = None

    @classmethod
    def from_request(cls, http: HttpRequest | None) -> MfaContext:
        if http is None:
            return cls()
        from portal.services.mfa import mfa_verified_age

        age = mfa_verified_age(http)
        method = http.session.get("mfa_method", "") if hasattr(http, "session") else ""
        return cls(method=method, age_seconds=None if age is None else int(age))

    @property
    def fresh(self) -> bool:
        return self.age_seconds is not None and self.age_seconds <= settings.MFA_STEP_UP_SECONDS

    def as_data(self) -> dict[str, Any]:
        return {"mfa_method": self.method, "mfa_age_seconds": self.age_seconds}


def move(
    access_request: AccessRequest,
    target: str,
    *,
    actor: Any,
    data: dict[str, Any] | None = None,
    http: HttpRequest | None = None,
    action: str | None = None,
) -> None:
    """Move a (locked) request to ``target`` along the state table and record the transition."""
    transition = check_transition(access_request.state, target)
    source = access_request.state
    access_request.state = RequestState(target)
    access_request.save()
    record(
        actor=actor,
        action=action or transition.action,
        target=access_request,
        data={
            "from": source,
            "to": target,
            "entitlement": str(access_request.entitlement),
            "beneficiary": str(access_request.beneficiary),
            "beneficiary_id": access_request.beneficiary_id,
            "requester_id": access_request.requester_id,
            **(data or {}),
        },
        request=http,
    )
