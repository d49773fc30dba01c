"""Diagram pages: closed to anonymous visitors, open to every verified person, 404 for unknown
names and arguments, live on every load, and safe with hostile names in the catalog."""

from __future__ import annotations

import pytest

from accessreq.models import ApprovalPolicy, RiskTier
from tests.factories import EntitlementFactory, EnvironmentFactory, SystemFactory

URLS = [
    "/docs/diagrams/",
    "/docs/diagrams/approval-chain/",
    "/docs/diagrams/approval-chain.svg",
    "/docs/diagrams/approval-chain.mmd",
]
NAMES = ["request-lifecycle", "campaign-lifecycle", "approval-chain", "roles-matrix"]


@pytest.fixture
def prod(db):
    env = EnvironmentFactory(name="prod", slug="prod", risk_tier=RiskTier.HIGH)
    EntitlementFactory(
        system=SystemFactory(name="payments-service", slug="payments-service"),
        environment=env,
        name="Deployer",
        scopes=["deploy", "rollback"],
        emergency_capable=True,
    )
    return env


@pytest.mark.django_db
@pytest.mark.parametrize("url", URLS)
def test_anonymous_is_sent_to_sign_in(client, url) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_signed_in_without_second_factor_is_sent_to_verify(client, outsider) -> None:
    client.force_login(outsider)
    response = client.get("/docs/diagrams/roles-matrix/")
    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/")


@pytest.mark.django_db
def test_list_shows_every_diagram_with_a_preview(verified_client, outsider, prod) -> None:
    response = verified_client(outsider).get("/docs/diagrams/")
    assert response.status_code == 200
    html = response.content.decode()
    for name in NAMES:
        assert f'href="/docs/diagrams/{name}/"' in html
    assert html.count('class="diagram-svg') == len(NAMES)
    assert 'href="/docs/diagrams/approval-chain/?arg=prod"' in html
    assert "css/diagrams.css" in html


@pytest.mark.django_db
@pytest.mark.parametrize("name", NAMES)
def test_each_diagram_page_draws_inline_with_its_mermaid(
    verified_client, outsider, prod, name
) -> None:
    response = verified_client(outsider).get(f"/docs/diagrams/{name}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-diagram="{name}"' in html and 'role="img"' in html
    assert 'id="mermaid-source"' in html
    assert f'href="/docs/diagrams/{name}.mmd"' in html
    assert f'href="/docs/diagrams/{name}.svg"' in html
    assert f"{{{{ diagram:{name} }}}}" in html
    assert "Print" in html


@pytest.mark.django_db
def test_page_offers_the_arguments_and_marks_the_current_one(
    verified_client, outsider, prod
) -> None:
    html = verified_client(outsider).get("/docs/diagrams/approval-chain/?arg=prod").content.decode()
    assert '<a href="/docs/diagrams/approval-chain/?arg=prod" aria-current="page">' in html
    assert 'href="/docs/diagrams/approval-chain/?arg=critical"' in html
    assert "{{ diagram:approval-chain prod }}" in html
    assert 'href="/docs/diagrams/approval-chain.mmd?arg=prod"' in html
    assert 'data-chain="tier-high"' in html


@pytest.mark.django_db
def test_svg_download(verified_client, outsider, prod) -> None:
    response = verified_client(outsider).get("/docs/diagrams/roles-matrix.svg?arg=prod")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml; charset=utf-8"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'self'" in response["Content-Security-Policy"]
    body = response.content.decode()
    assert body.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns=')
    assert 'data-environment="prod"' in body


@pytest.mark.django_db
def test_mermaid_download(verified_client, outsider, prod) -> None:
    response = verified_client(outsider).get("/docs/diagrams/approval-chain.mmd?arg=prod")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="approval-chain-prod.mmd"'
    assert response.content.decode().startswith("flowchart LR\n")


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/docs/diagrams/nope/",
        "/docs/diagrams/nope.svg",
        "/docs/diagrams/nope.mmd",
    ],
)
def test_unknown_diagram_is_404(verified_client, outsider, url) -> None:
    response = verified_client(outsider).get(url)
    assert response.status_code == 404
    assert "no diagram called “nope”" in response.content.decode()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/docs/diagrams/roles-matrix.svg?arg=nowhere", "no environment called “nowhere”"),
        ("/docs/diagrams/approval-chain.mmd?arg=nowhere", "no risk tier or environment"),
        ("/docs/diagrams/request-lifecycle/?arg=prod", "takes no argument"),
    ],
)
def test_unknown_argument_is_404_with_a_clear_message(
    verified_client, outsider, prod, url, message
) -> None:
    response = verified_client(outsider).get(url)
    assert response.status_code == 404
    assert message in response.content.decode()


@pytest.mark.django_db
def test_unknown_argument_page_links_the_arguments_that_exist(
    verified_client, outsider, prod
) -> None:
    response = verified_client(outsider).get("/docs/diagrams/roles-matrix/?arg=nowhere")
    assert response.status_code == 404
    html = response.content.decode()
    assert "There is no environment called “nowhere”. Choose one of: prod." in html
    assert 'href="/docs/diagrams/roles-matrix/?arg=prod"' in html


@pytest.mark.django_db
def test_a_policy_change_shows_on_the_next_page_load(verified_client, outsider, prod) -> None:
    client = verified_client(outsider)
    before = client.get("/docs/diagrams/approval-chain/?arg=high").content.decode()
    assert 'data-quorum="2"' not in before
    stage = ApprovalPolicy.objects.get(tier=RiskTier.HIGH).stages.get(position=2)
    stage.quorum = 2
    stage.save()
    after = client.get("/docs/diagrams/approval-chain/?arg=high").content.decode()
    assert 'data-position="2" data-rule="system_owner" data-quorum="2"' in after
    assert "2 approvals, different people" in after
    assert (
        "System owner, 2 approvals, different people"
        in client.get("/docs/diagrams/approval-chain.mmd?arg=high").content.decode()
    )


@pytest.mark.django_db
def test_hostile_catalog_names_are_escaped_on_the_page(verified_client, outsider, prod) -> None:
    EntitlementFactory(
        system=SystemFactory(name="<script>alert(1)</script>"),
        environment=prod,
        name="<script>alert(2)</script>",
        scopes=["deploy"],
    )
    client = verified_client(outsider)
    for url in ["/docs/diagrams/roles-matrix/?arg=prod", "/docs/diagrams/roles-matrix/"]:
        html = client.get(url).content.decode()
        assert "<script>alert(" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    svg = client.get("/docs/diagrams/roles-matrix.svg?arg=prod").content.decode()
    assert "<script>alert(" not in svg and "&lt;script&gt;alert(2)&lt;/script&gt;" in svg


@pytest.mark.django_db
def test_pages_change_nothing(verified_client, outsider, prod) -> None:
    from audit.models import AuditEvent

    client = verified_client(outsider)
    before = AuditEvent.objects.count()
    for name in NAMES:
        assert client.get(f"/docs/diagrams/{name}/").status_code == 200
    assert client.post("/docs/diagrams/roles-matrix/").status_code == 405
    assert AuditEvent.objects.count() == before
