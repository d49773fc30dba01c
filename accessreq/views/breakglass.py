"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def break_glass(request: Any, **kwargs: Any) -> Any:
    raise Http404


def break_glass_review(request: Any, **kwargs: Any) -> Any:
    raise Http404
