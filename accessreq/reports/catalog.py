"""Importing this module registers every report (the order is the order of the index page)."""

from accessreq.reports import access_as_of, approvals, attempts  # noqa: F401
