"""The reviewer page (GET /reviews/) with 10 and with 5,000 review items: queries and server time.

    .venv/bin/python bench/reviewer_page.py --db postgres [--items 5000] [--small 10]
    .venv/bin/python bench/reviewer_page.py --db sqlite

One reviewer, a manager whose reports hold the access under review, in two open campaigns
launched by ``campaign_launch`` from two templates (low/medium tiers, reviewed in 14 days;
high/critical, in 30 days). The page is requested through ``django.test.Client`` as that
reviewer, signed in with a verified second factor (a confirmed TOTP device, ``force_login``,
django-otp's device id and ``mfa_verified_at``/``mfa_method`` in the session, as
``tests/conftest.py`` ``verified_client`` does), with the production middleware, templates and
static files (``collectstatic`` into the scratch var dir; ``DEBUG`` off).

First with ``--small`` items (10): launched, one certified and one handed on through the
services, one holder leaving, one who changed team, one holding both sides of a
separation-of-duties rule. Then the same campaigns grow to ``--items`` (5,000) items: more
grants in scope, the campaigns set back to ``launching`` and ``campaign_launch`` run again (it
resumes past its cursor and adds the new grants' items, as after an interrupted launch), and a
tenth of the new items certified. The same people, catalog and kinds of rows, so the page runs
the same code paths; only the number of items differs.

For each URL (the default list, pending items, page 1; and its last page): the number of
queries of one request (``CaptureQueriesContext``, after one warm-up request), which must be
the same at both sizes, and the server time as the median of ``--requests`` requests
(in-process: middleware, view, queries and template rendering; no network).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import re
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup  # noqa: E402

NO_LOGIN = "!"  # an unusable password hash: nobody signs in with a password here
TIERS = ("low", "medium", "high", "critical")
ENTITLEMENTS = 10
ROW_MARK = re.compile(rb'<tr id="item-\d+"')


def _people(n: int, *, start: int, manager: Any, teams: list[Any]) -> list[Any]:
    from portal.models import User

    return list(
        User.objects.bulk_create(
            User(
                email=f"holder{i}@example.com",
                display_name=f"Holder {i:05d}",
                team=teams[i % len(teams)],
                manager=manager,
                password=NO_LOGIN,
            )
            for i in range(start, start + n)
        )
    )


def _grants(pairs: list[tuple[Any, Any]], *, clock: Any) -> None:
    """Active grants (with their access requests) for (holder, entitlement) pairs."""
    from accessreq.models import AccessRequest, Grant

    starts = clock - timedelta(days=40)
    requests = AccessRequest.objects.bulk_create(
        (
            AccessRequest(
                requester=holder,
                beneficiary=holder,
                entitlement=entitlement,
                justification="Needed for the day job",
                duration=timedelta(days=365),
                state="active",
                created_at=starts,
                decided_at=starts,
            )
            for holder, entitlement in pairs
        ),
        batch_size=2000,
    )
    Grant.objects.bulk_create(
        (
            Grant(
                beneficiary=request.beneficiary,
                entitlement=request.entitlement,
                request=request,
                state="active",
                starts_at=starts,
                expires_at=clock + timedelta(days=200),
                created_at=starts,
                last_used_at=clock - timedelta(days=3) if n % 3 else None,
            )
            for n, request in enumerate(requests)
        ),
        batch_size=2000,
    )


class Fixture:
    """The reviewer, their reports, the catalog, two templates; grows from small to large."""

    def __init__(self, seed: int) -> None:
        from accessreq.models import (
            CampaignTemplate,
            ConflictRule,
            Entitlement,
            Environment,
            System,
        )
        from accessreq.services.common import now
        from portal.models import Team, TOTPDevice, User

        self.clock = now() - timedelta(minutes=5)
        self.teams = list(
            Team.objects.bulk_create(
                Team(name=f"Team {n:02d}", slug=f"team-{n:02d}") for n in range(8)
            )
        )
        boss = User.objects.create(email="boss@example.com", display_name="Bea Boss")
        self.reviewer = User.objects.create(
            email="reviewer@example.com",
            display_name="Rita Reviewer",
            manager=boss,
            team=self.teams[0],
            password=NO_LOGIN,
        )
        device = TOTPDevice.new_for(self.reviewer)
        device.confirmed = True
        device.confirmed_at = self.clock
        device.save()
        self.device = device
        self.admin = User.objects.create(
            email="security-admin@example.com", display_name="Sam Security", password=NO_LOGIN
        )
        self.colleague = User.objects.create(
            email="colleague@example.com",
            display_name="Cole Colleague",
            manager=boss,
            password=NO_LOGIN,
        )
        # Others in the company (the reassign list shows up to 500 people).
        User.objects.bulk_create(
            User(email=f"staff{n}@example.com", display_name=f"Staff {n:04d}", password=NO_LOGIN)
            for n in range(600)
        )
        environments = [
            Environment.objects.create(name=f"env-{t}", slug=f"env-{t}", risk_tier=t) for t in TIERS
        ]
        systems = [
            System.objects.create(name=f"service-{n}", slug=f"service-{n}") for n in range(5)
        ]
        self.entitlements = [
            Entitlement.objects.create(
                system=systems[n % len(systems)],
                environment=environments[n % len(environments)],
                name=f"role {n}",
                slug=f"role-{n}",
            )
            for n in range(ENTITLEMENTS)
        ]
        # Separation of duties: every entitlement is in one rule, so every page of rows looks
        # the rules up and checks what the holders hold now.
        ConflictRule.objects.bulk_create(
            ConflictRule(
                first=self.entitlements[a],
                second=self.entitlements[b],
                reason="Deploying and approving one's own change",
            )
            for a, b in ((0, 2), (1, 3), (4, 5), (6, 7), (8, 9))
        )
        self.templates = [
            CampaignTemplate.objects.create(
                name="Everyday access",
                tiers=["low", "medium"],
                fallback_reviewer=self.admin,
                owner=self.admin,
                duration_days=14,
            ),
            CampaignTemplate.objects.create(
                name="Privileged access",
                tiers=["high", "critical"],
                fallback_reviewer=self.admin,
                owner=self.admin,
                duration_days=30,
            ),
        ]
        self.holders: list[Any] = []
        self.campaign_ids: list[int] = []

    def small(self, items: int) -> None:
        """``items`` grants held by the reviewer's reports, launched, a few decided."""
        from accessreq.models import ReviewItem
        from accessreq.services.campaigns import campaign_launch, item_decide, item_reassign
        from accessreq.services.common import MfaContext
        from portal.models import User

        # Entitlements 0 (low tier) and 2 (high): both campaigns, and every holder holds both
        # sides of the conflict rule.
        both = (self.entitlements[0], self.entitlements[2])
        self.holders = _people(-(-items // 2), start=0, manager=self.reviewer, teams=self.teams)
        pairs = [(self.holders[n // 2], both[n % 2]) for n in range(items)]
        _grants(pairs, clock=self.clock)
        system = User.objects.system_actor()
        self.campaign_ids = [
            campaign_launch(template_id=t.pk, actor=system).pk for t in self.templates
        ]
        mine = list(
            ReviewItem.objects.filter(reviewer=self.reviewer)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        assert len(mine) == items, (len(mine), items)
        fresh = MfaContext("totp", 10)
        item_decide(actor=self.reviewer, item_id=mine[0], decision="certified", mfa=fresh)
        item_reassign(
            actor=self.reviewer,
            item_id=mine[1],
            to=self.colleague,
            reason="Cole runs this team's on-call now",
        )
        leaving, moved = self.holders[0], self.holders[1]
        User.objects.filter(pk=leaving.pk).update(employment_status="leaving")
        User.objects.filter(pk=moved.pk).update(team=self.teams[-1])

    def grow(self, items: int) -> None:
        """More reports and grants, the launches resumed: ``items`` items for the reviewer."""
        from accessreq.models import Campaign, ReviewItem
        from accessreq.services.campaigns import campaign_launch
        from portal.models import User

        have = ReviewItem.objects.filter(reviewer=self.reviewer).count()
        more = items - have
        others = [e for n, e in enumerate(self.entitlements) if n not in (0, 2)]
        per = 5  # five of the eight other entitlements each
        start = len(self.holders)
        holders = _people(-(-more // per), start=start, manager=self.reviewer, teams=self.teams)
        pairs = [(holders[n // per], others[n % len(others)]) for n in range(more)]
        _grants(pairs, clock=self.clock)
        Campaign.objects.filter(pk__in=self.campaign_ids).update(state="launching")
        system = User.objects.system_actor()
        for template in self.templates:
            campaign_launch(template_id=template.pk, actor=system)
        added = ReviewItem.objects.filter(
            reviewer=self.reviewer, grant__beneficiary__in=holders
        ).order_by("pk")
        certify = list(added.values_list("pk", flat=True)[::10])
        ReviewItem.objects.filter(pk__in=certify).update(
            decision="certified",
            decided_by=self.reviewer,
            decided_at=self.clock + timedelta(minutes=1),
            mfa_method="totp",
            mfa_age_seconds=10,
        )


def verified_client(user: Any, device: Any) -> Any:
    """A client signed in as ``user`` with a verified second factor (tests/conftest.py)."""
    from django.test import Client
    from django_otp import DEVICE_ID_SESSION_KEY

    # Not setup_test_environment(): it instruments template rendering for the test client,
    # which then copies the context at every template render (a third of the time at 50 rows).
    # A host name from the development ALLOWED_HOSTS instead of "testserver".
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session["mfa_verified_at"] = time.time()
    session["mfa_method"] = "totp"
    session.save()
    return client


def measure(client: Any, url: str, requests: int) -> dict[str, Any]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    warm = client.get(url)
    if warm.status_code != 200:
        raise SystemExit(f"GET {url} answered {warm.status_code}: {warm.content[:300]!r}")
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, response.status_code
    # Read now: captured_queries slices the connection's log, which the next request clears.
    queries = [q["sql"] for q in captured.captured_queries]
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answered = client.get(url)
        times.append(time.perf_counter() - started)
        assert answered.status_code == 200
    return {
        "url": url,
        "queries": len(queries),
        "sql": [sql[:200] for sql in queries],
        "ms": [round(t * 1000, 1) for t in times],
        "median_ms": round(statistics.median(times) * 1000, 1),
        "rows_shown": len(ROW_MARK.findall(response.content)),
        "bytes": len(response.content),
    }


def profile_request(client: Any, url: str, top: int = 25) -> None:
    """cProfile of one request: the top functions by cumulative and by self time."""
    profiler = cProfile.Profile()
    profiler.enable()
    response = client.get(url)
    profiler.disable()
    assert response.status_code == 200
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        _setup.say(out.getvalue())


def last_page_url(reviewer: Any) -> str:
    from accessreq.models import ReviewItem
    from accessreq.views.reviews import PER_PAGE

    pending = ReviewItem.objects.filter(reviewer=reviewer, decision="pending").count()
    return f"/reviews/?page={max(1, -(-pending // PER_PAGE))}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--requests", type=int, default=5, help="timed requests per URL")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--show-sql", action="store_true", help="print each request's queries")
    parser.add_argument(
        "--profile", action="store_true", help="profile one request of the list at the end"
    )
    args = parser.parse_args()

    machine = _setup.machine()
    _setup.bootstrap(args.db, "reviews", keep=args.keep)
    from django.core.management import call_command

    from accessreq.models import ReviewItem

    started = time.perf_counter()
    call_command("collectstatic", interactive=False, verbosity=0)
    _setup.say(f"[setup] collectstatic in {time.perf_counter() - started:.1f}s")

    fixture = Fixture(args.seed)
    fixture.small(args.small)
    _setup.analyse()
    sizes: dict[str, dict[str, Any]] = {}
    for label in ("small", "large"):
        if label == "large":
            started = time.perf_counter()
            fixture.grow(args.items)
            _setup.analyse()
            _setup.say(f"[fixture] grown in {time.perf_counter() - started:.1f}s")
        mine = ReviewItem.objects.filter(reviewer=fixture.reviewer)
        count = mine.count()
        pending = mine.filter(decision="pending").count()
        client = verified_client(fixture.reviewer, fixture.device)
        pages = {}
        for name, url in (("list", "/reviews/"), ("last page", last_page_url(fixture.reviewer))):
            pages[name] = measure(client, url, args.requests)
            cell = pages[name]
            _setup.say(
                f"  {count:,} items ({pending:,} pending), {name} {url}: {cell['queries']} "
                f"queries, median {cell['median_ms']} ms of {cell['ms']}, "
                f"{cell['rows_shown']} rows shown, {cell['bytes']:,} bytes"
            )
            if args.show_sql:
                for sql in cell["sql"]:
                    _setup.say(f"      {sql}")
        sizes[label] = {"items": count, "pending": pending, "pages": pages}

    if args.profile:
        profile_request(client, "/reviews/")

    small, large = sizes["small"], sizes["large"]
    constant = all(
        small["pages"][p]["queries"] == large["pages"][p]["queries"] for p in small["pages"]
    )
    if not constant:
        for page in small["pages"]:
            a, b = small["pages"][page]["sql"], large["pages"][page]["sql"]
            if len(a) != len(b):
                _setup.say(f"[reviews] {page}: queries differ ({len(a)} vs {len(b)}):")
                for sql in b:
                    _setup.say(f"    {sql}")
    figures = {
        "benchmark": "reviewer_page",
        "db": args.db,
        "sizes": {
            k: {
                **{kk: vv for kk, vv in v.items() if kk != "pages"},
                "pages": {
                    p: {kk: vv for kk, vv in cell.items() if kk != "sql"}
                    for p, cell in v["pages"].items()
                },
            }
            for k, v in sizes.items()
        },
        "queries_constant": constant,
        "load_avg_at_end": os.getloadavg(),
        "machine": machine,
    }
    for page in small["pages"]:
        s, b = small["pages"][page], large["pages"][page]
        _setup.say(
            f"[reviews] {args.db} {page}: {s['queries']} queries at {small['items']:,} items, "
            f"{b['queries']} at {large['items']:,} "
            f"({'equal' if s['queries'] == b['queries'] else 'NOT equal'}); "
            f"median server time {s['median_ms']} ms / {b['median_ms']} ms"
        )
    _setup.write_json(args.json, figures)
    print(json.dumps(figures))
    if not constant:
        raise SystemExit("the query count grows with the number of items")


if __name__ == "__main__":
    main()
