"""Live diagrams for the docs: drawn on every call from the code's tables and the database.

The API the docs pages and the runbook renderer use:

- :data:`DIAGRAMS`: name -> :class:`Diagram` (``.title``, ``.description``, ``.choices()``);
- :func:`render_svg`: a complete ``<svg>`` element in which every piece of text is escaped, so it
  may be inserted into a page as is;
- :func:`render_mermaid`: the same diagram as Mermaid source, for wikis;
- :class:`UnknownDiagram`: no such diagram, or (:class:`UnknownArgument`) no such argument.

Nothing is cached: a policy changed a second ago shows in the next drawing.
"""

from __future__ import annotations

from docs.diagrams import approval, lifecycles, matrix
from docs.diagrams.base import Choice, Diagram, UnknownArgument, UnknownDiagram

__all__ = [
    "DIAGRAMS",
    "Choice",
    "Diagram",
    "UnknownArgument",
    "UnknownDiagram",
    "get",
    "render_mermaid",
    "render_svg",
]

DIAGRAMS: dict[str, Diagram] = {
    diagram.name: diagram
    for diagram in (
        Diagram(
            name="request-lifecycle",
            title="Request lifecycle",
            description=(
                "Every state an access request can be in and what moves it on, drawn from the "
                "transition table the workflow code enforces."
            ),
            svg=lifecycles.request_svg,
            mermaid=lifecycles.request_mermaid,
            source="the state table in accessreq/states.py",
        ),
        Diagram(
            name="approval-chain",
            title="Approval chain",
            description=(
                "Who must approve a request, stage by stage, for each risk tier or environment, "
                "from the approval policies as they are now."
            ),
            svg=approval.render_svg,
            mermaid=approval.render_mermaid,
            choices=approval.choices,
            argument_help="a risk tier (low, medium, high, critical) or an environment",
            source="the approval policies and their stages",
        ),
        Diagram(
            name="roles-matrix",
            title="Roles matrix",
            description=(
                "Which entitlements allow deploy, rollback, read-secrets and the other scopes in "
                "each environment, which of them on-call people may take with break-glass, and "
                "who approves."
            ),
            svg=matrix.render_svg,
            mermaid=matrix.render_mermaid,
            choices=matrix.choices,
            argument_help="an environment",
            source="the active entitlements in the catalog",
        ),
        Diagram(
            name="campaign-lifecycle",
            title="Campaign lifecycle",
            description=(
                "The states of a recertification campaign and the outcomes of each review item, "
                "drawn from the campaign state tables in code."
            ),
            svg=lifecycles.campaign_svg,
            mermaid=lifecycles.campaign_mermaid,
            source="the state tables in accessreq/campaign_states.py",
        ),
    )
}


def get(name: str) -> Diagram:
    """The diagram called ``name``; :class:`UnknownDiagram` if there is none."""
    try:
        return DIAGRAMS[name]
    except KeyError:
        raise UnknownDiagram(f"There is no diagram called “{name}”.") from None


def render_svg(name: str, argument: str = "") -> str:
    """``<svg>…</svg>`` for diagram ``name`` (all text escaped), drawn from live data now."""
    return get(name).render_svg(argument)


def render_mermaid(name: str, argument: str = "") -> str:
    """Mermaid source for diagram ``name``, drawn from live data now."""
    return get(name).render_mermaid(argument)
