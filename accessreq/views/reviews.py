"""Placeholder: being built."""

from typing import Any

from django.http import Http404


def my_reviews(request: Any, **kwargs: Any) -> Any:
    raise Http404


def review_decide(request: Any, **kwargs: Any) -> Any:
    raise Http404


def review_reassign(request: Any, **kwargs: Any) -> Any:
    raise Http404


def reviews_bulk_certify(request: Any, **kwargs: Any) -> Any:
    raise Http404
