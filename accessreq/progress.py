"""Where a request stands in its approval chain, as the pages show it (from rows in memory)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accessreq.models import AccessRequest, Approval, ApproverRule, Decision
from accessreq.states import RequestState

# Rule names short enough for a table cell; the full label is in the title and on the detail page.
SHORT_RULE_LABELS: dict[str, str] = {
    ApproverRule.MANAGER: "Manager",
    ApproverRule.ENTITLEMENT_OWNER: "Entitlement owner",
    ApproverRule.SYSTEM_OWNER: "System owner",
    ApproverRule.OWNER_OR_MANAGER: "Owner or manager",
    ApproverRule.SECURITY_ADMIN: "Security admin",
}
_APPROVED_STATES = frozenset(
    {RequestState.APPROVED, RequestState.ACTIVE, RequestState.EXPIRED, RequestState.REVOKED}
)


@dataclass
class StageView:
    """One approval stage of a request as the pages show it."""

    position: int
    rule: str
    label: str
    quorum: int
    step_up: bool
    approvals: int = 0
    status: str = "waiting"  # done, current, denied, stopped, waiting, unreached
    asked: list[Any] = field(default_factory=list)
    decisions: list[Approval] = field(default_factory=list)

    @property
    def short_label(self) -> str:
        return SHORT_RULE_LABELS.get(self.rule, self.label)

    @property
    def status_label(self) -> str:
        return {
            "done": "approved",
            "current": "waiting for a decision",
            "denied": "denied",
            "stopped": "stopped here",
            "waiting": "not reached yet",
            "unreached": "not reached",
        }[self.status]


@dataclass
class Progress:
    stages: list[StageView]

    @property
    def done(self) -> int:
        return sum(1 for stage in self.stages if stage.status == "done")

    @property
    def total(self) -> int:
        return len(self.stages)


def stage_progress(access_request: AccessRequest, approvals: list[Approval]) -> Progress:
    """Each frozen stage with its approvals and where the request stands, from rows in memory."""
    state = access_request.state
    stages = []
    for stage in access_request.stages:
        position = int(stage["position"])
        view = StageView(
            position=position,
            rule=str(stage.get("rule", "")),
            label=str(stage.get("rule_label") or stage.get("rule", "")),
            quorum=int(stage.get("quorum", 1)),
            step_up=bool(stage.get("step_up")),
        )
        view.decisions = [a for a in approvals if a.stage == position]
        view.approvals = sum(1 for a in view.decisions if a.decision == Decision.APPROVE)
        denied = any(a.decision == Decision.DENY for a in view.decisions)
        if state in _APPROVED_STATES or position < access_request.current_stage:
            view.status = "done"
        elif denied:
            view.status = "denied"
        elif position == access_request.current_stage:
            view.status = "current" if state == RequestState.PENDING else "stopped"
        elif state != RequestState.PENDING:
            view.status = "unreached"
        stages.append(view)
    return Progress(stages)
