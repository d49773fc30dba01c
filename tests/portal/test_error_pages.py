"""Every error a person can meet is a styled portal page, never a debug page or a blank one."""

from __future__ import annotations

from django.test import Client

from audit.models import AuditEvent

DEBUG_PAGE_MARKERS = ("Using the URLconf", "Traceback", "DEBUG = True")


def _assert_styled(response, heading: str) -> str:
    body = response.content.decode()
    assert f"<h1>{heading}</h1>" in body
    assert 'class="site-header"' in body
    for marker in DEBUG_PAGE_MARKERS:
        assert marker not in body
    return body


def test_unknown_address_for_anonymous_is_the_styled_not_found_page(client) -> None:
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    _assert_styled(response, "Page not found")


def test_someone_elses_request_is_not_found_with_the_navigation(verified_client, outsider) -> None:
    response = verified_client(outsider).get("/requests/999999/")
    assert response.status_code == 404
    body = _assert_styled(response, "Page not found")
    assert 'aria-label="Main"' in body  # still inside the portal: the way back is on the page


def test_audit_for_a_developer_is_not_found(verified_client, requester) -> None:
    response = verified_client(requester).get("/audit/")
    assert response.status_code == 404
    _assert_styled(response, "Page not found")


BROWSER = {"HTTP_ACCEPT": "text/html,application/xhtml+xml,*/*;q=0.8"}


def test_get_on_a_post_only_address_explains_instead_of_a_blank_page(
    verified_client, security_admin
) -> None:
    response = verified_client(security_admin).get("/campaigns/launch/", **BROWSER)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    body = _assert_styled(response, "This address is for sending a form")
    assert "GET" in body


def test_outsider_gets_the_same_page_and_learns_nothing_about_campaigns(
    verified_client, outsider
) -> None:
    client = verified_client(outsider)
    response = client.get("/campaigns/launch/", **BROWSER)
    assert response.status_code == 405
    _assert_styled(response, "This address is for sending a form")
    assert client.post("/campaigns/launch/").status_code == 404


def test_post_only_address_anonymous_goes_to_sign_in(client) -> None:
    response = client.get("/campaigns/launch/", **BROWSER)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_scripts_get_the_bare_answer(client, verified_client, security_admin) -> None:
    assert client.post("/healthz", HTTP_ACCEPT="application/json").content == b""
    response = verified_client(security_admin).get("/campaigns/launch/", HTTP_ACCEPT="*/*")
    assert response.status_code == 405
    assert response.content == b""


def test_a_form_without_its_csrf_token_says_how_to_recover(verified_client, requester) -> None:
    client = verified_client(requester)
    strict = Client(enforce_csrf_checks=True)
    strict.cookies = client.cookies
    response = strict.post("/accounts/logout/")
    assert response.status_code == 403
    body = _assert_styled(response, "Not allowed")
    assert "reload the page and send the form again" in body
    assert not AuditEvent.objects.filter(action="auth.logout").exists()


def test_a_bad_host_header_gets_the_styled_bad_request_page(client) -> None:
    response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    _assert_styled(response, "Request not understood")
