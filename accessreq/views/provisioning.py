"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def task_list(request: Any, **kwargs: Any) -> Any:
    raise Http404


def task_confirm(request: Any, **kwargs: Any) -> Any:
    raise Http404


def task_retry(request: Any, **kwargs: Any) -> Any:
    raise Http404
