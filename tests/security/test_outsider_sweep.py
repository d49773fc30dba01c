"""An outsider (signed in with both factors, owning, approving and holding nothing) opens every
address of the URL configuration, each parameter filled with a real object of someone else's:
none of those objects is shown (issue 15, point 14). Pages without a parameter are the person's
own lists and the shared catalog and docs; what they may list is in their own tests."""

from __future__ import annotations

import pytest
from django.urls import get_resolver

from tests.accessreq.test_auditor_read_only import _PARAM, _patterns, sweep_values

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("signing_key_file")]

# The admin refuses non-staff at its own login (tests/portal/test_people.py); bearer endpoints
# have no session.
SKIPPED = ("accounts/", "mfa/", "account/", "api/", "scim/v2", "admin/", "healthz", "metrics")
# Parameters that name something everyone may read: a runbook, a diagram, a file format, an
# entitlement of the catalog.
SHARED = {"slug", "name", "fmt", "entitlement_id"}
ALLOWED = {403, 404, 405}  # 405: a POST-only address, opened by GET


def test_an_outsider_sees_no_one_else_s_objects(
    verified_client, outsider, auditor, requester, manager, owner, security_admin
) -> None:
    values = sweep_values(requester, manager, owner, security_admin, auditor)
    client = verified_client(outsider)
    shown, swept = [], 0
    for pattern in _patterns(get_resolver().url_patterns):
        path = pattern.lstrip("^").rstrip("$").replace("\\Z", "")
        params = {name for _, name in _PARAM.findall(path)}
        if path.startswith(SKIPPED) or not params or params <= SHARED or "(?P<" in path:
            continue
        url = "/" + _PARAM.sub(lambda m: str(values[m.group(2)]), path)
        response = client.get(url)
        swept += 1
        if response.status_code not in ALLOWED and not (
            response.status_code == 302 and "/admin/login/" in response["Location"]
        ):
            shown.append(f"{url} {response.status_code}")
    assert shown == [], "an outsider was shown someone else's object"
    assert swept >= 30
