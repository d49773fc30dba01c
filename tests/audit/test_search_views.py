"""The auditor pages: ledger search with keyset pages, and one event with its inclusion proof."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit import ledger
from audit.checkpoints import checkpoint_sign
from audit.db import install_append_only, remove_append_only
from audit.models import AuditEvent
from audit.services import record
from tests.audit.clock import step_database_clock

pytestmark = pytest.mark.django_db

T0 = datetime(2030, 3, 1, 9, 0, tzinfo=UTC)


def _shown(response) -> list[int]:
    return [event.sequence for event in response.context["page"].events]


def _link(response, cursor: str) -> str | None:
    """The href of the page's Newer (``after``) or Older (``before``) link, unescaped."""
    match = re.search(rf'href="(\?[^"]*\b{cursor}=\d+)"', response.content.decode())
    return html.unescape(match[1]) if match else None


@pytest.fixture
def fixed_clock(monkeypatch) -> Iterator[list[datetime]]:
    """Events recorded from here on get the times in this list, in order (one hour apart)."""
    times = [T0 + timedelta(hours=n) for n in range(500)]
    step_database_clock(monkeypatch, times)
    yield times


@pytest.fixture
def auditor_client(verified_client, auditor):
    return verified_client(auditor)


@pytest.fixture
def sample(
    auditor_client, auditor, requester, owner, security_admin, fixed_clock
) -> dict[str, AuditEvent]:
    """The auditor's sign-in (now), then five events at 09:00 ... 13:00 UTC on 1 March 2030."""
    return {
        "auditor_login": AuditEvent.objects.get(actor_id=auditor.pk, action="auth.login"),
        "login": record(actor=requester, action="auth.login", target=requester),
        "mfa_failed": record(
            actor=requester, action="auth.mfa.failed", target=requester, data={"why": "reused"}
        ),
        "deactivated": record(
            actor=security_admin,
            action="user.deactivated",
            target=owner,
            data={"reason": "left the company", "office": "Zürich"},
        ),
        "login_failed": record(
            actor=None, action="auth.login.failed", data={"email": "mallory@example.net"}
        ),
        "system_changed": record(
            actor=security_admin,
            action="admin.object.changed",
            target=("accessreq.system", 7, "payments-service"),
            data={"changed": ["name"]},
        ),
    }


# --- Access -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["/audit/", "/audit/events/1/"])
def test_anonymous_is_sent_to_sign_in(client, url) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("persona", ["outsider", "requester", "manager", "owner"])
@pytest.mark.parametrize("url", ["/audit/", "/audit/?action=auth.", "/audit/events/1/"])
def test_everyone_else_gets_not_found(request, verified_client, sample, persona, url) -> None:
    client = verified_client(request.getfixturevalue(persona))
    response = client.get(url)
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert client.post(url).status_code == 404  # not 405: nothing says the page exists


@pytest.mark.parametrize("persona", ["auditor", "security_admin"])
def test_auditors_and_security_admins_can_read(request, verified_client, sample, persona) -> None:
    client = verified_client(request.getfixturevalue(persona))
    search = client.get("/audit/")
    assert search.status_code == 200
    assert 'href="/audit/" aria-current="page">' in search.content.decode()
    sequence = sample["deactivated"].sequence
    detail = client.get(f"/audit/events/{sequence}/")
    assert detail.status_code == 200
    assert f"Event #{sequence}" in detail.content.decode()


def test_audit_is_not_in_the_navigation_of_others(verified_client, requester) -> None:
    assert 'href="/audit/"' not in verified_client(requester).get("/").content.decode()


# --- Search -----------------------------------------------------------------------------------


def test_lists_newest_first_with_the_columns(auditor_client, sample) -> None:
    response = auditor_client.get("/audit/")
    assert response.status_code == 200
    shown = _shown(response)
    assert shown == sorted(shown, reverse=True)
    assert set(shown) >= {event.sequence for event in sample.values()}
    page = response.content.decode()
    event = sample["deactivated"]
    assert f'href="/audit/events/{event.sequence}/"' in page
    assert "2030-03-01 11:00:00" in page  # UTC
    assert "Sam Security &lt;sam@example.com&gt;" in page
    assert 'title="A person&#x27;s account was deactivated and their sessions ended"' in page
    assert "Omar Owner" in page and "portal.user" in page


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor=SAM+security", {"deactivated", "system_changed"}),
        ("actor=anonymous", {"login_failed"}),
        ("action=auth.mfa.failed", {"mfa_failed"}),
        ("action=auth.", {"auditor_login", "login", "mfa_failed", "login_failed"}),
        ("action=auth.login", {"auditor_login", "login"}),
        ("target=payments", {"system_changed"}),
        ("target=accessreq.system", {"system_changed"}),
        ("target=7", {"system_changed"}),
        ("target=OMAR", {"deactivated"}),
        ("q=deactivated", {"deactivated"}),
        ("q=mallory", {"login_failed"}),
        ("q=company+LEFT", {"deactivated"}),
        ("q=zürich", {"deactivated"}),
        ("q=%22why%22", {"mfa_failed"}),
        ("action=auth.&actor=dev+requester", {"login", "mfa_failed"}),
        (
            "since=2030-03-01T11:00",
            {"deactivated", "login_failed", "system_changed"},
        ),
        # The auditor signed in "now", before the sample's 2030 clock.
        ("until=2030-03-01T11:00", {"auditor_login", "login", "mfa_failed"}),
        ("since=2030-03-01T10:00&until=2030-03-01T12:00:00", {"mfa_failed", "deactivated"}),
        ("q=nothing-like-this", set()),
    ],
)
def test_each_filter_narrows(auditor_client, sample, settings, query, expected) -> None:
    # Times in the form are UTC even where the server's zone is half a day away.
    settings.TIME_ZONE = "Pacific/Auckland"
    response = auditor_client.get("/audit/?" + query)
    assert response.status_code == 200, response.context["form"].errors
    names = {name for name, event in sample.items() if event.sequence in _shown(response)}
    assert names == expected
    # Nothing else slips through either (the auditor's own sign-in happened in real time).
    assert len(_shown(response)) == len(expected)
    if not expected:
        assert "No event matches your search" in response.content.decode()


def test_actor_and_target_by_id(auditor_client, sample, requester, owner) -> None:
    by_actor = auditor_client.get(f"/audit/?actor={requester.pk}")
    assert set(_shown(by_actor)) == {sample["login"].sequence, sample["mfa_failed"].sequence}
    by_target = auditor_client.get(f"/audit/?target=portal.user:{owner.pk}")
    assert _shown(by_target) == [sample["deactivated"].sequence]


def test_search_by_the_auditors_own_name_finds_their_sign_in(auditor_client, auditor, sample):
    response = auditor_client.get("/audit/?actor=alex+auditor")
    events = response.context["page"].events
    assert [event.action for event in events] == ["auth.login"]
    assert events[0].actor_id == auditor.pk


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("since=yesterday", "Enter a date and time as YYYY-MM-DD HH:MM, 24-hour, UTC"),
        ("until=2030-02-30T10:00", "Enter a date and time as YYYY-MM-DD HH:MM, 24-hour, UTC"),
        ("action=auth.bogus", "Select a valid choice."),
        ("action=%00", "Select a valid choice."),
        ("q=a%00b", "Null characters are not allowed."),
        ("actor=%00", "Null characters are not allowed."),
        ("target=" + "x" * 201, "Ensure this value has at most 200 characters"),
        ("since=2030-03-02T00:00&until=2030-03-01T00:00", "“To” must be later than “From”."),
        ("before=abc", "This page link is not valid."),
        ("after=-5", "This page link is not valid."),
        ("before=99999999999999999999", "This page link is not valid."),
        ("before=5&after=3", "This page link is not valid."),
        ("before=%00", "This page link is not valid."),
    ],
)
def test_bad_input_is_a_form_error_not_a_crash(auditor_client, sample, query, message) -> None:
    response = auditor_client.get("/audit/?" + query)
    assert response.status_code == 400
    assert html.escape(message) in response.content.decode()
    assert "<table" not in response.content.decode()


# --- Keyset pages -----------------------------------------------------------------------------


def test_keyset_pages_walk_every_match_exactly_once(auditor_client, security_admin) -> None:
    matching = set()
    for n in range(130):
        action = "user.changed" if n % 3 else "user.created"
        event = record(actor=security_admin, action=action, target=("portal.user", n, f"P{n}"))
        if action == "user.changed":
            matching.add(event.sequence)
    assert len(matching) == 86

    query: str | None = "?action=user.changed&actor=sam"
    seen: list[int] = []
    pages: list[list[int]] = []
    with CaptureQueriesContext(connection) as queries:
        while query:
            response = auditor_client.get("/audit/" + query)
            assert response.status_code == 200
            pages.append(_shown(response))
            seen.extend(_shown(response))
            query = _link(response, "before")
            if query:
                assert "action=user.changed" in query and "actor=sam" in query
    assert [len(page) for page in pages] == [50, 36]
    assert seen == sorted(matching, reverse=True)  # newest first, each exactly once
    # The ledger queries; the navigation's "waiting for you" badge counts its own small table.
    sql = " ".join(
        query["sql"].upper()
        for query in queries.captured_queries
        if "audit_auditevent" in query["sql"]
    )
    assert "AUDIT_AUDITEVENT" in sql
    assert " OFFSET " not in sql and "COUNT(" not in sql

    # And back: "Newer" from the last page gives the first page again, and no further link.
    last = auditor_client.get("/audit/" + _link_to(pages, -1, "before"))
    newer = _link(last, "after")
    assert newer is not None and "action=user.changed" in newer
    first_again = auditor_client.get("/audit/" + newer)
    assert _shown(first_again) == pages[0]
    assert _link(first_again, "after") is None
    assert _link(first_again, "before") is not None


def _link_to(pages: list[list[int]], index: int, cursor: str) -> str:
    """The query string that opens ``pages[index]`` by its predecessor's last sequence."""
    return f"?action=user.changed&actor=sam&{cursor}={pages[index - 1][-1]}"


def test_a_page_past_the_end_offers_the_way_back(auditor_client, sample) -> None:
    response = auditor_client.get("/audit/?before=1&action=auth.")
    assert response.status_code == 200
    page = response.content.decode()
    assert "No more events this way" in page
    assert 'href="?action=auth.">Back to the newest events' in page


# --- One event --------------------------------------------------------------------------------


def test_event_shows_every_field_and_pretty_data(auditor_client, sample, owner) -> None:
    event = sample["deactivated"]
    response = auditor_client.get(f"/audit/events/{event.sequence}/")
    page = response.content.decode()
    assert "user.deactivated" in page and "A person&#x27;s account was deactivated" in page
    assert "2030-03-01 11:00:00.000000" in page
    assert "Sam Security &lt;sam@example.com&gt;" in page
    assert '<pre class="audit-json">{\n  &quot;office&quot;: &quot;Zürich&quot;,' in page
    assert event.leaf_hash in page and event.prev_hash in page
    assert event.code_version in page and event.deployment in page
    assert f'href="/audit/?target=portal.user%3A{owner.pk}">Other events for this target' in page
    assert f'href="/audit/?actor={event.actor_id}">Other events by this actor' in page
    assert f'href="/audit/events/{event.sequence - 1}/" rel="prev"' in page
    assert f'href="/audit/events/{event.sequence + 1}/" rel="next"' in page


def test_inclusion_proof_before_and_after_the_checkpoint(auditor_client, security_admin, sample):
    event = sample["mfa_failed"]
    before = auditor_client.get(f"/audit/events/{event.sequence}/")
    assert "signed in the next checkpoint, within 5 minutes" in before.content.decode()
    assert "Not yet signed" in before.content.decode()
    assert not before.context["check"].verified

    checkpoint = checkpoint_sign(actor=security_admin)
    assert checkpoint is not None

    after = auditor_client.get(f"/audit/events/{event.sequence}/")
    page = after.content.decode()
    check = after.context["check"]
    assert check.verified and check.included and check.signature_ok
    assert '<span class="status status--ok">Verified</span>' in page
    assert "within 5 minutes" not in page
    assert checkpoint.root_hash in page and checkpoint.key_id in page
    assert f"<dd>{checkpoint.tree_size}</dd>" in page
    proof = [node.hex() for node in ledger.inclusion_proof(event.sequence, checkpoint.tree_size)]
    assert proof and check.path == proof
    for node in proof:
        assert f'<code class="hash">{node}</code>' in page


def test_a_changed_event_is_shown_as_not_verified(auditor_client, security_admin, sample):
    checkpoint_sign(actor=security_admin)
    event = sample["deactivated"]
    # Lift the append-only triggers for a moment, as an attacker with database access could.
    remove_append_only(connection)
    AuditEvent.objects.filter(pk=event.pk).update(data={"reason": "routine"})
    install_append_only(connection)

    response = auditor_client.get(f"/audit/events/{event.sequence}/")
    page = response.content.decode()
    assert response.context["check"].content_ok is False
    assert '<span class="status status--bad">Not verified</span>' in page
    assert "the event was changed after it was written" in page


def test_admin_links_to_the_target_for_those_who_may_open_them(
    verified_client, security_admin, auditor, sample, owner
) -> None:
    event = sample["deactivated"]
    admin = verified_client(security_admin)
    page = admin.get(f"/audit/events/{event.sequence}/").content.decode()
    assert f'href="/admin/portal/user/{owner.pk}/change/">Open in the admin' in page
    assert f'href="/admin/portal/user/{owner.pk}/history/">Change history' in page
    assert admin.get(f"/admin/portal/user/{owner.pk}/history/").status_code == 200

    # Auditors do not use the admin: they learn that the record exists, without dead links.
    auditor_page = verified_client(auditor).get(f"/audit/events/{event.sequence}/")
    assert "/admin/portal/user/" not in auditor_page.content.decode()
    assert "The record still exists" in auditor_page.content.decode()


def test_no_admin_link_when_the_target_is_gone(verified_client, security_admin) -> None:
    event = record(actor=security_admin, action="user.changed", target=("portal.user", 987654, "X"))
    response = verified_client(security_admin).get(f"/audit/events/{event.sequence}/")
    page = response.content.decode()
    assert "The record no longer exists." in page
    assert "/admin/portal/user/987654" not in page


@pytest.mark.parametrize("sequence", ["999999", "99999999999999999999999"])
def test_unknown_event_is_not_found(auditor_client, sample, sequence) -> None:
    assert auditor_client.get(f"/audit/events/{sequence}/").status_code == 404


# --- Query counts -----------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?action=user.&q=changed&actor=sam"])
def test_search_query_count_does_not_grow_with_rows(
    auditor_client, security_admin, django_assert_max_num_queries, query
) -> None:
    def add(count: int) -> None:
        for n in range(count):
            record(actor=security_admin, action="user.changed", target=("portal.user", n, "P"))

    add(10)
    auditor_client.get("/audit/" + query)  # warm the session
    with django_assert_max_num_queries(8) as small:
        response = auditor_client.get("/audit/" + query)
    assert len(_shown(response)) >= 10
    add(190)
    with django_assert_max_num_queries(len(small.captured_queries)):
        response = auditor_client.get("/audit/" + query)
    assert len(_shown(response)) == 50
    older = _link(response, "before")
    assert older is not None
    with django_assert_max_num_queries(len(small.captured_queries) + 1):
        assert auditor_client.get("/audit/" + older).status_code == 200


def test_a_family_is_accepted_as_the_help_text_writes_it(auditor_client, sample) -> None:
    starred = auditor_client.get("/audit/?action=auth.*")
    dotted = auditor_client.get("/audit/?action=auth.")
    assert starred.status_code == dotted.status_code == 200
    assert [e.pk for e in starred.context["page"].events] == [
        e.pk for e in dotted.context["page"].events
    ]
    assert '<option value="auth." selected>' in starred.content.decode()
    assert auditor_client.get("/audit/?action=request.*").status_code == 200
    assert auditor_client.get("/audit/?action=nonsense.*").status_code == 400
