"""Mermaid source for people who paste diagrams into their wiki: safe ids and escaped labels.

Ids are built from ``[A-Za-z0-9_]`` only, with a prefix so no id is a Mermaid keyword (``end``).
Names from the database are always written inside double quotes, with the characters that mean
something there (the quote, ``#``, ``<``, ``>``, ``&``, backtick) replaced by Mermaid entity codes,
so a system called ``a"b`` or ``x --> y`` stays text and ``%%{init: ...}%%`` is no directive.
Newlines never survive (:func:`clean`).
"""

from __future__ import annotations

import re

from docs.diagrams.svg import clean

# Inside a double-quoted label these mean something to Mermaid: the quote ends the label,
# ``#...;`` is an entity code, ``<``/``>``/``&`` are HTML, a leading backtick starts Markdown, and
# ``%%{...}%%`` anywhere in the text is a directive (it could change the security level).
_QUOTED = {
    "#": "#35;",
    '"': "#quot;",
    "<": "#lt;",
    ">": "#gt;",
    "&": "#amp;",
    "`": "#96;",
    "%": "#37;",
}
# Unquoted text (transition labels after ``:``) also keeps clear of statement syntax.
_BARE = {
    **_QUOTED,
    ":": "#58;",
    ";": "#59;",
    "|": "#124;",
    "[": "#91;",
    "]": "#93;",
    "{": "#123;",
    "}": "#125;",
    "(": "#40;",
    ")": "#41;",
}


def text(value: object) -> str:
    """``value`` as the inside of a double-quoted Mermaid label."""
    return "".join(_QUOTED.get(ch, ch) for ch in clean(value))


def bare(value: object) -> str:
    """``value`` as unquoted label text (a state transition's label). Letters, digits and spaces
    stay as they are; anything else Mermaid could read as syntax becomes an entity code."""
    return "".join(_BARE.get(ch, ch) for ch in clean(value))


def comment(value: object) -> str:
    """A ``%%`` comment line's text: escaped like a label, so never a directive or markup."""
    return text(value)


def quoted(value: object) -> str:
    return f'"{text(value)}"'


def ident(*parts: object) -> str:
    """A Mermaid node/state id from any text: letters, digits and ``_``, never a keyword."""
    raw = "_".join(str(p) for p in parts)
    slug = re.sub(r"[^A-Za-z0-9]+", "_", raw).strip("_")
    return f"n_{slug or 'x'}"
