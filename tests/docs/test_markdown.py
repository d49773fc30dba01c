"""Runbook rendering: XSS payloads are neutralised (checked by parsing the output), headings get
stable ids for the table of contents, and diagram tags become live figures or visible notes."""

from __future__ import annotations

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from docs.markdown import ALLOWED_TAGS, render_markdown, sanitise

# Tags the renderer may add itself around a live diagram (never from what a person writes).
FIGURE_TAGS = {"figure", "figcaption", "span", "strong"}
SAFE_SCHEMES = {"", "http", "https", "mailto"}
DANGEROUS_TAGS = {
    "script",
    "img",
    "svg",
    "iframe",
    "style",
    "object",
    "embed",
    "form",
    "math",
    "details",
    "input",
    "button",
    "base",
    "link",
    "meta",
}


class Collector(HTMLParser):
    """Every start tag with its attributes (entities already decoded, as a browser sees them)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def unknown_decl(self, data: str) -> None:  # CDATA sections
        self.comments.append(data)


def parsed(html: str) -> Collector:
    collector = Collector()
    collector.feed(html)
    collector.close()
    return collector


def assert_harmless(html: str, *, extra_tags: set[str] = frozenset()) -> None:
    """No dangerous tag, no event handler or style, only safe link targets, no comments."""
    result = parsed(html)
    assert not result.comments, result.comments
    for tag, attrs in result.tags:
        assert tag not in DANGEROUS_TAGS, (tag, html)
        assert tag in ALLOWED_TAGS | extra_tags, (tag, html)
        for name, value in attrs.items():
            assert not name.startswith("on"), (tag, name, html)
            assert name not in {"style", "src", "srcdoc", "action", "formaction", "xlink:href"}
            if name == "href":
                # Browsers drop whitespace and control characters inside a scheme.
                squeezed = "".join(ch for ch in value if ch > " " and ch != "\x7f")
                scheme = urlsplit(squeezed).scheme.lower()
                assert scheme in SAFE_SCHEMES, (value, html)
                assert tag == "a"
                assert attrs.get("rel") == "noopener noreferrer"
            if name in {"id", "class"}:
                assert all(ch.isalnum() or ch == "-" for ch in value), (name, value)


XSS_PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<svg onload=alert(1)><circle r=5 /></svg>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](&#x6A;&#x61;&#x76;&#x61;script:alert(1))",
    "[click](java%0Ascript:alert(1))",
    "[click](<java\tscript:alert(1)>)",
    "[click](  javascript:alert(1)  )",
    "[click](vbscript:msgbox(1))",
    "<javascript:alert(1)>",
    "<JAVASCRIPT:alert(document.cookie)>",
    "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "<data:text/html,<script>alert(1)</script>>",
    "![pixel](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+)",
    "![x](https://tracker.example/pixel.png)",
    '<iframe src="https://evil.example"></iframe>',
    "<style>body { display: none }</style>",
    '<p style="background:url(javascript:alert(1))">styled</p>',
    '<a href="https://ok.example" onclick="alert(1)">handler</a>',
    '<a href="javascript:alert(1)">raw link</a>',
    "<!-- <script>alert(1)</script> -->",
    "<![CDATA[<script>alert(1)</script>]]>",
    '[quote](https://ok.example "title\\" onmouseover=\\"alert(1)")',
    "[quote](https://ok.example 'it''s \" onfocus=alert(1) autofocus x=\"')",
    "[ref][evil]\n\n[evil]: javascript:alert(1)",
    "{{ diagram:approval-chain <script>x</script> }}",
    '{{ diagram:"><script>alert(1)</script> }}',
    '{{ diagram:approval-chain prod" onload="alert(1) }}',
    "| a | b |\n|---|---|\n| <img src=x onerror=alert(1)> | <script>alert(2)</script> |",
    "## <img src=x onerror=alert(1)> heading",
    "[<b onmouseover=alert(1)>bold</b>](https://ok.example)",
    "<details open ontoggle=alert(1)><summary>x</summary></details>",
    '<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
    '<form action="javascript:alert(1)"><button>go</button></form>',
    '<object data="javascript:alert(1)"></object><embed src="x.swf">',
    '<base href="https://evil.example/">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "`<script>alert(1)</script>` and ```\n<script>alert(2)</script>\n```",
    "> <img src=x onerror=alert(1)>\n> [q](javascript:alert(1))",
    "- [list](javascript:alert(1))\n- <svg/onload=alert(1)>",
]


@pytest.mark.parametrize("payload", XSS_PAYLOADS)
def test_xss_payload_is_neutralised(payload: str) -> None:
    assert_harmless(render_markdown(payload).html, extra_tags=FIGURE_TAGS)


def test_all_payloads_together_are_neutralised() -> None:
    assert len(XSS_PAYLOADS) >= 15
    html = render_markdown("\n\n".join(XSS_PAYLOADS)).html
    assert_harmless(html, extra_tags=FIGURE_TAGS)
    # Shown as text, not dropped silently: a reader sees what the author wrote.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


RAW_HTML = [
    "<script>alert(1)</script><p>kept</p>",
    '<img src=x onerror="alert(1)"><p>kept</p>',
    '<p onclick="alert(1)" style="color:red">kept</p>',
    '<a href="javascript:alert(1)">x</a>',
    '<a href="JaVaScRiPt:alert(1)">x</a>',
    '<a href="&#106;avascript:alert(1)">x</a>',
    '<a href=" &#x09;javascript:alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">x</a>',
    '<a href="vbscript:msgbox(1)">x</a>',
    "<svg><script>alert(1)</script></svg><p>kept</p>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    "<style>*{display:none}</style><p>kept</p>",
    "<!--[if IE]><script>alert(1)</script><![endif]--><p>kept</p>",
    '<table><tr><td onmouseover="alert(1)"><img src=x onerror=alert(2)></td></tr></table>',
    '<h2 id="main" onclick="alert(1)">x</h2>',
    '<a href="https://ok.example" target="_blank" rel="opener">x</a>',
]


@pytest.mark.parametrize("html", RAW_HTML)
def test_sanitiser_cleans_raw_html_on_its_own(html: str) -> None:
    """Raw HTML is off in the parser; the sanitiser is a second wall that holds by itself."""
    cleaned = sanitise(html)
    assert_harmless(cleaned)
    assert "target" not in cleaned
    if "kept" in html:
        assert "<p>kept</p>" in cleaned


def test_safe_markdown_survives() -> None:
    text = (
        "Intro with **bold**, *em*, `code` and [a link](https://example.com/path?q=1).\n\n"
        "[relative](/docs/runbooks/break-glass/) and [mail](mailto:security@example.com) "
        "and <https://example.org>.\n\n"
        "> A quote\n\n1. one\n2. two\n\n- a\n- b\n\n```\nmake run\n```\n\n---\n\n"
        "| Left | Right |\n|:-----|------:|\n| 1 | 2 |\n"
    )
    html = render_markdown(text).html
    assert_harmless(html)
    result = parsed(html)
    tags = {tag for tag, _ in result.tags}
    assert {"strong", "em", "code", "a", "blockquote", "ol", "ul", "pre", "hr", "table"} <= tags
    hrefs = [attrs["href"] for tag, attrs in result.tags if tag == "a"]
    assert hrefs == [
        "https://example.com/path?q=1",
        "/docs/runbooks/break-glass/",
        "mailto:security@example.com",
        "https://example.org",
    ]
    assert '<th class="align-left">Left</th>' in html
    assert '<td class="align-right">2</td>' in html


def test_images_are_not_shown_but_their_alt_text_is() -> None:
    html = render_markdown("![The approval chain](https://example.com/chain.png)").html
    assert "<img" not in html
    assert "[image: The approval chain]" in html


def test_headings_get_stable_unique_ids_and_a_table_of_contents() -> None:
    text = (
        "## Before you start\n\ntext\n\n### Check `prod` access\n\n#### Deep detail\n\n"
        "## Before you start\n\n## Main\n"
    )
    first, second = render_markdown(text), render_markdown(text)
    assert first.html == second.html
    assert [(e.level, e.id, e.text) for e in first.toc] == [
        (2, "section-before-you-start", "Before you start"),
        (3, "section-check-prod-access", "Check prod access"),
        (2, "section-before-you-start-2", "Before you start"),
        (2, "section-main", "Main"),
    ]
    # h4 has an id for linking but is not in the contents.
    assert '<h4 id="section-deep-detail">' in first.html
    # A heading called "Main" can't take the page's own id="main".
    assert 'id="main"' not in first.html


def test_h1_in_the_body_moves_down_a_level_so_the_page_title_stays_the_only_h1() -> None:
    rendered = render_markdown("# Overview\n\n## Detail\n")
    assert "<h1" not in rendered.html
    assert '<h2 id="section-overview">' in rendered.html
    assert '<h3 id="section-detail">' in rendered.html
    assert [entry.level for entry in rendered.toc] == [2, 3]


def test_unknown_diagram_is_a_visible_note_not_an_error() -> None:
    rendered = render_markdown("Before\n\n{{ diagram:no-such-diagram }}\n\nAfter")
    assert "Unknown diagram: no-such-diagram" in rendered.html
    assert "diagram-note" in rendered.html
    assert "<p>Before</p>" in rendered.html and "<p>After</p>" in rendered.html


def test_malformed_diagram_tag_is_a_note_with_everything_escaped() -> None:
    html = render_markdown("{{ diagram:approval-chain <script>x</script> }}").html
    assert "Unknown diagram: approval-chain &lt;script&gt;x&lt;/script&gt;" in html
    assert "<script" not in html


def test_diagram_tag_in_code_or_inline_text_stays_text() -> None:
    text = (
        "```\n{{ diagram:request-lifecycle }}\n```\n\n"
        "    {{ diagram:request-lifecycle }}\n\n"
        "Write `{{ diagram:request-lifecycle }}` on its own line.\n"
    )
    rendered = render_markdown(text)
    assert rendered.diagrams == []
    assert rendered.html.count("{{ diagram:request-lifecycle }}") == 3
    assert "<figure" not in rendered.html and "diagram-note" not in rendered.html


def test_placeholder_cannot_be_forged_from_the_text() -> None:
    """The placeholder carries a random nonce: text that looks like one stays text."""
    text = "ghdiagram-0000000000000000-0\n\n{{ diagram:no-such-diagram }}\n"
    html = render_markdown(text).html
    assert "<p>ghdiagram-0000000000000000-0</p>" in html
    assert html.count("Unknown diagram") == 1


def test_diagram_tag_interrupts_a_paragraph() -> None:
    rendered = render_markdown("Text above\n{{ diagram:no-such-diagram }}\nText below")
    assert [tag.name for tag in rendered.diagrams] == ["no-such-diagram"]
    assert "<p>Text above</p>" in rendered.html


class _Shape(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.items.append(f"<{tag} {sorted(name for name, _ in attrs)}>")

    def handle_data(self, data: str) -> None:
        self.items.append(data)


def _shape(svg: str) -> list[str]:
    shape = _Shape()
    shape.feed(svg)
    return shape.items


def _diagrams_module():
    diagrams = pytest.importorskip("docs.diagrams")
    if not hasattr(diagrams, "render_svg") or "request-lifecycle" not in getattr(
        diagrams, "DIAGRAMS", {}
    ):
        pytest.skip("the live diagrams are not built yet")
    return diagrams


@pytest.mark.django_db
def test_live_diagram_is_embedded_after_sanitising_with_caption_and_links() -> None:
    diagrams = _diagrams_module()
    text = "Intro <b>not bold</b>\n\n{{ diagram:request-lifecycle }}\n\nOutro"
    html = render_markdown(text).html
    # The SVG is inserted as drawn: never passed through (or weakened by) the sanitiser. (Each
    # drawing has its own element ids, so compare tags and text.)
    embedded = html[html.index("<svg") : html.index("</svg>") + len("</svg>")]
    assert _shape(embedded) == _shape(diagrams.render_svg("request-lifecycle"))
    assert '<figure class="diagram">' in html
    assert "/docs/diagrams/request-lifecycle/" in html
    assert "/docs/diagrams/request-lifecycle.mmd" in html
    assert diagrams.DIAGRAMS["request-lifecycle"].title in html
    # What the author wrote is still escaped around it.
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


@pytest.mark.django_db
def test_html_in_text_cannot_smuggle_svg_next_to_a_live_diagram() -> None:
    _diagrams_module()
    text = "<svg><script>alert(1)</script></svg>\n\n{{ diagram:request-lifecycle }}"
    html = render_markdown(text).html
    assert html.count("<svg") == 1
    assert "<script" not in html
