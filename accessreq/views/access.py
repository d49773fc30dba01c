"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def my_access(request: Any, **kwargs: Any) -> Any:
    raise Http404


def managed_access(request: Any, **kwargs: Any) -> Any:
    raise Http404


def grant_detail(request: Any, **kwargs: Any) -> Any:
    raise Http404


def grant_revoke(request: Any, **kwargs: Any) -> Any:
    raise Http404


def grant_extend(request: Any, **kwargs: Any) -> Any:
    raise Http404
