"""Security headers on every page (issue 15, point 13): each address of the URL configuration,
opened by a signed-in security admin (and anonymously), answers with a CSP that allows no inline
or evaluated script and no framing, nosniff, a same-origin referrer policy and frame denial.
Production's HSTS, secure cookies and ``check --deploy`` are tests/portal/test_config.py."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.security.test_url_sweep import _paths

pytestmark = pytest.mark.django_db


def _problems(path: str, response) -> list[str]:
    found = []
    csp = response.get("Content-Security-Policy", "")
    directives = {
        part.strip().split(" ", 1)[0]: part.strip() for part in csp.split(";") if part.strip()
    }
    scripts = directives.get("script-src", directives.get("default-src", ""))
    if not scripts or "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts:
        found.append(f"{path}: script-src {scripts!r}")
    if "frame-ancestors 'none'" not in csp and response.get("X-Frame-Options") != "DENY":
        found.append(f"{path}: framing allowed")
    if response.get("X-Content-Type-Options") != "nosniff":
        found.append(f"{path}: no nosniff")
    if response.get("Referrer-Policy") != "same-origin":
        found.append(f"{path}: Referrer-Policy {response.get('Referrer-Policy')!r}")
    return found


def test_every_page_sends_the_security_headers(verified_client, security_admin) -> None:
    signed_in, anonymous = verified_client(security_admin), Client()
    problems, pages = [], 0
    for path in _paths():
        if path.startswith(("/api/", "/scim/v2/", "/metrics", "/accounts/logout/")):
            continue  # JSON for machines (their headers: tests/accessreq/api), and signing out
        for client in (signed_in, anonymous):
            response = client.get(path)
            if response.get("Content-Type", "").startswith("text/html"):
                pages += 1
                problems += _problems(path, response)
    assert problems == []
    assert pages > 100


def test_an_admin_history_address_with_a_bad_id_is_a_404(verified_client, security_admin) -> None:
    client = verified_client(security_admin)
    for path in ("/admin/portal/user/x/history/", "/admin/portal/user/x/history/1/"):
        assert client.get(path).status_code == 404, path
    assert client.get(f"/admin/portal/user/{security_admin.pk}/history/").status_code == 200
