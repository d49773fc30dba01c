"""The workflow pages link to the runbook that explains them, and those runbooks exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings

from accessreq.models import RiskTier
from docs.services import runbook_seed
from portal.roles import ON_CALL
from tests.factories import EntitlementFactory, EnvironmentFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("page", "slug"),
    [
        ("request", "requesting-access"),
        ("/approvals/", "approving-access"),
        ("/break-glass/", "break-glass"),
    ],
)
def test_page_links_its_runbook(verified_client, page: str, slug: str) -> None:
    runbook_seed(directory=Path(settings.BASE_DIR) / "docs" / "runbooks")
    person = UserFactory(groups=[ON_CALL])
    entitlement = EntitlementFactory(
        environment=EnvironmentFactory(slug="dev", risk_tier=RiskTier.LOW)
    )
    client = verified_client(person)
    url = f"/catalog/{entitlement.pk}/request/" if page == "request" else page
    html = client.get(url).content.decode()
    links = re.findall(
        r'class="help-link"[^>]*href="([^"]+)"|href="([^"]+)"[^>]*class="help-link"', html
    )
    targets = {a or b for a, b in links}
    assert f"/docs/runbooks/{slug}/" in targets
    assert client.get(f"/docs/runbooks/{slug}/").status_code == 200
