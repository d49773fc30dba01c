"""Failed and refused attempts, from the ledger: failed sign-ins and second-factor codes, denied
requests and deployments, refused API tokens, token exchanges, authorizations and deployment
requests. The signed export carries these very events, checkable against the ledger's chain."""

from __future__ import annotations

from typing import Any, ClassVar

from django import forms
from django.db.models import Q, QuerySet

from accessreq.reports import common
from accessreq.reports.base import Column, Report, register
from accessreq.reports.forms import PeriodForm
from audit.actions import ACTIONS
from audit.models import AuditEvent

KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "sign-in": (
        "Failed sign-ins",
        ("auth.login.failed", "auth.sso.refused", "auth.sso.failed"),
    ),
    "mfa": ("Failed second-factor codes", ("auth.mfa.failed",)),
    "approvals": ("Denied requests and deployments", ("request.denied", "deployment.denied")),
    "api": (
        "Refused API calls",
        (
            "api.token.refused",
            "api.token.exchange_refused",
            "api.authorize.denied",
            "deployment.refused",
        ),
    ),
}
ATTEMPT_ACTIONS = tuple(action for _, actions in KINDS.values() for action in actions)
_KIND_OF = {action: label for label, actions in KINDS.values() for action in actions}
# Keys of an event's data that say why, in the order they are shown.
_REASON_KEYS = ("code", "reason", "message", "error", "comment")


class AttemptsForm(PeriodForm):
    kind = forms.ChoiceField(
        choices=[("", "All kinds"), *((key, label) for key, (label, _) in KINDS.items())],
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Events name people by actor, not by team or entitlement.
        for name in ("system", "environment", "tier", "team"):
            del self.fields[name]
        self.fields["person"].help_text = "Part of the actor's name or email address."


def _reason(data: Any) -> str:
    if not isinstance(data, dict):
        return ""
    parts = []
    for key in _REASON_KEYS:
        value = data.get(key)
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            value = ", ".join(str(item) for item in value)
        parts.append(str(value))
    return "; ".join(parts)


def _who(event: dict[str, Any]) -> str:
    data = event["data"]
    tried = data.get("email") if isinstance(data, dict) else None
    if tried and event["actor_kind"] == AuditEvent.ActorKind.ANONYMOUS:
        return f"{tried} (not signed in)"
    return str(event["actor_name"])


@register
class Attempts(Report):
    slug = "attempts"
    title = "Failed and refused attempts"
    summary = (
        "Failed sign-ins and MFA codes, denied requests and deployments, refused API tokens, "
        "token exchanges and authorization checks, from the ledger."
    )
    form_class = AttemptsForm
    columns: ClassVar[list[Column]] = [
        Column("sequence", "Event", 0.5, link="audit:event"),
        Column("at", "When", 1.0),
        Column("kind", "Kind", 1.2),
        Column("action", "What happened", 1.8),
        Column("actor", "Who", 1.5),
        Column("target", "On", 1.5),
        Column("reason", "Reason", 2.0),
        Column("ip", "Address", 0.8),
    ]

    fields = (
        "sequence",
        "occurred_at",
        "action",
        "actor_name",
        "actor_kind",
        "target_type",
        "target_id",
        "target_repr",
        "data",
        "ip",
    )

    def _actions(self) -> tuple[str, ...]:
        kind = self.params.get("kind")
        return KINDS[kind][1] if kind else ATTEMPT_ACTIONS

    def evidence_events(self) -> QuerySet[AuditEvent]:
        events = AuditEvent.objects.filter(
            action__in=self._actions(),
            occurred_at__gte=self.params["since"],
            occurred_at__lt=self.params["until"],
        )
        if text := (self.params.get("person") or "").strip():
            # A failed sign-in has no actor: the address tried is in its data.
            events = events.filter(Q(actor_name__icontains=text) | Q(data__email__icontains=text))
        return events

    def queryset(self) -> QuerySet[AuditEvent]:
        return self.evidence_events().order_by("sequence")

    def facts(self) -> list[tuple[str, str]]:
        facts = [
            ("From", common.utc(self.params["since"])),
            ("Before", common.utc(self.params["until"])),
        ]
        if self.params.get("kind"):
            facts.append(("Kind", KINDS[self.params["kind"]][0]))
        if self.params.get("person"):
            facts.append(("Who", self.params["person"]))
        return facts

    def cells(self, event: Any) -> list[Any]:
        target = event["target_repr"] or (
            f"{event['target_type']}:{event['target_id']}" if event["target_id"] else ""
        )
        return [
            event["sequence"],
            common.utc(event["occurred_at"]),
            _KIND_OF.get(event["action"], ""),
            ACTIONS.get(event["action"], event["action"]),
            _who(event),
            target,
            _reason(event["data"]),
            event["ip"] or "",
        ]
