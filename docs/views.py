"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def index(request: Any, **kwargs: Any) -> Any:
    raise Http404


def search(request: Any, **kwargs: Any) -> Any:
    raise Http404


def runbook_new(request: Any, **kwargs: Any) -> Any:
    raise Http404


def runbook_preview(request: Any, **kwargs: Any) -> Any:
    raise Http404


def runbook_detail(request: Any, **kwargs: Any) -> Any:
    raise Http404


def runbook_edit(request: Any, **kwargs: Any) -> Any:
    raise Http404


def runbook_history(request: Any, **kwargs: Any) -> Any:
    raise Http404
