"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def campaign_list(request: Any, **kwargs: Any) -> Any:
    raise Http404


def campaign_launch(request: Any, **kwargs: Any) -> Any:
    raise Http404


def campaign_detail(request: Any, **kwargs: Any) -> Any:
    raise Http404


def campaign_close(request: Any, **kwargs: Any) -> Any:
    raise Http404


def campaign_cancel(request: Any, **kwargs: Any) -> Any:
    raise Http404


def campaign_evidence(request: Any, **kwargs: Any) -> Any:
    raise Http404
