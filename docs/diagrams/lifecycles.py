"""The lifecycle diagrams, drawn from the transition tables in code on every call.

``request-lifecycle`` reads :data:`accessreq.states.TRANSITIONS`; ``campaign-lifecycle`` reads
:mod:`accessreq.campaign_states`. The tables are looked up at render time (not imported by value),
so the drawing is the table as the running code has it. A state is drawn as final when the table
has no edge out of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models

from accessreq import campaign_states, states
from accessreq.states import START, Transition
from docs.diagrams import mermaid
from docs.diagrams.base import (
    MARGIN,
    UnknownArgument,
    document,
    drawn_at,
    heading,
    heading_width,
)
from docs.diagrams.layout import GraphEdge, GraphNode, StateGraphLayout, layered, legend
from docs.diagrams.svg import INK, RULE, Canvas


def _no_argument(name: str, argument: str) -> None:
    if argument:
        raise UnknownArgument(f"The {name} diagram takes no argument; “{argument}” is not used.")


def _label(choices: type[models.TextChoices], value: str) -> str:
    return str(choices(value).label) if value in choices.values else value


def graph(
    transitions: Sequence[Transition], choices: type[models.TextChoices]
) -> tuple[list[GraphNode], list[GraphEdge]]:
    """States (in order of first appearance, the start first) and one edge per transition."""
    order: list[str] = []
    for t in transitions:
        for state in (str(t.source), str(t.target)):
            if state not in order:
                order.append(state)
    leaving = {str(t.source) for t in transitions}
    nodes = [
        GraphNode(
            key=state,
            label=_label(choices, state) if state != START else "start",
            kind="start" if state == START else ("state" if state in leaving else "final"),
        )
        for state in sorted(order, key=lambda s: s != START)
    ]
    edges = [GraphEdge(t.source, t.target, t.label, data={"action": t.action}) for t in transitions]
    return nodes, edges


def _describe(transitions: Sequence[Transition], choices: type[models.TextChoices]) -> str:
    def name(state: str) -> str:
        return "start" if state == START else _label(choices, state).lower()

    return "; ".join(f"{name(t.source)} → {name(t.target)}: {t.label}" for t in transitions)


def _panel_heading(draw: Canvas, x: float, y: float, title: str, width: float) -> float:
    draw.text(x, y + 14, title, size=15, bold=True, fill=INK)
    draw.path(f"M{x} {y + 22} H{x + width}", stroke=RULE, width=1)
    return 34.0


def request_svg(argument: str) -> str:
    _no_argument("request lifecycle", argument)
    transitions = tuple(states.TRANSITIONS)
    nodes, edges = graph(transitions, states.RequestState)
    plan = layered(nodes, edges)
    draw = Canvas()
    title = "Request lifecycle"
    subtitle = (
        f"{len(transitions)} transitions, drawn from the state table in code "
        f"(accessreq/states.py) · {drawn_at()}"
    )
    legend_probe = Canvas()
    legend_w, legend_h = legend(legend_probe, 0, 0)
    width = max(plan.width, legend_w, heading_width(title, subtitle)) + 2 * MARGIN
    top = heading(draw, title, subtitle)
    _paint_at(draw, plan, MARGIN + (width - 2 * MARGIN - plan.width) / 2, top + 10)
    legend_top = top + 10 + plan.height + 28
    legend(draw, MARGIN, legend_top)
    height = legend_top + legend_h + MARGIN
    description = (
        "State diagram of an access request. " + _describe(transitions, states.RequestState) + "."
    )
    return document("request-lifecycle", title, description, width, height, draw)


def _paint_at(draw: Canvas, plan: StateGraphLayout, x: float, y: float) -> None:
    draw.open_group(transform=f"translate({x:.1f} {y:.1f})")
    plan.paint(draw)
    draw.close_group()


def campaign_svg(argument: str) -> str:
    _no_argument("campaign lifecycle", argument)
    campaign_t = tuple(campaign_states.CAMPAIGN_TRANSITIONS)
    item_t = tuple(campaign_states.ITEM_TRANSITIONS)
    campaign_plan = layered(*graph(campaign_t, campaign_states.CampaignState))
    item_plan = layered(*graph(item_t, campaign_states.ReviewDecision))
    title = "Recertification campaign lifecycle"
    subtitle = (
        "Campaign states and review item outcomes, drawn from accessreq/campaign_states.py · "
        f"{drawn_at()}"
    )
    draw = Canvas()
    legend_probe = Canvas()
    legend_w, legend_h = legend(legend_probe, 0, 0)
    inner = max(campaign_plan.width, item_plan.width, legend_w, heading_width(title, subtitle))
    width = inner + 2 * MARGIN
    y = heading(draw, title, subtitle)
    y += 6
    y += _panel_heading(draw, MARGIN, y, "Campaign", inner)
    _paint_at(draw, campaign_plan, MARGIN + (inner - campaign_plan.width) / 2, y + 8)
    y += campaign_plan.height + 36
    y += _panel_heading(
        draw, MARGIN, y, "Review item: one grant, one reviewer, one decision", inner
    )
    _paint_at(draw, item_plan, MARGIN + (inner - item_plan.width) / 2, y + 8)
    y += item_plan.height + 36
    legend(draw, MARGIN, y)
    height = y + legend_h + MARGIN
    description = (
        "State diagram of a recertification campaign: "
        + _describe(campaign_t, campaign_states.CampaignState)
        + ". Review item decisions: "
        + _describe(item_t, campaign_states.ReviewDecision)
        + "."
    )
    return document("campaign-lifecycle", title, description, width, height, draw)


# --- Mermaid ---------------------------------------------------------------------------------


def _state_lines(
    transitions: Sequence[Transition],
    choices: type[models.TextChoices],
    prefix: str,
    indent: str,
) -> tuple[list[str], list[str]]:
    """The state and transition lines of one table, and the ids of its final states."""
    nodes, _edges = graph(transitions, choices)
    lines: list[str] = []
    for node in nodes:
        if node.kind != "start":
            state_id = mermaid.ident(prefix, node.key)
            lines.append(f"{indent}state {mermaid.quoted(node.label)} as {state_id}")
    for t in transitions:
        source = "[*]" if t.source == START else mermaid.ident(prefix, t.source)
        target = "[*]" if t.target == START else mermaid.ident(prefix, t.target)
        lines.append(f"{indent}{source} --> {target} : {mermaid.bare(t.label)}")
    return lines, [mermaid.ident(prefix, n.key) for n in nodes if n.kind == "final"]


_FINAL_STYLE = "    classDef final fill:#e9edf1,stroke:#14212e,stroke-width:3px"


def _finals(ids: list[str]) -> list[str]:
    # Top level only: Mermaid doesn't apply classes inside composite states.
    return [f"    class {','.join(ids)} final"] if ids else []


def request_mermaid(argument: str) -> str:
    _no_argument("request lifecycle", argument)
    lines, finals = _state_lines(tuple(states.TRANSITIONS), states.RequestState, "request", "    ")
    header = [
        "stateDiagram-v2",
        "    %% Request lifecycle, from accessreq/states.py (TRANSITIONS)",
        "    direction LR",
        _FINAL_STYLE,
    ]
    return "\n".join([*header, *lines, *_finals(finals)]) + "\n"


def campaign_mermaid(argument: str) -> str:
    _no_argument("campaign lifecycle", argument)
    campaign_lines, campaign_finals = _state_lines(
        tuple(campaign_states.CAMPAIGN_TRANSITIONS),
        campaign_states.CampaignState,
        "campaign",
        "        ",
    )
    item_lines, item_finals = _state_lines(
        tuple(campaign_states.ITEM_TRANSITIONS), campaign_states.ReviewDecision, "item", "        "
    )
    lines = [
        "stateDiagram-v2",
        "    %% Campaign and review item lifecycles, from accessreq/campaign_states.py",
        "    direction LR",
        _FINAL_STYLE,
        '    state "Campaign" as campaign {',
        *campaign_lines,
        "    }",
        '    state "Review item" as review_item {',
        *item_lines,
        "    }",
        *_finals(campaign_finals + item_finals),
    ]
    return "\n".join(lines) + "\n"
