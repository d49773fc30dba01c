"""Runbook Markdown to safe HTML, with a table of contents and live diagrams.

The order matters and is the security argument:

1. markdown-it-py ("commonmark" + tables) parses the text with raw HTML OFF, so whatever HTML a
   runbook contains is shown as text. ``{{ diagram:<name> [argument] }}`` lines become diagram
   tokens, which render as a placeholder paragraph holding a random per-render nonce.
2. nh3 cleans the result with an explicit allow-list (no images, no style, no event handlers,
   links only to http, https, mailto and relative URLs). Even if step 1 let something through,
   it stops here.
3. Only then is each placeholder swapped for the server-drawn SVG from ``docs.diagrams``, so the
   SVG never goes through (nor is weakened by) the sanitiser, and nothing a person writes can
   forge a placeholder: the nonce is unknown until the page is rendered.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import nh3
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import slugify
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.renderer import RendererHTML
from markdown_it.rules_block import StateBlock
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict

logger = logging.getLogger(__name__)

# What survives the sanitiser. Headings keep the ids we give them (for the table of contents).
ALLOWED_TAGS = {
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "p",
    "br",
    "hr",
    "ul",
    "ol",
    "li",
    "blockquote",
    "pre",
    "code",
    "em",
    "strong",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
}
ALLOWED_ATTRIBUTES = {
    "h2": {"id"},
    "h3": {"id"},
    "h4": {"id"},
    "h5": {"id"},
    "h6": {"id"},
    "a": {"href", "title"},
    "ol": {"start"},
}
_ALIGN_CLASSES = {"align-left", "align-center", "align-right"}
ALLOWED_CLASSES = {"th": _ALIGN_CLASSES, "td": _ALIGN_CLASSES}
URL_SCHEMES = {"http", "https", "mailto"}
# Tags whose content goes too, not just the tag (text inside <script> is never wanted).
CLEAN_CONTENT_TAGS = {"script", "style", "iframe", "object", "embed", "template", "noscript"}

# Heading ids carry a prefix so a heading called "Main" can't collide with the page's own ids.
HEADING_ID_PREFIX = "section-"
TOC_LEVELS = ("h2", "h3")

# A tag on a line of its own: {{ diagram:approval-chain prod }}. Loose on purpose: a malformed tag
# becomes a visible note instead of silently turning into text.
_DIAGRAM_LINE = re.compile(r"^\{\{\s*diagram:(?P<inner>.*?)\s*\}\}$")
_DIAGRAM_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_DIAGRAM_ARGUMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class TocEntry:
    level: int
    id: str
    text: str


@dataclass(frozen=True)
class DiagramTag:
    """One ``{{ diagram:... }}`` line; ``error`` is set when the tag itself is malformed."""

    name: str
    argument: str = ""
    error: str = ""


@dataclass(frozen=True)
class Rendered:
    html: SafeString
    toc: list[TocEntry] = field(default_factory=list)
    diagrams: list[DiagramTag] = field(default_factory=list)


def parse_diagram_tag(line: str) -> DiagramTag | None:
    """The tag on ``line`` (already stripped), or None when the line is not a diagram tag."""
    match = _DIAGRAM_LINE.match(line)
    if match is None:
        return None
    words = match.group("inner").split()
    name = words[0] if words else ""
    argument = " ".join(words[1:])
    if not _DIAGRAM_NAME.match(name):
        return DiagramTag(name=name, argument=argument, error="diagram names are lower-case words")
    if len(words) > 2 or (argument and not _DIAGRAM_ARGUMENT.match(argument)):
        return DiagramTag(
            name=name, argument=argument, error="the argument must be one word, such as prod"
        )
    return DiagramTag(name=name, argument=argument)


def _diagram_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """Block rule: a line holding only a diagram tag (never inside code, which parses first)."""
    if state.is_code_block(start_line):
        return False
    begin = state.bMarks[start_line] + state.tShift[start_line]
    line = state.src[begin : state.eMarks[start_line]].strip()
    if not line.startswith("{{"):
        return False
    tag = parse_diagram_tag(line)
    if tag is None:
        return False
    if silent:
        return True
    state.line = start_line + 1
    token = state.push("diagram", "", 0)
    token.map = [start_line, state.line]
    token.meta = {"tag": tag}
    return True


def _render_diagram(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    placeholders: list[tuple[str, DiagramTag]] = env["diagram_placeholders"]
    marker = f"ghdiagram-{env['nonce']}-{len(placeholders)}"
    placeholders.append((marker, tokens[idx].meta["tag"]))
    return f"<p>{marker}</p>\n"


def _render_image(
    renderer: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType
) -> str:
    # Images are not shown (no third-party fetches, nothing to smuggle); the alt text stays.
    token = tokens[idx]
    alt = renderer.renderInlineAsText(token.children or [], options, env)
    return escapeHtml(f"[image: {alt}]") if alt else ""


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    md.block.ruler.before(
        "paragraph",
        "diagram",
        _diagram_block,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    md.add_render_rule("diagram", _render_diagram)
    md.add_render_rule("image", _render_image)
    return md


_MD = _parser()


def _heading_text(inline: Token) -> str:
    return "".join(
        child.content for child in inline.children or [] if child.type in {"text", "code_inline"}
    ).strip()


def _prepare(tokens: list[Token]) -> list[TocEntry]:
    """Give headings stable ids (and one level down when the body uses h1: the page title is the
    only h1), turn table alignment into classes, and collect the table of contents."""
    shift = 1 if any(t.type == "heading_open" and t.tag == "h1" for t in tokens) else 0
    used: set[str] = set()
    toc: list[TocEntry] = []
    for index, token in enumerate(tokens):
        if token.type in {"heading_open", "heading_close"} and shift:
            token.tag = f"h{min(int(token.tag[1]) + shift, 6)}"
        if token.type == "heading_open":
            text = _heading_text(tokens[index + 1])
            base = HEADING_ID_PREFIX + (slugify(text)[:60].strip("-") or "part")
            anchor, number = base, 2
            while anchor in used:
                anchor, number = f"{base}-{number}", number + 1
            used.add(anchor)
            token.attrSet("id", anchor)
            if token.tag in TOC_LEVELS:
                toc.append(TocEntry(level=int(token.tag[1]), id=anchor, text=text))
        elif token.type in {"th_open", "td_open"}:
            style = str(token.attrs.pop("style", ""))
            align = style.removeprefix("text-align:").strip()
            if align in {"left", "center", "right"}:
                token.attrSet("class", f"align-{align}")
    return toc


def sanitise(html: str) -> str:
    """Clean rendered HTML down to the allow-list."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        clean_content_tags=CLEAN_CONTENT_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        allowed_classes=ALLOWED_CLASSES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer",
        strip_comments=True,
    )


def _note(text: str, detail: str = "") -> str:
    if detail:
        return format_html(
            '<p class="diagram-note" role="note"><strong>{}</strong> <span>{}</span></p>',
            text,
            detail,
        )
    return format_html('<p class="diagram-note" role="note"><strong>{}</strong></p>', text)


def diagram_links(name: str, argument: str = "") -> tuple[str, str]:
    """The diagram's own page and its Mermaid source, for the same argument."""
    query = f"?{urlencode({'arg': argument})}" if argument else ""
    page = reverse("docs:diagram", kwargs={"name": name}) + query
    source = reverse("docs:diagram_mermaid", kwargs={"name": name}) + query
    return page, source


def render_diagram(tag: DiagramTag) -> str:
    """The figure for one tag: the live SVG with a caption and links, or a visible note."""
    label = f"{tag.name} {tag.argument}".strip()
    if tag.error:
        return _note(f"Unknown diagram: {label}", f"({tag.error})")
    try:
        from docs import diagrams
    except ImportError:
        return _note(f"Unknown diagram: {label}")
    render_svg: Any = getattr(diagrams, "render_svg", None)
    unknown: Any = getattr(diagrams, "UnknownDiagram", None)
    known: dict[str, Any] = getattr(diagrams, "DIAGRAMS", {})
    if render_svg is None or unknown is None or tag.name not in known:
        return _note(f"Unknown diagram: {label}")
    try:
        svg = render_svg(tag.name, tag.argument)
    except unknown as exc:
        return _note(f"Unknown diagram: {label}", str(exc))
    except Exception:
        # A broken drawing must not take the runbook down with it; the log has the details.
        logger.exception("Drawing diagram %r (%r) failed", tag.name, tag.argument)
        return _note(f"The diagram {label} could not be drawn.", "The error is in the server log.")
    page, source = diagram_links(tag.name, tag.argument)
    title = known[tag.name].title + (f" ({tag.argument})" if tag.argument else "")
    return format_html(
        '<figure class="diagram">{}<figcaption><span class="diagram__title">{}</span> '
        '<span class="diagram__links"><a href="{}">Open the diagram</a> · '
        '<a href="{}">Mermaid source</a></span></figcaption></figure>',
        mark_safe(svg),  # noqa: S308 - drawn on the server by docs.diagrams, every text escaped
        title,
        page,
        source,
    )


def render_markdown(text: str) -> Rendered:
    """Render runbook Markdown to sanitised HTML with live diagrams and a table of contents."""
    env: dict[str, Any] = {"nonce": secrets.token_hex(8), "diagram_placeholders": []}
    tokens = _MD.parse(text or "", env)
    toc = _prepare(tokens)
    html = sanitise(_MD.renderer.render(tokens, _MD.options, env))
    placeholders: list[tuple[str, DiagramTag]] = env["diagram_placeholders"]
    for marker, tag in placeholders:
        figure = render_diagram(tag)
        if f"<p>{marker}</p>" in html:
            html = html.replace(f"<p>{marker}</p>", figure, 1)
        else:
            html = html.replace(marker, figure, 1)
    return Rendered(
        html=mark_safe(html),  # noqa: S308 - sanitised above; only our own figures added
        toc=toc,
        diagrams=[tag for _, tag in placeholders],
    )
