"""Live diagram pages: the list, one diagram with its argument choices and Mermaid source, and the
raw ``.svg`` and ``.mmd`` downloads.

Every page needs a signed-in, verified person (the middleware sees to that, as for every page).
Nothing changes state here, so there is no service and no audit event: the views draw from live
data on each request. The SVG goes into the page unescaped only because ``docs.diagrams``
escapes every piece of text it draws (see docs/diagrams/svg.py).
"""

from __future__ import annotations

from itertools import groupby
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from docs import diagrams
from docs.diagrams import Diagram, UnknownArgument, UnknownDiagram

MAX_ARGUMENT = 100


def _links(name: str, argument: str) -> dict[str, str]:
    query = f"?{urlencode({'arg': argument})}" if argument else ""
    return {
        "page": reverse("docs:diagram", kwargs={"name": name}) + query,
        "svg": reverse("docs:diagram_svg", kwargs={"name": name}) + query,
        "mermaid": reverse("docs:diagram_mermaid", kwargs={"name": name}) + query,
    }


def _argument(request: HttpRequest) -> str:
    return request.GET.get("arg", "").strip()[:MAX_ARGUMENT]


def _not_found(request: HttpRequest, message: str, diagram: Diagram | None = None) -> HttpResponse:
    return render(
        request,
        "docs/diagrams/not_found.html",
        {
            "message": message,
            "diagram": diagram,
            "choices": _choices(diagram, "") if diagram else [],
            "diagrams": list(diagrams.DIAGRAMS.values()),
        },
        status=404,
    )


def _choices(diagram: Diagram, current: str) -> list[dict[str, object]]:
    """The diagram's arguments as link groups ("Tier", "Environment"), current one marked."""
    groups = []
    for group, items in groupby(diagram.choices(), key=lambda c: c.group):
        groups.append(
            {
                "name": group,
                "links": [
                    {
                        "label": choice.label,
                        "url": _links(diagram.name, choice.value)["page"],
                        "current": choice.value == current,
                    }
                    for choice in items
                ],
            }
        )
    return groups


@require_safe
def diagram_list(request: HttpRequest) -> HttpResponse:
    cards = []
    for diagram in diagrams.DIAGRAMS.values():
        cards.append(
            {
                "diagram": diagram,
                "links": _links(diagram.name, ""),
                "preview": diagram.render_svg(""),
                "choices": _choices(diagram, ""),
            }
        )
    return render(request, "docs/diagrams/list.html", {"cards": cards})


@require_safe
def diagram_page(request: HttpRequest, name: str) -> HttpResponse:
    try:
        diagram = diagrams.get(name)
    except UnknownDiagram as exc:
        return _not_found(request, str(exc))
    argument = _argument(request)
    try:
        svg = diagram.render_svg(argument)
        source = diagram.render_mermaid(argument)
    except UnknownArgument as exc:
        return _not_found(request, str(exc), diagram)
    embed = f"{{{{ diagram:{name}{' ' + argument if argument else ''} }}}}"
    return render(
        request,
        "docs/diagrams/page.html",
        {
            "diagram": diagram,
            "argument": argument,
            "svg": svg,
            "mermaid": source,
            "links": _links(name, argument),
            "all_link": _links(name, "")["page"],
            "choices": _choices(diagram, argument),
            "embed": embed,
        },
    )


@require_safe
def diagram_svg(request: HttpRequest, name: str) -> HttpResponse:
    try:
        svg = diagrams.render_svg(name, _argument(request))
    except UnknownDiagram as exc:  # no such diagram, or no such argument
        return HttpResponse(str(exc), status=404, content_type="text/plain; charset=utf-8")
    response = HttpResponse(
        '<?xml version="1.0" encoding="UTF-8"?>\n' + svg,
        content_type="image/svg+xml; charset=utf-8",
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@require_safe
def diagram_mermaid(request: HttpRequest, name: str) -> HttpResponse:
    argument = _argument(request)
    try:
        source = diagrams.render_mermaid(name, argument)
    except UnknownDiagram as exc:
        return HttpResponse(str(exc), status=404, content_type="text/plain; charset=utf-8")
    filename = slugify(f"{name} {argument}") or "diagram"
    response = HttpResponse(source, content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.mmd"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
