"""Importing this module registers every report (the order is the order of the index page)."""

# isort: off
from accessreq.reports import access_as_of, approvals  # noqa: F401
from accessreq.reports import breakglass, leavers, dormant  # noqa: F401
from accessreq.reports import attempts  # noqa: F401
# isort: on
