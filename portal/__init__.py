"""The Gatehouse Django project: settings, URLs, Celery app, people and MFA enforcement."""

from portal.celery import app as celery_app

__all__ = ("celery_app",)
