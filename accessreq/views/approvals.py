"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def inbox(request: Any, **kwargs: Any) -> Any:
    raise Http404


def decide(request: Any, **kwargs: Any) -> Any:
    raise Http404


def bulk_approve(request: Any, **kwargs: Any) -> Any:
    raise Http404


def delegation(request: Any, **kwargs: Any) -> Any:
    raise Http404


def delegation_cancel(request: Any, **kwargs: Any) -> Any:
    raise Http404
