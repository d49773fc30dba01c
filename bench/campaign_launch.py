"""Campaign launch: ``campaign_launch()`` over 100,000 grants against a plain INSERT ... SELECT.

    .venv/bin/python bench/campaign_launch.py --db postgres [--grants 100000]
    .venv/bin/python bench/campaign_launch.py --db sqlite   [--grants 100000]
    ... [--batch 1000,2000,5000] [--rounds 2] [--people 4000] [--entitlements 50]
    ... [--what-if] [--profile] [--profile-batch 2000]

The fixture is written straight into the scratch database with ``bulk_create`` (no services, no
history rows, no audit events): teams, ``--people`` people (a few hundred of them managers, two
percent with no manager and three inactive managers, so the fallback reviewer gets items), a
security admin as the fallback reviewer, ``--entitlements`` entitlements on 10 systems in four
environments (one per risk tier) with owners, one access request per grant, approvals on a
fifth of the requests (the manager, sometimes the entitlement owner as well), and ``--grants``
active grants in scope: distinct (person, entitlement) pairs drawn at random. Out of scope, so
the scope filter has work to do: grants held by service accounts, expired grants and revoked
grants (about 2% more rows). The template: all access, reviewed by the holder's manager.

Each round is one child process (``/usr/bin/time -v``; the fixture builder's memory is not in
it). In it, always against an empty ``accessreq_reviewitem`` table (the previous rows deleted
and, on PostgreSQL, ``VACUUM ANALYZE``-ed):

1. the plain inserts:
   - "minimal": ``INSERT INTO accessreq_reviewitem (...) SELECT ... FROM accessreq_grant``
     joined to the holder and the catalog, same scope filter, reviewer = the holder's manager
     when that is an active person, else the fallback, and a minimal snapshot built in SQL
     (holder id, entitlement id, tier), into a campaign row of its own; one statement, one
     transaction;
   - "full": the same statement building in SQL the very snapshot the service writes (every
     key, approver names included), so its rows are identical to the launch's;
2. one launch per batch size (the order rotates from round to round):
   ``campaign_launch(template_id=..., actor=system)`` with
   ``accessreq.services.campaigns.LAUNCH_BATCH`` set to the batch size, end to end (campaign
   row, batches, audit events, opening, one notification per reviewer); its peak RSS is the
   process's VmHWM reset just before the call (``/proc/self/clear_refs``), so it is that
   launch's own;
3. the plain inserts again. The ratio is launch / the mean of the plain insert before and after.

Checks, after timing: every launch opened its campaign with one item per grant in scope and
all launches wrote the same rows and snapshots; each plain insert wrote exactly the launch's
(grant, reviewer, reason, tier, system, team) rows, and the full one the identical snapshot JSON.

Each child first resolves the URLconf (``reverse()``), as a long-running worker has long done:
``_open``'s first ``reverse()`` imports every view module, about 0.8 s once per process.

``--what-if`` runs one more child (batch ``--profile-batch``) that times the launch's steps with
wrappers (batch read, item building, ``bulk_create``, ``_open``) and then four ways to write
the same items that are NOT the project's code, each with the service's own locking, cursor,
``scope_grants`` and ``_open``, each checked to write identical rows and snapshots:
``tuples`` (read ``values_list`` tuples instead of six model instances per grant, then
``ReviewItem`` objects and ``bulk_create``), ``tuples+executemany`` (the same read, then a
parameterised INSERT ... VALUES ... ON CONFLICT DO NOTHING through ``executemany``),
``tuples+json`` (the same read, then each batch written by one INSERT ... SELECT over the batch
passed as a single JSON document) and ``sql``
(each batch one INSERT ... SELECT ... LIMIT past the cursor: the database builds reviewer and
snapshot).

``--profile`` runs one more launch under cProfile in a child and prints the top functions by
self time and the cumulative time of the launch's steps.
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import random
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup  # noqa: E402

TEMPLATE_NAME = "Benchmark: all access, holder's manager"
TIERS = ("low", "medium", "high", "critical")
NO_LOGIN = "!"  # an unusable password hash: nobody signs in as these people
ROLES = ("read-only", "deployer", "operator", "admin", "support", "on-call")


# --- Fixture -----------------------------------------------------------------------------------


def _seconds(value: datetime) -> datetime:
    """Whole seconds, so ``isoformat()`` and the SQL formatting agree on the snapshot text."""
    return value.replace(microsecond=0)


def build_fixture(args: argparse.Namespace) -> dict[str, Any]:
    """The people, catalog, requests, approvals and grants; returns ids the children need."""
    from django.db import transaction

    from accessreq.models import (
        AccessRequest,
        Approval,
        CampaignTemplate,
        Entitlement,
        Environment,
        Grant,
        ReviewerRule,
        Scope,
        System,
    )
    from accessreq.services.common import now
    from portal.models import Team, User

    rng = random.Random(args.seed)  # noqa: S311 - fixture data
    clock = _seconds(now())
    started = time.perf_counter()
    with transaction.atomic():
        teams = Team.objects.bulk_create(
            Team(name=f"Team {n:02d}", slug=f"team-{n:02d}") for n in range(30)
        )
        people = User.objects.bulk_create(
            (
                User(
                    email=f"person{n}@example.com",
                    display_name="" if n % 97 == 0 else f"Person {n:05d}",
                    team=None if n % 50 == 0 else teams[n % len(teams)],
                    password=NO_LOGIN,
                )
                for n in range(args.people)
            ),
            batch_size=2000,
        )
        admin = User.objects.create(
            email="security-admin@example.com", display_name="Sam Security", password=NO_LOGIN
        )
        managers = people[: max(10, args.people // 20)]
        top = managers[:5]
        for n, person in enumerate(people[len(top) :], start=len(top)):
            if n % 50 == 7:
                continue  # nobody: the fallback reviews their access
            pool = top if n < len(managers) else managers[5:]
            person.manager_id = rng.choice(pool).pk
        for manager in managers[5:8]:
            manager.is_active = False  # left: their reports' items go to the fallback
        User.objects.bulk_update(people, ["manager", "is_active"], batch_size=2000)
        services = User.objects.bulk_create(
            User(
                email=f"svc{n}@svc.example.com",
                display_name=f"svc-{n}",
                kind=User.Kind.SERVICE,
                password=NO_LOGIN,
            )
            for n in range(20)
        )

        scope, _ = Scope.objects.get_or_create(slug="use")
        environments = Environment.objects.bulk_create(
            Environment(name=f"env-{tier}", slug=f"env-{tier}", risk_tier=tier) for tier in TIERS
        )
        systems = System.objects.bulk_create(
            System(name=f"service-{n:02d}", slug=f"service-{n:02d}") for n in range(10)
        )
        entitlements = Entitlement.objects.bulk_create(
            Entitlement(
                system=systems[n % len(systems)],
                environment=environments[(n // len(systems)) % len(environments)],
                name=f"{ROLES[n % len(ROLES)]} {n:02d}",
                slug=f"ent-{n:02d}",
            )
            for n in range(args.entitlements)
        )
        Entitlement.scopes.through.objects.bulk_create(
            Entitlement.scopes.through(entitlement_id=e.pk, scope_id=scope.pk) for e in entitlements
        )
        owner_of = {e.pk: managers[n % len(managers)].pk for n, e in enumerate(entitlements)}
        Entitlement.owners.through.objects.bulk_create(
            Entitlement.owners.through(entitlement_id=pk, user_id=owner)
            for pk, owner in owner_of.items()
        )
        System.owners.through.objects.bulk_create(
            System.owners.through(system_id=s.pk, user_id=managers[n].pk)
            for n, s in enumerate(systems)
        )

        # (holder, entitlement, state) rows: the grants in scope, then some out of scope.
        pairs = rng.sample(range(args.people * len(entitlements)), args.grants)
        plan: list[tuple[Any, Any, str]] = [
            (people[p // len(entitlements)], entitlements[p % len(entitlements)], "active")
            for p in pairs
        ]
        plan += [(s, e, "service") for s in services for e in rng.sample(entitlements, 10)]
        plan += [
            (rng.choice(people), rng.choice(entitlements), rng.choice(("expired", "revoked")))
            for _ in range(args.grants // 50)
        ]
        requests = []
        for n, (holder, entitlement, kind) in enumerate(plan):
            at = clock - timedelta(days=rng.randint(1, 200), seconds=rng.randint(0, 86399))
            requests.append(
                AccessRequest(
                    requester=holder if kind != "service" else managers[n % len(managers)],
                    beneficiary=holder,
                    entitlement=entitlement,
                    justification="Needed for the day job",
                    duration=timedelta(days=365),
                    state="active" if kind in ("active", "service") else kind,
                    created_at=at,
                    decided_at=at + timedelta(minutes=30),
                )
            )
        AccessRequest.objects.bulk_create(requests, batch_size=5000)
        _setup.say(f"[fixture] {len(requests):,} access requests")

        approvals = []
        for request in requests:
            holder = request.beneficiary
            if holder.manager_id is None or rng.random() >= 0.2:
                continue
            assert request.decided_at is not None
            approvals.append(
                Approval(
                    request=request,
                    stage=1,
                    approver_id=holder.manager_id,
                    decision="approve",
                    decided_at=request.decided_at - timedelta(minutes=10),
                )
            )
            owner_id = owner_of[request.entitlement.pk]
            if rng.random() < 0.25 and owner_id not in (holder.manager_id, holder.pk):
                approvals.append(
                    Approval(
                        request=request,
                        stage=2,
                        approver_id=owner_id,
                        decision="approve",
                        decided_at=request.decided_at - timedelta(minutes=5),
                    )
                )
        Approval.objects.bulk_create(approvals, batch_size=5000)
        _setup.say(f"[fixture] {len(approvals):,} approvals")

        grants = []
        for request, (_holder, _entitlement, kind) in zip(requests, plan, strict=True):
            assert request.decided_at is not None
            starts = request.decided_at
            expires = clock + timedelta(days=rng.randint(30, 365))
            grant = Grant(
                beneficiary=request.beneficiary,
                entitlement=request.entitlement,
                request=request,
                state="active",
                break_glass=rng.random() < 0.01,
                starts_at=starts,
                expires_at=expires,
                created_at=starts,
                provisioned_at=starts + timedelta(minutes=1),
                last_used_at=_seconds(clock - timedelta(hours=rng.randint(1, 2000)))
                if rng.random() < 0.5
                else None,
            )
            if kind == "expired":
                grant.state = "expired"
                grant.expires_at = grant.ended_at = starts + timedelta(hours=12)
            elif kind == "revoked":
                grant.state = "revoked"
                grant.revoked_at = grant.ended_at = starts + timedelta(hours=1)
                grant.revoked_by = admin
                grant.revoke_reason = "No longer needed"
            grants.append(grant)
        Grant.objects.bulk_create(grants, batch_size=5000)
        _setup.say(f"[fixture] {len(grants):,} grants ({args.grants:,} in scope)")

        template = CampaignTemplate.objects.create(
            name=TEMPLATE_NAME,
            reviewer_rule=ReviewerRule.MANAGER,
            fallback_reviewer=admin,
            owner=admin,
        )
    _setup.analyse()
    _setup.say(f"[fixture] built in {time.perf_counter() - started:.1f}s")
    return {
        "template_id": template.pk,
        "fallback_id": admin.pk,
        "people": args.people,
        "managers": len(managers),
        "entitlements": len(entitlements),
        "requests": len(requests),
        "approvals": len(approvals),
        "grants_total": len(grants),
        "grants_in_scope": args.grants,
    }


# --- The plain INSERT ... SELECT -----------------------------------------------------------------

_ITEM_COLUMNS = (
    "campaign_id, grant_id, reviewer_id, reviewer_reason, snapshot, tier, system_id, team_name, "
    "decision, comment, mfa_method, deadline_action, created_at"
)


def _plain_sql(vendor: str, *, full: bool) -> str:
    """One INSERT ... SELECT writing the launch's rows (``full``: its snapshot JSON as well).

    Parameters: campaign id, fallback id, created_at, scope time (x2).
    """
    pg = vendor == "postgresql"

    def ts(column: str) -> str:
        if pg:
            return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')"""
        return f"replace(substr({column}, 1, 19), ' ', 'T') || '+00:00'"

    def boolean(column: str) -> str:
        return column if pg else f"json(CASE WHEN {column} THEN 'true' ELSE 'false' END)"

    obj = "json_build_object" if pg else "json_object"
    rule_ok = "m.id IS NOT NULL AND m.id <> u.id AND m.is_active AND m.kind = 'human'"
    if full:
        approvers = (
            "COALESCE((SELECT json_agg(COALESCE(NULLIF(a.display_name, ''), a.email) "
            "ORDER BY ap.decided_at) FROM accessreq_approval ap JOIN portal_user a "
            "ON a.id = ap.approver_id WHERE ap.request_id = g.request_id "
            "AND ap.decision = 'approve'), '[]'::json)"
            if pg
            else "(SELECT json_group_array(name) FROM (SELECT COALESCE(NULLIF(a.display_name, "
            "''), a.email) AS name FROM accessreq_approval ap JOIN portal_user a "
            "ON a.id = ap.approver_id WHERE ap.request_id = g.request_id "
            "AND ap.decision = 'approve' ORDER BY ap.decided_at))"
        )
        snapshot = f"""{obj}(
            'holder', COALESCE(NULLIF(u.display_name, ''), u.email),
            'holder_email', u.email,
            'holder_id', u.id,
            'holder_status', u.employment_status,
            'holder_active', {boolean("u.is_active")},
            'team', COALESCE(t.name, ''),
            'entitlement', s.name || ' / ' || env.name || ' / ' || e.name,
            'system', s.name,
            'environment', env.name,
            'tier', env.risk_tier,
            'granted_at', {ts("g.starts_at")},
            'expires_at', {ts("g.expires_at")},
            'granted_by', {approvers if pg else f"json({approvers})"},
            'break_glass', {boolean("g.break_glass")},
            'last_used_at', CASE WHEN g.last_used_at IS NULL THEN NULL
                ELSE {ts("g.last_used_at")} END
        )"""
    else:
        snapshot = f"{obj}('holder_id', u.id, 'entitlement_id', e.id, 'tier', env.risk_tier)"
    now_ts = "%s"
    return f"""
        INSERT INTO accessreq_reviewitem ({_ITEM_COLUMNS})
        SELECT %s, g.id,
            CASE WHEN {rule_ok} THEN m.id ELSE %s END,
            CASE WHEN {rule_ok} THEN 'rule' ELSE 'fallback' END,
            {snapshot},
            env.risk_tier, e.system_id, COALESCE(t.name, ''),
            'pending', '', '', '', {now_ts}
        FROM accessreq_grant g
        JOIN portal_user u ON u.id = g.beneficiary_id
        LEFT JOIN portal_team t ON t.id = u.team_id
        LEFT JOIN portal_user m ON m.id = u.manager_id
        JOIN accessreq_entitlement e ON e.id = g.entitlement_id
        JOIN accessreq_system s ON s.id = e.system_id
        JOIN accessreq_environment env ON env.id = e.environment_id
        WHERE g.state = 'active' AND g.revoked_at IS NULL
            AND g.expires_at > %s AND g.starts_at <= %s AND u.kind = 'human'
        ORDER BY g.id
    """  # noqa: S608 - constant SQL, every value is a parameter


def plain_insert(*, template_id: int, fallback_id: int, full: bool, label: str) -> dict[str, Any]:
    """Time one INSERT ... SELECT into a campaign row of its own; returns seconds and rows."""
    from django.db import connection, transaction

    from accessreq.models import Campaign
    from accessreq.services.common import now

    clock = now()
    campaign = Campaign.objects.create(
        template_id=template_id,
        period=f"p-{label[:8]}-{os.getpid()}",  # max 20 characters
        state="open",
        deadline=clock + timedelta(days=14),
    )
    sql = _plain_sql(connection.vendor, full=full)
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [campaign.pk, fallback_id, clock, clock, clock])
        rows = cursor.rowcount
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rows": rows, "campaign_id": campaign.pk}


# --- Checks and clean-up -----------------------------------------------------------------------


def items_digest(campaign_id: int, *, with_snapshot: bool) -> tuple[int, str]:
    """Rows and a digest of the campaign's items (grant order), to compare the writers.

    Read with a server-side cursor on PostgreSQL, so the check adds little to the process's
    memory (a client-side cursor would hold all 100,000 snapshots at once).
    """
    from django.db import connection, transaction

    digest = hashlib.sha256()
    rows = 0
    sql = (
        "SELECT grant_id, reviewer_id, reviewer_reason, tier, system_id, team_name, snapshot "
        "FROM accessreq_reviewitem WHERE campaign_id = %s ORDER BY grant_id"
    )
    with transaction.atomic():
        if connection.vendor == "postgresql":
            cursor = connection.connection.cursor(name="bench_digest")
            cursor.execute(sql, [campaign_id])
        else:
            cursor = connection.connection.cursor()
            cursor.execute(sql.replace("%s", "?"), [campaign_id])
        while chunk := cursor.fetchmany(5000):
            for row in chunk:
                rows += 1
                digest.update(repr(tuple(row[:6])).encode())
                if with_snapshot:
                    snap = row[6] if isinstance(row[6], dict) else json.loads(row[6])
                    digest.update(json.dumps(snap, sort_keys=True).encode())
        cursor.close()
    return rows, digest.hexdigest()


def reset_peak_rss() -> bool:
    """Reset this process's VmHWM (Linux >= 4.0), so the next reading is one step's own peak."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def drop_items(campaign_id: int) -> None:
    """Delete a campaign and its items, and leave the table as an empty one for the next run."""
    from django.db import connection

    from accessreq.models import Campaign

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM accessreq_reviewitem WHERE campaign_id = %s", [campaign_id])
    Campaign.objects.filter(pk=campaign_id).delete()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE accessreq_reviewitem")


# --- What-ifs: other ways to write the same items (not the project's code) -------------------

WHAT_IFS = ("tuples", "tuples+executemany", "tuples+json", "sql")

# The columns a batch needs, read as tuples instead of six model instances per grant.
_ROW_FIELDS = (
    "pk",
    "request_id",
    "entitlement_id",
    "entitlement__system_id",
    "break_glass",
    "starts_at",
    "expires_at",
    "last_used_at",
    "beneficiary_id",
    "beneficiary__display_name",
    "beneficiary__email",
    "beneficiary__employment_status",
    "beneficiary__is_active",
    "beneficiary__manager_id",
    "beneficiary__team__name",
    "entitlement__name",
    "entitlement__system__name",
    "entitlement__environment__name",
    "entitlement__environment__risk_tier",
)


def _whatif_campaign(template_id: int, label: str) -> Any:
    from accessreq.models import Campaign
    from accessreq.services.common import now

    clock = now()
    return Campaign.objects.create(
        template_id=template_id,
        period=f"w-{label[:8]}-{os.getpid()}",  # max 20 characters
        state="launching",
        launched_at=clock,
        deadline=clock + timedelta(days=14),
    )


def _tuple_items(template: Any, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """(grant, reviewer, reason, snapshot, tier, system, team) per row: the service's rules
    (manager rule, owners looked up as it does, approver names) from tuples."""
    from accessreq.models import Approval, Decision, Entitlement, System
    from portal.models import User

    ent_owner: dict[int, int] = {}
    for ent_id, user_id in (
        Entitlement.owners.through.objects.filter(
            entitlement_id__in={r[2] for r in rows}, user__is_active=True
        )
        .order_by("entitlement_id", "user_id")
        .values_list("entitlement_id", "user_id")
    ):
        ent_owner.setdefault(ent_id, user_id)
    sys_owner: dict[int, int] = {}
    for sys_id, user_id in (
        System.owners.through.objects.filter(
            system_id__in={r[3] for r in rows}, user__is_active=True
        )
        .order_by("system_id", "user_id")
        .values_list("system_id", "user_id")
    ):
        sys_owner.setdefault(sys_id, user_id)
    candidates = {r[13] for r in rows if r[13]} | set(ent_owner.values()) | set(sys_owner.values())
    active = set(
        User.objects.filter(pk__in=candidates, is_active=True, kind=User.Kind.HUMAN).values_list(
            "pk", flat=True
        )
    )
    approvers: dict[int, list[str]] = {}
    for request_id, name, email in (
        Approval.objects.filter(request_id__in={r[1] for r in rows}, decision=Decision.APPROVE)
        .order_by("decided_at")
        .values_list("request_id", "approver__display_name", "approver__email")
    ):
        approvers.setdefault(request_id, []).append(name or email)
    fallback = template.fallback_reviewer_id
    out = []
    for (
        pk,
        request_id,
        _ent_id,
        system_id,
        break_glass,
        starts_at,
        expires_at,
        last_used_at,
        holder_id,
        display_name,
        email,
        status,
        is_active,
        manager_id,
        team,
        ent_name,
        system,
        environment,
        tier,
    ) in rows:
        if manager_id and manager_id != holder_id and manager_id in active:
            reviewer, reason = manager_id, "rule"
        else:
            reviewer, reason = fallback, "fallback"
        snapshot = {
            "holder": display_name or email,
            "holder_email": email,
            "holder_id": holder_id,
            "holder_status": status,
            "holder_active": is_active,
            "team": team or "",
            "entitlement": f"{system} / {environment} / {ent_name}",
            "system": system,
            "environment": environment,
            "tier": tier,
            "granted_at": starts_at.isoformat(),
            "expires_at": expires_at.isoformat(),
            "granted_by": approvers.get(request_id, []),
            "break_glass": break_glass,
            "last_used_at": last_used_at.isoformat() if last_used_at else None,
        }
        out.append((pk, reviewer, reason, snapshot, tier, system_id, team or ""))
    return out


def _insert_json_document(campaign_id: int, items: list[tuple[Any, ...]], clock: Any) -> None:
    """The batch as ONE JSON parameter, unpacked by the database: no per-row parameters and no
    array literal escaping in the driver."""
    from django.db import connection

    doc = json.dumps(
        [[g, r, why, snap, tier, sid, team] for g, r, why, snap, tier, sid, team in items]
    )
    if connection.vendor == "postgresql":
        sql = f"""
            INSERT INTO accessreq_reviewitem ({_ITEM_COLUMNS})
            SELECT %s, (x->>0)::bigint, (x->>1)::bigint, x->>2, x->3, x->>4, (x->>5)::bigint,
                x->>6, 'pending', '', '', '', %s
            FROM jsonb_array_elements(%s::jsonb) AS x
            ON CONFLICT DO NOTHING
        """  # noqa: S608 - constant SQL
        params = [campaign_id, clock, doc]
    else:
        sql = f"""
            INSERT INTO accessreq_reviewitem ({_ITEM_COLUMNS})
            SELECT %s, value->>0, value->>1, value->>2, value->>3, value->>4, value->>5,
                value->>6, 'pending', '', '', '', %s
            FROM json_each(%s) WHERE true
            ON CONFLICT DO NOTHING
        """  # noqa: S608 - constant SQL
        params = [campaign_id, connection.ops.adapt_datetimefield_value(clock), doc]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _insert_executemany(campaign_id: int, items: list[tuple[Any, ...]], clock: Any) -> None:
    """The batch as a plain parameterised INSERT ... VALUES ... ON CONFLICT DO NOTHING run with
    ``executemany`` (the same SQL on both databases; psycopg pipelines the rows)."""
    from django.db import connection

    sql = (
        f"INSERT INTO accessreq_reviewitem ({_ITEM_COLUMNS}) "  # noqa: S608 - constant SQL
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'pending', '', '', '', %s) "
        "ON CONFLICT DO NOTHING"
    )
    when = connection.ops.adapt_datetimefield_value(clock)
    with connection.cursor() as cursor:
        cursor.executemany(
            sql,
            [
                (campaign_id, g, r, why, json.dumps(snap), tier, sid, team, when)
                for g, r, why, snap, tier, sid, team in items
            ],
        )


def whatif_launch(
    *, template_id: int, actor: Any, batch: int, how: str, phases: dict[str, float]
) -> int:
    """The service's launch loop (campaign row lock per batch, pk cursor, the service's own
    ``scope_grants`` and ``_open``) with the batch read and write done another way:

    - ``tuples``: read ``values_list`` tuples, build ``ReviewItem`` objects, ``bulk_create``;
    - ``tuples+executemany``: read tuples, ``executemany`` of a parameterised INSERT;
    - ``tuples+json``: read tuples, insert the batch as one JSON document;
    - ``sql``: one INSERT ... SELECT per batch (``LIMIT batch`` past the cursor): the database
      builds reviewer and snapshot, as the plain insert does.
    """
    from django.db import connection, transaction

    from accessreq.models import Campaign, CampaignTemplate, ReviewItem
    from accessreq.services import campaigns
    from accessreq.services.common import now

    template = CampaignTemplate.objects.select_related("fallback_reviewer").get(pk=template_id)
    campaign = _whatif_campaign(template_id, how)
    clock = now()
    assert campaign.launched_at is not None
    scope_at = campaign.launched_at
    batch_sql = ""
    if how == "sql":
        base = _plain_sql(connection.vendor, full=True).replace("ORDER BY g.id", "")
        batch_sql = (
            base + " AND g.id > %s ORDER BY g.id LIMIT %s ON CONFLICT DO NOTHING RETURNING grant_id"
        )
        if connection.vendor != "postgresql":
            batch_sql = batch_sql.replace("%s", "?")
    while True:
        with transaction.atomic():
            locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
            if how == "sql":
                started = time.perf_counter()
                with connection.cursor() as cursor:
                    params = [locked.pk, template.fallback_reviewer_id, clock, scope_at, scope_at]
                    cursor.execute(batch_sql, [*params, locked.launch_cursor, batch])
                    done = [r[0] for r in cursor.fetchall()]
                phases["write"] = phases.get("write", 0.0) + time.perf_counter() - started
                if not done:
                    campaigns._open(locked, template, actor=actor)
                    return int(locked.pk)
                last = max(done)
            else:
                started = time.perf_counter()
                rows = list(
                    campaigns.scope_grants(template, at=scope_at)
                    .filter(pk__gt=locked.launch_cursor)
                    .values_list(*_ROW_FIELDS)[:batch]
                )
                phases["read"] = phases.get("read", 0.0) + time.perf_counter() - started
                if not rows:
                    campaigns._open(locked, template, actor=actor)
                    return int(locked.pk)
                started = time.perf_counter()
                items = _tuple_items(template, rows)
                phases["build"] = phases.get("build", 0.0) + time.perf_counter() - started
                started = time.perf_counter()
                if how == "tuples":
                    ReviewItem.objects.bulk_create(
                        [
                            ReviewItem(
                                campaign=locked,
                                grant_id=g,
                                reviewer_id=r,
                                reviewer_reason=why,
                                snapshot=snap,
                                tier=tier,
                                system_id=sid,
                                team_name=team,
                                created_at=clock,
                            )
                            for g, r, why, snap, tier, sid, team in items
                        ],
                        ignore_conflicts=True,
                    )
                elif how == "tuples+executemany":
                    _insert_executemany(locked.pk, items, clock)
                else:
                    _insert_json_document(locked.pk, items, clock)
                phases["write"] = phases.get("write", 0.0) + time.perf_counter() - started
                last = rows[-1][0]
            locked.launch_cursor = last
            locked.save(update_fields=["launch_cursor"])


# --- The measured child ------------------------------------------------------------------------


def warm_up() -> None:
    """What a long-running worker has done long before a launch: load the URLconf (``_open``'s
    first ``reverse()`` imports every view module, about 0.8 s once per process)."""
    from django.urls import reverse

    reverse("my_reviews")


def child(args: argparse.Namespace) -> None:
    """One round: the plain inserts, a launch per batch size, the plain inserts again (so the
    reference is taken before and after), each checked and deleted before the next."""
    _setup.attach()
    warm_up()
    from django.db import connection

    from accessreq.campaign_states import CampaignState
    from accessreq.services import campaigns
    from portal.models import User

    system = User.objects.system_actor()
    connection.ensure_connection()
    batches = [int(b) for b in args.child_batches.split(",")]
    out: dict[str, Any] = {"launches": [], "plain": []}

    def launch(batch: int) -> None:
        campaigns.LAUNCH_BATCH = batch
        rss_before = _setup.current_rss_mib()
        own_peak = reset_peak_rss()
        profiler = cProfile.Profile() if args.profile_to else None
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        campaign = campaigns.campaign_launch(template_id=args.template, actor=system)
        if profiler:
            profiler.disable()
            profiler.dump_stats(args.profile_to)
        seconds = time.perf_counter() - started
        peak = _setup.vm_hwm_mib()
        assert campaign.state == CampaignState.OPEN, campaign.state
        items, digest = items_digest(campaign.pk, with_snapshot=False)
        out["launches"].append(
            {
                "batch": batch,
                "seconds": seconds,
                "items": items,
                "digest": digest,
                "digest_full": items_digest(campaign.pk, with_snapshot=True)[1],
                "rss_before_mib": round(rss_before, 1),
                "peak_rss_mib": round(peak, 1) if own_peak else None,
            }
        )
        drop_items(campaign.pk)

    def plains() -> None:
        taken: dict[str, Any] = {}
        for kind, full in (("minimal", False), ("full", True)):
            measured = plain_insert(
                template_id=args.template, fallback_id=args.fallback, full=full, label=kind
            )
            taken[kind] = {
                "seconds": measured["seconds"],
                "rows": measured["rows"],
                "digest": items_digest(measured["campaign_id"], with_snapshot=full),
            }
            drop_items(measured["campaign_id"])
        out["plain"].append(taken)

    if args.profile_to:
        launch(batches[0])
    else:
        plains()
        for batch in batches:
            launch(batch)
        plains()
    print(json.dumps(out))


def child_whatif(args: argparse.Namespace) -> None:
    """The launch with its steps timed (wrappers, not a profiler), then each what-if, each
    checked against the launch's rows and snapshots and deleted."""
    _setup.attach()
    warm_up()
    from django.db import connection
    from django.db.models import QuerySet

    from accessreq.services import campaigns
    from portal.models import User

    batch = int(args.child_batches)
    campaigns.LAUNCH_BATCH = batch
    system = User.objects.system_actor()
    connection.ensure_connection()
    steps: dict[str, float] = {}

    def timed(name: str, func: Any) -> Any:
        def wrapper(*a: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return func(*a, **kw)
            finally:
                steps[name] = steps.get(name, 0.0) + time.perf_counter() - started

        return wrapper

    patched: list[tuple[Any, str]] = [(campaigns, n) for n in ("_add_items", "_open", "_snapshot")]
    patched.append((QuerySet, "bulk_create"))  # only ReviewItem uses it during a launch
    originals = [getattr(owner, name) for owner, name in patched]
    for (owner, name), func in zip(patched, originals, strict=True):
        setattr(owner, name, timed(name, func))
    started = time.perf_counter()
    campaign = campaigns.campaign_launch(template_id=args.template, actor=system)
    total = time.perf_counter() - started
    out: dict[str, Any] = {
        "batch": batch,
        "launch_seconds": total,
        "launch_steps": {
            "batch read (scope query, select_related rows -> model instances)": total
            - steps["_add_items"]
            - steps["_open"],
            "_add_items without bulk_create (owners, approvers, snapshots, ReviewItem objects)": (
                steps["_add_items"] - steps["bulk_create"]
            ),
            "  of which _snapshot": steps["_snapshot"],
            "bulk_create (Django, driver, database)": steps["bulk_create"],
            "_open (state, audit events, notifications)": steps["_open"],
        },
    }
    out["launch_digest"] = items_digest(campaign.pk, with_snapshot=True)
    drop_items(campaign.pk)
    for how in WHAT_IFS:
        phases: dict[str, float] = {}
        steps["_open"] = 0.0  # still wrapped: the what-ifs open through the service's _open
        started = time.perf_counter()
        cid = whatif_launch(
            template_id=args.template,
            actor=system,
            batch=batch,
            how=how,
            phases=phases,
        )
        out[f"whatif_{how}_seconds"] = time.perf_counter() - started
        out[f"whatif_{how}_phases"] = {**phases, "open": steps["_open"]}
        out[f"whatif_{how}_digest"] = items_digest(cid, with_snapshot=True)
        drop_items(cid)
    measured = plain_insert(
        template_id=args.template, fallback_id=args.fallback, full=True, label="whatif"
    )
    out["plain_full_seconds"] = measured["seconds"]
    drop_items(measured["campaign_id"])
    print(json.dumps(out))


# --- Profile summary ---------------------------------------------------------------------------

STEPS = (
    ("campaign_launch (whole)", "campaigns.py", "campaign_launch"),
    ("batch query: list(scope_grants(...).select_related(...)[:batch])", "query.py", "__iter__"),
    ("scope_grants (building the queryset, 3 M2M reads)", "campaigns.py", "scope_grants"),
    ("_add_items (everything per batch but the grant query)", "campaigns.py", "_add_items"),
    ("  _first_owners", "campaigns.py", "_first_owners"),
    ("  _snapshot", "campaigns.py", "_snapshot"),
    ("  _reviewer_for", "campaigns.py", "_reviewer_for"),
    ("  ReviewItem(...) construction (Model.__init__)", "base.py", "__init__"),
    ("  ReviewItem.objects.bulk_create", "query.py", "bulk_create"),
    ("_open (state, audit, notifications)", "campaigns.py", "_open"),
    ("Model.from_db (row -> instance, all models)", "base.py", "from_db"),
    ("JSONField.get_db_prep_value (snapshot -> JSON text)", "json.py", "get_db_prep_value"),
    ("cursor execute (database round trips)", "utils.py", "execute"),
)


def summarise_profile(path: str, top: int = 30) -> dict[str, Any]:
    stats = pstats.Stats(path)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    steps: dict[str, dict[str, float]] = {}
    for label, filename, name in STEPS:
        matches = [entry for (f, _l, n), entry in raw.items() if f.endswith(filename) and n == name]
        if matches:
            best = max(matches, key=lambda e: e[3])  # the busiest function of that name
            steps[label] = {"calls": best[1], "cumulative_s": round(best[3], 2)}
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    return {"total_profiled_seconds": round(total, 2), "steps": steps, "top": out.getvalue()}


# --- Main --------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--grants", type=int, default=100_000, help="active grants in scope")
    parser.add_argument("--people", type=int, default=4000, help="people holding them")
    parser.add_argument("--entitlements", type=int, default=50)
    parser.add_argument(
        "--batch",
        default="1000,2000,5000",
        help="launch batch sizes to try, comma-separated (LAUNCH_BATCH; the service uses 2000)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="runs of each batch size")
    parser.add_argument("--profile", action="store_true", help="profile one more launch")
    parser.add_argument("--profile-batch", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--json", metavar="PATH", help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-batches", help=argparse.SUPPRESS)
    parser.add_argument("--template", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fallback", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument(
        "--what-if",
        action="store_true",
        help="time the launch's steps and three other ways to write the same items",
    )
    parser.add_argument("--whatif-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.grants > args.people * args.entitlements:
        parser.error("--grants exceeds --people x --entitlements distinct pairs")
    return args


def _child_argv(fixture: dict[str, Any], batches: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--child",
        "--child-batches",
        batches,
        "--template",
        str(fixture["template_id"]),
        "--fallback",
        str(fixture["fallback_id"]),
        *extra,
    ]


def main() -> None:
    args = parse_args()
    if args.whatif_child:
        child_whatif(args)
        return
    if args.child:
        child(args)
        return
    batches = [int(b) for b in args.batch.split(",") if b.strip()]
    machine = _setup.machine()
    scratch = _setup.bootstrap(args.db, "campaign", keep=args.keep)
    fixture = build_fixture(args)

    runs: list[dict[str, Any]] = []  # one per launch
    plains: list[dict[str, Any]] = []  # the reference inserts, before and after each round
    for r in range(args.rounds):
        order = batches[r % len(batches) :] + batches[: r % len(batches)]
        argv = _child_argv(fixture, ",".join(map(str, order)))
        proc = _setup.run_child(argv)
        if proc.returncode:
            raise SystemExit(f"launch child failed:\n{proc.stderr[-4000:]}")
        measured = _setup.child_json(proc.stdout)
        want = measured["launches"][0]
        for launch in measured["launches"]:
            if launch["items"] != args.grants:
                raise SystemExit(f"the launch wrote {launch['items']} items, not {args.grants}")
            if (launch["digest"], launch["digest_full"]) != (want["digest"], want["digest_full"]):
                raise SystemExit("launches with different batch sizes wrote different items")
        for taken in measured["plain"]:
            for kind in ("minimal", "full"):
                rows, digest = taken[kind]["digest"]
                if rows != args.grants or (kind == "minimal" and digest != want["digest"]):
                    raise SystemExit(f"the plain {kind} insert differs from the launch")
            if taken["full"]["digest"][1] != want["digest_full"]:
                raise SystemExit("the full-snapshot insert's snapshots differ from the launch's")
            plains.append(taken)
        reference = {
            kind: statistics.mean(t[kind]["seconds"] for t in measured["plain"])
            for kind in ("minimal", "full")
        }
        _setup.say(
            f"  round {r + 1}: plain INSERT ... SELECT minimal "
            + " / ".join(f"{t['minimal']['seconds']:.2f}s" for t in measured["plain"])
            + ", full snapshot "
            + " / ".join(f"{t['full']['seconds']:.2f}s" for t in measured["plain"])
            + " (before / after the launches)"
        )
        for launch in measured["launches"]:
            launch["round"] = r + 1
            launch["ratio_minimal"] = launch["seconds"] / reference["minimal"]
            launch["ratio_full"] = launch["seconds"] / reference["full"]
            runs.append(launch)
            _setup.say(
                f"  round {r + 1}, batch {launch['batch']}: launch {launch['seconds']:.1f}s "
                f"({args.grants / launch['seconds']:,.0f} items/s, "
                f"{-(-args.grants // launch['batch'])} batches); ratio "
                f"{launch['ratio_minimal']:.1f}x (minimal) / {launch['ratio_full']:.1f}x (full); "
                f"peak RSS {launch['peak_rss_mib']} MiB during the launch (RSS "
                f"{launch['rss_before_mib']:.0f} MiB before it)"
            )

    by_batch: dict[int, dict[str, Any]] = {}
    for batch in batches:
        mine = [r for r in runs if r["batch"] == batch]
        by_batch[batch] = {
            "launch_seconds": [round(r["seconds"], 2) for r in mine],
            "median_launch_seconds": round(statistics.median(r["seconds"] for r in mine), 2),
            "launch_items_per_s": round(
                args.grants / statistics.median(r["seconds"] for r in mine), 1
            ),
            "ratio_launch_over_plain_minimal": [round(r["ratio_minimal"], 2) for r in mine],
            "ratio_launch_over_plain_full": [round(r["ratio_full"], 2) for r in mine],
            "median_ratio_minimal": round(statistics.median(r["ratio_minimal"] for r in mine), 2),
            "median_ratio_full": round(statistics.median(r["ratio_full"] for r in mine), 2),
            "launch_peak_rss_mib": max((r["peak_rss_mib"] or 0) for r in mine),
            "rss_before_launch_mib": min(r["rss_before_mib"] for r in mine),
        }
    plain_summary = {
        kind: {
            "seconds": [round(t[kind]["seconds"], 3) for t in plains],
            "median_seconds": round(statistics.median(t[kind]["seconds"] for t in plains), 3),
        }
        for kind in ("minimal", "full")
    }
    fastest = min(by_batch, key=lambda b: by_batch[b]["median_launch_seconds"])
    figures: dict[str, Any] = {
        "benchmark": "campaign_launch",
        "db": args.db,
        "fixture": fixture,
        "plain_insert": plain_summary,
        "by_batch": by_batch,
        "fastest_batch": fastest,
        "load_avg_at_end": os.getloadavg(),
        "machine": machine,
    }

    if args.what_if:
        argv = _child_argv(fixture, str(args.profile_batch), "--whatif-child")
        proc = _setup.run_child(argv)
        if proc.returncode:
            raise SystemExit(f"what-if child failed:\n{proc.stderr[-4000:]}")
        measured = _setup.child_json(proc.stdout)
        want = measured["launch_digest"]
        if want[0] != args.grants:
            raise SystemExit(f"the launch wrote {want[0]} items, not {args.grants}")
        whatif: dict[str, Any] = {
            "batch": args.profile_batch,
            "launch_seconds": round(measured["launch_seconds"], 2),
            "launch_steps_seconds": {k: round(v, 2) for k, v in measured["launch_steps"].items()},
            "plain_full_seconds": round(measured["plain_full_seconds"], 2),
        }
        _setup.say(
            f"[what-if] batch {args.profile_batch}: launch {measured['launch_seconds']:.1f}s; "
            f"plain INSERT ... SELECT (full snapshot) {measured['plain_full_seconds']:.2f}s"
        )
        for label, seconds in measured["launch_steps"].items():
            _setup.say(f"  {seconds:7.2f}s  {label}")
        for how in WHAT_IFS:
            if measured[f"whatif_{how}_digest"] != want:
                raise SystemExit(f"what-if {how} wrote different items than the launch")
            seconds = measured[f"whatif_{how}_seconds"]
            whatif[how] = {
                "seconds": round(seconds, 2),
                "phases": {k: round(v, 2) for k, v in measured[f"whatif_{how}_phases"].items()},
                "ratio_over_plain_full": round(seconds / measured["plain_full_seconds"], 2),
                "speed_up_over_launch": round(measured["launch_seconds"] / seconds, 2),
            }
            _setup.say(
                f"  what-if {how}: {seconds:.1f}s (same items and snapshots as the launch), "
                f"{whatif[how]['ratio_over_plain_full']}x the plain insert; phases "
                + ", ".join(f"{k} {v:.1f}s" for k, v in measured[f"whatif_{how}_phases"].items())
            )
        figures["what_if"] = whatif

    if args.profile:
        path = str(scratch.var_dir / "launch.prof")
        proc = _setup.run_child(_child_argv(fixture, str(args.profile_batch), "--profile-to", path))
        if proc.returncode:
            raise SystemExit(f"profile child failed:\n{proc.stderr[-4000:]}")
        profiled = _setup.child_json(proc.stdout)
        summary = summarise_profile(path)
        figures["profile"] = {
            "batch": args.profile_batch,
            "launch_seconds_under_cprofile": round(profiled["launches"][0]["seconds"], 2),
            "total_profiled_seconds": summary["total_profiled_seconds"],
            "steps": summary["steps"],
        }
        _setup.say(summary["top"])
        _setup.say(f"[profile] batch {args.profile_batch}, cumulative time of the launch's steps:")
        for label, cell in summary["steps"].items():
            _setup.say(f"  {cell['cumulative_s']:8.2f}s  {cell['calls']:>9,} calls  {label}")

    _setup.say(
        f"[launch] {args.db} plain INSERT ... SELECT of {args.grants:,} items: minimal snapshot "
        f"{plain_summary['minimal']['median_seconds']}s, full snapshot "
        f"{plain_summary['full']['median_seconds']}s (medians of {len(plains)})"
    )
    for batch, cell in by_batch.items():
        _setup.say(
            f"[launch] {args.db} {args.grants:,} grants, batch {batch}: launch "
            f"{cell['median_launch_seconds']}s median of {cell['launch_seconds']} "
            f"({cell['launch_items_per_s']:,.0f} items/s); ratio launch/plain "
            f"{cell['median_ratio_minimal']}x (minimal, rounds "
            f"{cell['ratio_launch_over_plain_minimal']}), {cell['median_ratio_full']}x (full, "
            f"rounds {cell['ratio_launch_over_plain_full']}); peak RSS during the launch "
            f"{cell['launch_peak_rss_mib']} MiB (RSS before {cell['rss_before_launch_mib']} MiB)"
        )
    _setup.say(f"[launch] fastest batch size: {fastest}")
    _setup.write_json(args.json, figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
