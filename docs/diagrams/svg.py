"""A tiny SVG builder: escaped text and attributes, text measuring and wrapping, arrows, boxes.

Every string that reaches the markup goes through :func:`esc` (text and attribute values alike),
and attribute names are checked against a fixed pattern, so names from the database (a system
called ``<script>``) can only ever appear as text. Styling uses presentation attributes, never
``style=`` or ``<style>``, so the drawings obey the portal's strict Content-Security-Policy when
inlined, and look the same when the ``.svg`` is opened on its own or printed.

Text widths are estimated from Arial/Liberation Sans metrics (the font the drawings ask for), with
a safety margin for wider fallback fonts.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

FONT_FAMILY = "'Liberation Sans', Arial, Helvetica, sans-serif"

# Ink and paper: dark text on white, and fills that stay distinct when printed in grayscale
# (they differ in lightness, and shapes differ in outline too, never in hue alone).
INK = "#14212e"
MUTED = "#3f4b58"
LINE = "#3b4754"
RULE = "#aab4bf"
PAPER = "#ffffff"
SHADE = "#e9edf1"
SHADE_DARK = "#cfd6de"
ALERT = "#8f1a1a"

# Widths of ASCII characters in 1/1000 em (Arial regular and bold); others are estimated.
_REGULAR = (
    "278 278 355 556 556 889 667 191 333 333 389 584 278 333 278 278 556 556 556 556 556 556 556 "
    "556 556 556 278 278 584 584 584 556 1015 667 667 722 722 667 611 778 722 278 500 667 556 833 "
    "722 778 667 778 722 667 611 722 667 944 667 667 611 278 278 278 469 556 333 556 556 500 556 "
    "556 278 556 556 222 222 500 222 833 556 556 556 556 333 500 278 556 500 722 500 500 500 334 "
    "260 334 584"
)
_BOLD = (
    "278 333 474 556 556 889 722 238 333 333 389 584 278 333 278 278 556 556 556 556 556 556 556 "
    "556 556 556 333 333 584 584 584 611 975 722 722 722 722 667 611 778 722 278 556 722 611 833 "
    "722 778 667 778 722 667 611 722 667 944 667 667 611 333 278 333 584 556 333 556 611 556 611 "
    "556 333 611 611 278 278 556 278 889 611 611 611 611 389 556 333 611 556 778 556 556 500 389 "
    "280 389 584"
)
_WIDTHS = {
    False: {chr(32 + i): int(w) for i, w in enumerate(_REGULAR.split())},
    True: {chr(32 + i): int(w) for i, w in enumerate(_BOLD.split())},
}
# DejaVu Sans, the usual fallback on Linux, runs about 8% wider than Arial.
_SAFETY = 1.08

# Characters XML 1.0 does not allow at all: dropped rather than escaped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
_ATTR_NAME = re.compile(r"^[a-zA-Z_][-a-zA-Z0-9_:.]*$")


def esc(value: object) -> str:
    """``value`` as text safe inside an SVG element or a quoted attribute."""
    return escape(_NOT_XML.sub("", str(value)), quote=True)


def clean(value: object) -> str:
    """Text as drawn: one line, no characters XML refuses."""
    return " ".join(_NOT_XML.sub("", str(value)).split())


def safe_id(*parts: object) -> str:
    """An XML id made of ``[a-z0-9-]`` only, from any text."""
    raw = "-".join(str(p) for p in parts).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", raw).strip("-")
    return f"d-{slug or 'x'}"


def char_width(ch: str, bold: bool) -> float:
    table = _WIDTHS[bold]
    if ch in table:
        return table[ch] / 1000
    code = ord(ch)
    if code >= 0x2E80:  # CJK, symbols, emoji: full width
        return 1.0
    if 0x0300 <= code <= 0x036F:  # combining marks take no room
        return 0.0
    return 0.62


def text_width(text: str, size: float, *, bold: bool = False) -> float:
    """Estimated rendered width of ``text`` in user units at ``size``."""
    return sum(char_width(ch, bold) for ch in text) * size * _SAFETY


def _split_long(word: str, width: float, size: float, bold: bool) -> list[str]:
    """Break one word that is wider than ``width``: after ``-``/``/``/``_`` where possible."""
    pieces: list[str] = []
    current = ""
    for part in re.findall(r"[^-/_.]*[-/_.]?", word):
        if not part:
            continue
        if text_width(current + part, size, bold=bold) <= width:
            current += part
            continue
        if current:
            pieces.append(current)
            current = ""
        while text_width(part, size, bold=bold) > width and len(part) > 1:
            cut = len(part)
            while cut > 1 and text_width(part[:cut], size, bold=bold) > width:
                cut -= 1
            pieces.append(part[:cut])
            part = part[cut:]
        current = part
    if current:
        pieces.append(current)
    return pieces


def wrap(
    text: str, width: float, size: float, *, bold: bool = False, max_lines: int = 4
) -> list[str]:
    """Greedy word wrap of ``text`` into lines no wider than ``width``; at most ``max_lines``,
    the last one ending in an ellipsis if text was cut."""
    words: list[str] = []
    for word in clean(text).split(" "):
        if word and text_width(word, size, bold=bold) > width:
            words.extend(_split_long(word, width, size, bold))
        elif word:
            words.append(word)
    lines: list[str] = []
    current = ""
    for word in words:
        candidate = f"{current} {word}" if current else word
        if current and text_width(candidate, size, bold=bold) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and text_width(last + "…", size, bold=bold) > width:
            last = last[:-1]
        lines = [*lines[: max_lines - 1], last.rstrip() + "…"]
    return lines or [""]


def widest(lines: Iterable[str], size: float, *, bold: bool = False) -> float:
    return max((text_width(line, size, bold=bold) for line in lines), default=0.0)


def _num(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def element(tag: str, attrs: dict[str, object] | None = None, content: str = "") -> str:
    """``<tag attr="value">content</tag>``; values escaped, ``None``/``False`` values left out.

    ``content`` is markup built by this module (already escaped).
    """
    assert _ATTR_NAME.match(tag), tag
    parts = [tag]
    for name, value in (attrs or {}).items():
        if value is None or value is False:
            continue
        name = name.rstrip("_").replace("_", "-")
        assert _ATTR_NAME.match(name), name
        shown = _num(value) if isinstance(value, float) else value
        parts.append(f'{name}="{esc(shown)}"')
    opening = " ".join(parts)
    if content:
        return f"<{opening}>{content}</{tag}>"
    return f"<{opening}/>"


@dataclass
class Canvas:
    """Markup collected in drawing order, later wrapped by :meth:`Document.render`."""

    ids: str = field(default_factory=lambda: f"d{secrets.token_hex(4)}")
    parts: list[str] = field(default_factory=list)
    markers: dict[str, str] = field(default_factory=dict)  # colour -> marker id

    def add(self, markup: str) -> None:
        self.parts.append(markup)

    def open_group(self, **attrs: object) -> None:
        tag = element("g", attrs)
        self.parts.append(tag[:-2] + ">")

    def close_group(self) -> None:
        self.parts.append("</g>")

    def marker(self, colour: str) -> str:
        """The id of an arrowhead marker in ``colour``, defined once per drawing."""
        if colour not in self.markers:
            self.markers[colour] = f"{self.ids}-arrow{len(self.markers)}"
        return f"url(#{self.markers[colour]})"

    def rect(
        self,
        x: float,
        y: float,
        w: float,
        h: float,
        *,
        fill: str = PAPER,
        stroke: str | None = LINE,
        stroke_width: float = 1.5,
        rx: float = 0,
        dash: str | None = None,
        **attrs: object,
    ) -> None:
        self.add(
            element(
                "rect",
                {
                    "x": float(x),
                    "y": float(y),
                    "width": float(w),
                    "height": float(h),
                    "rx": float(rx) if rx else None,
                    "fill": fill,
                    "stroke": stroke or "none",
                    "stroke_width": float(stroke_width) if stroke else None,
                    "stroke_dasharray": dash,
                    **attrs,
                },
            )
        )

    def circle(
        self, cx: float, cy: float, r: float, *, fill: str = INK, stroke: str | None = None
    ) -> None:
        self.add(
            element(
                "circle",
                {
                    "cx": float(cx),
                    "cy": float(cy),
                    "r": float(r),
                    "fill": fill,
                    "stroke": stroke,
                    "stroke_width": 2.0 if stroke else None,
                },
            )
        )

    def path(
        self,
        d: str,
        *,
        stroke: str = LINE,
        width: float = 1.5,
        arrow: bool = False,
        arrow_at_start: bool = False,
        dash: str | None = None,
        fill: str = "none",
    ) -> None:
        self.add(
            element(
                "path",
                {
                    "d": d,
                    "fill": fill,
                    "stroke": stroke,
                    "stroke_width": float(width),
                    "stroke_dasharray": dash,
                    "stroke_linejoin": "round",
                    "marker_end": self.marker(stroke) if arrow and not arrow_at_start else None,
                    "marker_start": self.marker(stroke) if arrow and arrow_at_start else None,
                },
            )
        )

    def arrow(
        self, x1: float, y1: float, x2: float, y2: float, *, stroke: str = LINE, width: float = 1.5
    ) -> None:
        self.path(
            f"M{_num(x1)} {_num(y1)} L{_num(x2)} {_num(y2)}", stroke=stroke, width=width, arrow=True
        )

    def text(
        self,
        x: float,
        y: float,
        lines: Iterable[str] | str,
        *,
        size: float = 13,
        anchor: str = "start",
        bold: bool = False,
        fill: str = INK,
        line_height: float | None = None,
        italic: bool = False,
    ) -> None:
        """Lines of text; ``y`` is the baseline of the first line."""
        if isinstance(lines, str):
            lines = [lines]
        step = line_height or size * 1.25
        for index, line in enumerate(lines):
            self.add(
                element(
                    "text",
                    {
                        "x": float(x),
                        "y": float(y + index * step),
                        "font_size": float(size),
                        "text_anchor": None if anchor == "start" else anchor,
                        "font_weight": "700" if bold else None,
                        "font_style": "italic" if italic else None,
                        "fill": fill,
                    },
                    esc(clean(line)) or " ",
                )
            )

    def text_block(
        self,
        cx: float,
        cy: float,
        lines: list[str],
        *,
        size: float = 13,
        bold: bool = False,
        fill: str = INK,
        line_height: float | None = None,
    ) -> None:
        """Lines centred on (cx, cy) both ways."""
        step = line_height or size * 1.25
        first = cy - (len(lines) - 1) * step / 2 + size * 0.35
        self.text(
            cx, first, lines, size=size, anchor="middle", bold=bold, fill=fill, line_height=step
        )

    def badge(
        self,
        x: float,
        y: float,
        label: str,
        *,
        size: float = 12,
        fill: str = INK,
        ink: str = PAPER,
        stroke: str | None = None,
        bold: bool = True,
    ) -> float:
        """A rounded label with its top-left at (x, y); returns its width."""
        w = text_width(label, size, bold=bold) + 10
        h = size + 6
        self.rect(x, y, w, h, fill=fill, stroke=stroke, stroke_width=1, rx=3)
        self.text(
            x + w / 2,
            y + h / 2 + size * 0.35,
            label,
            size=size,
            anchor="middle",
            bold=bold,
            fill=ink,
        )
        return w

    def padlock(self, x: float, y: float, *, colour: str = INK) -> None:
        """A 10×12 padlock with its top-left at (x, y): step-up MFA, drawn, not an emoji."""
        self.path(
            f"M{_num(x + 2.5)} {_num(y + 5.5)} v-2 a2.5 2.5 0 0 1 5 0 v2",
            stroke=colour,
            width=1.6,
        )
        self.rect(x, y + 5, 10, 7, fill=colour, stroke=None, rx=1.5)


def badge_width(label: str, size: float = 12, *, bold: bool = True) -> float:
    return text_width(label, size, bold=bold) + 10


# Minimum rendered widths keep text at 12px or more: the drawings use 13 units for body text, so
# the page never shows them narrower than 12/13 of their natural width (it scrolls instead).
_WIDTH_BUCKETS = tuple(range(400, 2401, 25))


def width_class(width: float) -> str:
    bucket = next((b for b in _WIDTH_BUCKETS if width <= b), _WIDTH_BUCKETS[-1])
    return f"diagram-svg--w{bucket}"


@dataclass
class Document:
    """A complete, standalone ``<svg>``: viewBox, full width, title and description for readers."""

    name: str
    title: str
    description: str
    width: float
    height: float
    canvas: Canvas

    def render(self) -> str:
        ids = self.canvas.ids
        title_id, desc_id = f"{ids}-title", f"{ids}-desc"
        defs = "".join(
            element(
                "marker",
                {
                    "id": marker_id,
                    "viewBox": "0 0 10 10",
                    "refX": "9",
                    "refY": "5",
                    "markerWidth": "7",
                    "markerHeight": "7",
                    "markerUnits": "strokeWidth",
                    "orient": "auto-start-reverse",
                },
                element("path", {"d": "M0 0 L10 5 L0 10 z", "fill": colour}),
            )
            for colour, marker_id in self.canvas.markers.items()
        )
        body = [
            element("title", {"id": title_id}, esc(clean(self.title))),
            element("desc", {"id": desc_id}, esc(self.description)),
        ]
        if defs:
            body.append(element("defs", {}, defs))
        body.append(
            element(
                "rect",
                {"x": "0", "y": "0", "width": "100%", "height": "100%", "fill": PAPER},
            )
        )
        body.extend(self.canvas.parts)
        width, height = round(self.width), round(self.height)
        return element(
            "svg",
            {
                "xmlns": "http://www.w3.org/2000/svg",
                "viewBox": f"0 0 {width} {height}",
                "width": "100%",
                "preserveAspectRatio": "xMidYMin meet",
                "role": "img",
                "aria-labelledby": f"{title_id} {desc_id}",
                "class": f"diagram-svg {width_class(width)}",
                "data-diagram": self.name,
                "data-width": str(width),
                "font-family": FONT_FAMILY,
                "font-size": "13",
            },
            "".join(body),
        )
