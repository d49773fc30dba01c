"""``approval-chain``: who must approve, stage by stage, drawn from the current policies.

The stages come from :func:`accessreq.policy.stages_for` itself (called with an unsaved
entitlement of the tier, or with an overriding policy), so the drawing uses the very code that
freezes stages into a new request and cannot show a chain that requests don't get.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accessreq.models import (
    ApprovalPolicy,
    Entitlement,
    Environment,
    RiskTier,
)
from accessreq.policy import stages_for
from docs.diagrams import mermaid
from docs.diagrams.base import (
    MARGIN,
    TIER_ORDER,
    Choice,
    UnknownArgument,
    document,
    drawn_at,
    heading,
    heading_width,
    ordered_environments,
    tier_label,
)
from docs.diagrams.svg import (
    INK,
    MUTED,
    PAPER,
    RULE,
    SHADE,
    SHADE_DARK,
    Canvas,
    text_width,
    widest,
    wrap,
)

BODY = 13.0
RULE_SIZE = 14.0
LINE_H = 17.0
BOX_MIN = 132.0
BOX_WRAP = 150.0
ARROW = 38.0


@dataclass
class Chain:
    """One row: a heading, notes, and the stages a request passes."""

    key: str
    heading: str
    notes: list[str]
    stages: list[dict[str, Any]]
    tier: str = ""
    default_used: bool = False
    extra: dict[str, str] = field(default_factory=dict)


def _quorum(quorum: int) -> str:
    return "1 approval" if quorum == 1 else f"{quorum} approvals, different people"


def _policy_source(policy: ApprovalPolicy | None, tier: str) -> tuple[str, bool]:
    """Which policy a tier's requests use, in words, and whether the built-in default applies."""
    if policy is None:
        return f"No policy for the {tier.lower()} tier: the built-in default applies.", True
    if not policy.stages.all():
        return f"Policy “{policy.name}” has no stages: the built-in default applies.", True
    return f"Policy “{policy.name}”", False


def _tier_chain(tier: str, environments: list[Environment], policy: ApprovalPolicy | None) -> Chain:
    label = tier_label(tier)
    probe = Entitlement(environment=Environment(risk_tier=tier), policy=None)
    stages = stages_for(probe)
    source, default_used = _policy_source(policy, label)
    names = ", ".join(env.name for env in environments)
    used = f"Environments: {names}" if names else "No environment has this tier yet"
    return Chain(
        key=f"tier-{tier}",
        heading=f"{label} tier",
        notes=[f"{source} · {used}"],
        stages=stages,
        tier=tier,
        default_used=default_used,
    )


def _tier_policies() -> dict[str, ApprovalPolicy]:
    return {
        str(p.tier): p
        for p in ApprovalPolicy.objects.filter(tier__isnull=False).prefetch_related("stages")
    }


def choices() -> list[Choice]:
    tiers = [Choice(str(t), f"{tier_label(t)} tier", "Tier") for t in TIER_ORDER]
    envs = [
        Choice(env.slug, f"{env.name} ({tier_label(env.risk_tier).lower()})", "Environment")
        for env in ordered_environments()
    ]
    return tiers + envs


@dataclass
class Plan:
    title: str
    subtitle: str
    chains: list[Chain]
    footnotes: list[str]
    description: str


def _plan(argument: str) -> Plan:
    policies = _tier_policies()
    environments = ordered_environments()
    by_tier: dict[str, list[Environment]] = {t: [] for t in TIER_ORDER}
    for env in environments:
        by_tier.setdefault(env.risk_tier, []).append(env)
    rules = (
        "A stage opens when the one before it is approved; one denial ends the request. Nobody "
        "approves their own request, and a stage left with nobody to ask goes to the security "
        "admins."
    )
    if not argument:
        chains = [_tier_chain(t, by_tier[t], policies.get(t)) for t in TIER_ORDER]
        return Plan(
            "Approval chain by risk tier",
            f"From the approval policies as they are now · {drawn_at()}",
            chains,
            [rules, "Entitlements with their own policy: choose an environment to see them."],
            "Approval stages for each risk tier.",
        )
    if argument in RiskTier.values:
        chain = _tier_chain(argument, by_tier.get(argument, []), policies.get(argument))
        return Plan(
            f"Approval chain: {tier_label(argument).lower()} tier",
            f"From the approval policies as they are now · {drawn_at()}",
            [chain],
            [rules],
            f"Approval stages for the {argument} tier.",
        )
    chosen = next((e for e in environments if e.slug == argument), None)
    if chosen is None:
        known = ", ".join([*RiskTier.values, *(e.slug for e in environments)])
        raise UnknownArgument(
            f"There is no risk tier or environment called “{argument}”. Choose one of: {known}."
        )
    return _environment_plan(chosen, policies.get(chosen.risk_tier), rules)


def _environment_plan(env: Environment, policy: ApprovalPolicy | None, rules: str) -> Plan:
    tier_name = tier_label(env.risk_tier)
    active = list(
        Entitlement.objects.filter(environment=env, is_active=True)
        .select_related("system", "policy")
        .prefetch_related("policy__stages")
        .order_by("system__name", "name")
    )
    tier_chain = _tier_chain(env.risk_tier, [env], policy)
    own = [e for e in active if e.policy_id]
    tier_users = len(active) - len(own)
    source, _default = _policy_source(policy, tier_name)
    tier_chain.heading = f"{env.name}: {tier_name.lower()} tier"
    tier_chain.notes = [
        f"{source} · used by {tier_users} of the {len(active)} active entitlements in {env.name}"
    ]
    chains = [tier_chain]
    overrides: dict[int, list[Entitlement]] = {}
    for ent in own:
        overrides.setdefault(ent.policy_id or 0, []).append(ent)
    for policy_id, ents in overrides.items():
        override = ents[0].policy
        assert override is not None
        probe = Entitlement(environment=env, policy=override)
        names = ", ".join(f"{e.system.name} / {e.name}" for e in ents)
        has_stages = bool(override.stages.all())
        note = "" if has_stages else " (no stages: the built-in default applies)"
        chains.append(
            Chain(
                key=f"policy-{policy_id}",
                heading=f"Own policy “{override.name}”{note}",
                notes=[f"Used instead of the tier policy by: {names}"],
                stages=stages_for(probe),
                default_used=not has_stages,
            )
        )
    footnotes = [rules]
    if not own:
        footnotes.insert(0, f"No entitlement in {env.name} has its own policy.")
    emergency = [e for e in active if e.emergency_capable]
    if emergency:
        names = ", ".join(f"{e.system.name} / {e.name}" for e in emergency)
        footnotes.append(
            f"Break-glass: people on call may take {len(emergency)} of these at once, without "
            f"approval ({names}); the approvers above review each use afterwards."
        )
    return Plan(
        f"Approval chain: {env.name}",
        f"Environment {env.name} ({tier_name.lower()} tier), from the approval policies as they "
        f"are now · {drawn_at()}",
        chains,
        footnotes,
        f"Approval stages for requests in {env.name}.",
    )


# --- Drawing ---------------------------------------------------------------------------------


@dataclass
class _Box:
    kind: str  # "request", "stage", "granted"
    width: float
    lines: list[tuple[str, float, bool, str]]  # text, size, bold, colour
    step_up: bool = False


def _boxes(chain: Chain) -> list[_Box]:
    boxes = [
        _Box("request", 0, [("Request", RULE_SIZE, True, INK), ("submitted", BODY, False, MUTED)])
    ]
    for stage in chain.stages:
        lines: list[tuple[str, float, bool, str]] = [
            (f"Stage {stage['position']}", BODY, False, MUTED)
        ]
        lines += [
            (line, RULE_SIZE, True, INK)
            for line in wrap(stage["rule_label"], BOX_WRAP, RULE_SIZE, bold=True, max_lines=3)
        ]
        lines.append((_quorum(stage["quorum"]), BODY, False, INK))
        boxes.append(_Box("stage", 0, lines, step_up=bool(stage["step_up"])))
    boxes.append(
        _Box("granted", 0, [("Access", RULE_SIZE, True, INK), ("granted", RULE_SIZE, True, INK)])
    )
    for box in boxes:
        widths = [text_width(t, s, bold=b) for t, s, b, _c in box.lines]
        if box.step_up:
            widths.append(16 + text_width("step-up MFA", BODY, bold=True))
        box.width = max(max(widths) + 26, BOX_MIN if box.kind == "stage" else 96)
    return boxes


def _box_height(box: _Box) -> float:
    return len(box.lines) * LINE_H + (LINE_H + 2 if box.step_up else 0) + 18


def _chain_size(chain: Chain, boxes: list[_Box], notes: list[list[str]]) -> tuple[float, float]:
    row_w = sum(b.width for b in boxes) + ARROW * (len(boxes) - 1)
    head_w = text_width(chain.heading, 15, bold=True)
    notes_w = max((widest(lines, BODY) for lines in notes), default=0)
    height = (
        22 + sum(len(lines) for lines in notes) * LINE_H + 10 + max(_box_height(b) for b in boxes)
    )
    return max(row_w, head_w, notes_w), height


def _draw_chain(
    draw: Canvas, chain: Chain, boxes: list[_Box], notes: list[list[str]], x: float, y: float
) -> float:
    draw.open_group(class_="chain", data_chain=chain.key, data_tier=chain.tier)
    draw.text(x, y + 15, chain.heading, size=15, bold=True)
    cy = y + 22
    for lines in notes:
        draw.text(x, cy + 13, lines, size=BODY, fill=MUTED, line_height=LINE_H)
        cy += len(lines) * LINE_H
    top = cy + 10
    height = max(_box_height(b) for b in boxes)
    mid = top + height / 2
    cursor = x
    for index, box in enumerate(boxes):
        if index:
            draw.arrow(cursor - ARROW + 3, mid, cursor - 3, mid, width=1.8)
        attrs: dict[str, object] = {"class_": f"stage stage--{box.kind}"}
        if box.kind == "stage":
            stage = chain.stages[index - 1]
            attrs.update(
                data_position=str(stage["position"]),
                data_rule=stage["rule"],
                data_quorum=str(stage["quorum"]),
                data_step_up="true" if stage["step_up"] else "false",
            )
        draw.open_group(**attrs)
        if box.kind == "stage":
            draw.rect(cursor, top, box.width, height, fill=PAPER, stroke=INK, stroke_width=2, rx=6)
        elif box.kind == "request":
            draw.rect(
                cursor,
                top,
                box.width,
                height,
                fill=SHADE,
                stroke=INK,
                stroke_width=1.5,
                rx=height / 2 if height < 60 else 18,
            )
        else:
            draw.rect(
                cursor,
                top,
                box.width,
                height,
                fill=SHADE_DARK,
                stroke=INK,
                stroke_width=2.5,
                rx=height / 2 if height < 60 else 18,
            )
        content_h = len(box.lines) * LINE_H + (LINE_H + 2 if box.step_up else 0)
        ty = top + (height - content_h) / 2 + 13
        for text, size, bold, colour in box.lines:
            draw.text(
                cursor + box.width / 2, ty, text, size=size, bold=bold, fill=colour, anchor="middle"
            )
            ty += LINE_H
        if box.step_up:
            label_w = text_width("step-up MFA", BODY, bold=True)
            left = cursor + (box.width - label_w - 16) / 2
            draw.padlock(left, ty - 11)
            draw.text(left + 16, ty, "step-up MFA", size=BODY, bold=True)
        draw.close_group()
        cursor += box.width + ARROW
    draw.close_group()
    return cy + 10 + height - y


def render_svg(argument: str) -> str:
    plan = _plan(argument)
    note_wrap = 1080.0
    laid = []
    inner = 0.0
    for chain in plan.chains:
        boxes = _boxes(chain)
        notes = [wrap(n, note_wrap, BODY, max_lines=6) for n in chain.notes]
        w, h = _chain_size(chain, boxes, notes)
        laid.append((chain, boxes, notes, h))
        inner = max(inner, w)
    inner = max(inner, heading_width(plan.title, plan.subtitle), 640.0)
    footnotes = [wrap(f, inner, BODY, max_lines=8) for f in plan.footnotes]
    draw = Canvas()
    y = heading(draw, plan.title, plan.subtitle) + 8
    for index, (chain, boxes, notes, h) in enumerate(laid):
        if index:
            draw.path(f"M{MARGIN} {y - 14:.1f} H{MARGIN + inner:.1f}", stroke=RULE, width=1)
        _draw_chain(draw, chain, boxes, notes, MARGIN, y)
        y += h + 28
    for lines in footnotes:
        draw.text(MARGIN, y + 4, lines, size=BODY, fill=INK, line_height=LINE_H)
        y += len(lines) * LINE_H + 6
    description = (
        plan.description
        + " "
        + " ".join(
            f"{c.heading}: request, "
            + ", ".join(
                f"stage {s['position']} {s['rule_label']} ({_quorum(s['quorum'])}"
                + (", step-up MFA)" if s["step_up"] else ")")
                for s in c.stages
            )
            + ", access granted."
            for c in plan.chains
        )
    )
    return document(
        "approval-chain", plan.title, description, inner + 2 * MARGIN, y + MARGIN - 6, draw
    )


def render_mermaid(argument: str) -> str:
    plan = _plan(argument)
    lines = [
        "flowchart LR",
        f"    %% {mermaid.comment(plan.title)} · {mermaid.comment(plan.subtitle)}",
    ]
    for chain in plan.chains:
        prefix = mermaid.ident(chain.key)
        lines.append(f"    subgraph {prefix}[{mermaid.quoted(chain.heading)}]")
        lines.append("        direction LR")
        previous = f"{prefix}_request"
        lines.append(f"        {previous}([{mermaid.quoted('Request submitted')}])")
        for stage in chain.stages:
            node = f"{prefix}_s{stage['position']}"
            words = f"Stage {stage['position']}: {stage['rule_label']}, {_quorum(stage['quorum'])}"
            if stage["step_up"]:
                words += ", step-up MFA"
            lines.append(f"        {node}[{mermaid.quoted(words)}]")
            lines.append(f"        {previous} --> {node}")
            previous = node
        lines.append(f"        {prefix}_granted([{mermaid.quoted('Access granted')}])")
        lines.append(f"        {previous} --> {prefix}_granted")
        for note in chain.notes:
            lines.append(f"        %% {mermaid.comment(note)}")
        lines.append("    end")
    return "\n".join(lines) + "\n"
