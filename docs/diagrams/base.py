"""What every diagram is: a name, words for people, and the two renderings (SVG and Mermaid)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from django.utils import timezone

from accessreq.models import Environment, RiskTier
from docs.diagrams.svg import MUTED, Canvas, Document, text_width

TIER_ORDER: list[str] = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL]


class UnknownDiagram(ValueError):
    """No diagram has this name (or, as :class:`UnknownArgument`, it can't draw this argument)."""


class UnknownArgument(UnknownDiagram):
    """The diagram exists but has nothing called ``argument``; the message says what it takes."""


@dataclass(frozen=True)
class Choice:
    """One argument a diagram accepts, offered as a link on its page."""

    value: str
    label: str
    group: str


@dataclass(frozen=True)
class Diagram:
    """A live diagram: ``svg``/``mermaid`` draw it for an argument (``""`` for the default view)
    and raise :class:`UnknownArgument` for one they don't know."""

    name: str
    title: str
    description: str
    svg: Callable[[str], str]
    mermaid: Callable[[str], str]
    choices: Callable[[], list[Choice]] = field(default=lambda: [])
    argument_help: str = ""
    source: str = ""  # where the data comes from, in words

    def render_svg(self, argument: str = "") -> str:
        return self.svg(argument.strip())

    def render_mermaid(self, argument: str = "") -> str:
        return self.mermaid(argument.strip())


MARGIN = 24.0
TITLE_SIZE = 17.0


def drawn_at() -> str:
    now: datetime = timezone.now()
    return now.strftime("%Y-%m-%d %H:%M UTC")


def heading(draw: Canvas, title: str, subtitle: str) -> float:
    """The title block at the top of a drawing; returns its height (margin included)."""
    draw.text(MARGIN, MARGIN + TITLE_SIZE * 0.8, title, size=TITLE_SIZE, bold=True)
    draw.text(MARGIN, MARGIN + TITLE_SIZE + 18, subtitle, size=13, fill=MUTED)
    return MARGIN + TITLE_SIZE + 30


def heading_width(title: str, subtitle: str) -> float:
    """How wide the title block is, without the margins."""
    return max(text_width(title, TITLE_SIZE, bold=True), text_width(subtitle, 13))


def tier_label(tier: str) -> str:
    return str(RiskTier(tier).label) if tier in RiskTier.values else tier


def ordered_environments() -> list[Environment]:
    """Every environment, lowest risk tier first, then by name."""
    rank = {tier: index for index, tier in enumerate(TIER_ORDER)}
    return sorted(Environment.objects.all(), key=lambda e: (rank.get(e.risk_tier, 9), e.name))


def document(
    name: str, title: str, description: str, width: float, height: float, draw: Canvas
) -> str:
    return Document(name, title, description, width, height, draw).render()
