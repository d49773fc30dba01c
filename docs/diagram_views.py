"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def diagram_list(request: Any, **kwargs: Any) -> Any:
    raise Http404


def diagram_page(request: Any, **kwargs: Any) -> Any:
    raise Http404


def diagram_svg(request: Any, **kwargs: Any) -> Any:
    raise Http404


def diagram_mermaid(request: Any, **kwargs: Any) -> Any:
    raise Http404
