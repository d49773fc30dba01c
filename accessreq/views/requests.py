"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def request_new(request: Any, **kwargs: Any) -> Any:
    raise Http404


def my_requests(request: Any, **kwargs: Any) -> Any:
    raise Http404


def request_detail(request: Any, **kwargs: Any) -> Any:
    raise Http404


def request_withdraw(request: Any, **kwargs: Any) -> Any:
    raise Http404
