"""Auditor report exports at scale: rows/s and peak RSS of ``manage.py report_export``.

    .venv/bin/python bench/report_export.py [--grants 1000000] [--formats csv,xlsx]

PostgreSQL only (the size an auditor's export meets in production). The fixture is written with
COPY: ``--grants`` live grants (10,000 people x ``--grants``/10,000 entitlements, ten teams),
each with its approved request, one approval and one history row, so the reports' joins, the
approvals prefetch and the as-of history subquery all have their production shape. Then, as its
own process under ``/usr/bin/time -v`` (see ``_setup.run_child``), the operator's command

    manage.py report_export access-as-of --format FMT [--param team=ID] -o out.zip

for one team (a tenth of the rows) and for everyone, in each format. Reported per run: rows,
seconds (the command's own and wall), rows/s, peak RSS; the bundle is checked with the offline
verifier once. Memory must stay flat with rows (the writers stream; the aim for 100,000 rows is
the same peak as for 1,000).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup  # noqa: E402

PEOPLE = 10_000
TEAMS = 10
_WROTE = re.compile(r": (\d+) rows of .*; ([\d.]+)s\.")


def _copy(table: str, columns: list[str], rows: Any) -> int:
    from django.db import connection

    count = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
    return count


def _reset_sequences(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608 - ours
                f"(SELECT COALESCE(MAX(id), 1) FROM {table}))"
            )


def build(grants: int, seed: int) -> dict[str, Any]:
    from django.db import connection

    from accessreq.models import Entitlement, Environment, RiskTier, System
    from audit.services import record
    from portal.models import Team, User

    rng = random.Random(seed)  # noqa: S311 - fixture data
    clock = datetime.now(UTC)
    teams = Team.objects.bulk_create(
        Team(name=f"Team {n:02d}", slug=f"team-{n:02d}") for n in range(TEAMS)
    )
    people = User.objects.bulk_create(
        User(
            email=f"person{n:05d}@example.com",
            display_name=f"Person {n:05d}",
            team=teams[n % TEAMS],
            password="!",  # noqa: S106 - an unusable password
        )
        for n in range(PEOPLE)
    )
    system = System.objects.create(name="payments-service", slug="payments-service")
    tiers = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL]
    environments = [
        Environment.objects.create(name=str(tier), slug=str(tier), risk_tier=tier) for tier in tiers
    ]
    per_person = max(1, grants // PEOPLE)
    entitlements = Entitlement.objects.bulk_create(
        Entitlement(
            system=system,
            environment=environments[n % len(environments)],
            name=f"role-{n:03d}",
            slug=f"role-{n:03d}",
        )
        for n in range(per_person)
    )
    stages = json.dumps(
        [{"position": 1, "rule": "manager", "rule_label": "Manager", "quorum": 1, "step_up": False}]
    )
    pairs = [(p, e) for e in entitlements for p in people][:grants]
    starts = [clock - timedelta(days=rng.uniform(1, 25)) for _ in pairs]
    started = time.perf_counter()
    request_columns = [
        "id", "requester_id", "beneficiary_id", "entitlement_id", "kind", "justification",
        "ticket", "incident", "duration", "state", "stages", "current_stage", "created_at",
        "decided_at", "review_comment",
    ]  # fmt: skip

    def requests() -> Any:
        for n, ((person, entitlement), start) in enumerate(zip(pairs, starts, strict=True), 1):
            yield (
                n, person.pk, person.pk, entitlement.pk, "new",
                f"Ticket work for release {n % 997}: needs {entitlement.name}",
                f"OPS-{n}", "", timedelta(days=30), "active", stages, 1,
                start - timedelta(hours=2), start, "",
            )  # fmt: skip

    _copy("accessreq_accessrequest", request_columns, requests())
    grant_columns = [
        "id", "beneficiary_id", "entitlement_id", "request_id", "state", "break_glass",
        "starts_at", "expires_at", "created_at", "revoke_reason",
    ]  # fmt: skip

    def grant_rows() -> Any:
        for n, ((person, entitlement), start) in enumerate(zip(pairs, starts, strict=True), 1):
            yield (
                n, person.pk, entitlement.pk, n, "active", False, start,
                start + timedelta(days=30), start, "",
            )  # fmt: skip

    _copy("accessreq_grant", grant_columns, grant_rows())
    history_columns = [*grant_columns, "history_date", "history_type", "history_change_reason"]

    def history_rows() -> Any:
        for row in grant_rows():
            yield (*row, row[6], "+", None)

    history_columns[0] = "id"
    _copy("accessreq_historicalgrant", history_columns, history_rows())
    managers = [p.pk for p in people[:50]]

    def approvals() -> Any:
        for n, start in enumerate(starts, 1):
            yield (n, n, 1, managers[n % 50], "approve", "", "totp", 40, start)

    _copy(
        "accessreq_approval",
        ["id", "request_id", "stage", "approver_id", "decision", "comment", "mfa_method",
         "mfa_age_seconds", "decided_at"],
        approvals(),
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accessreq_accessrequest SET grant_id = id"
        )  # every request is its grant's
    _reset_sequences("accessreq_accessrequest", "accessreq_grant", "accessreq_approval")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    record(actor=None, action="demo.seeded", data={"grants": len(pairs)})
    return {"grants": len(pairs), "fixture_seconds": round(time.perf_counter() - started, 1),
            "team": teams[0].pk}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grants", type=int, default=1_000_000)
    parser.add_argument("--formats", default="csv,xlsx")
    parser.add_argument("--seed", type=int, default=20261203)
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    machine = _setup.machine()
    scratch = _setup.bootstrap("postgres", "reports", keep=args.keep)
    fixture = build(args.grants, args.seed)
    _setup.say(f"[fixture] {fixture['grants']:,} grants in {fixture['fixture_seconds']}s")
    runs = []
    verified = False
    for fmt in args.formats.split(","):
        for label, params in (("one team", ["--param", f"team={fixture['team']}"]), ("all", [])):
            out = scratch.var_dir / f"report-{fmt}-{label.replace(' ', '-')}.zip"
            cmd = [sys.executable, "manage.py", "report_export", "access-as-of",
                   "--format", fmt, *params, "-o", str(out)]  # fmt: skip
            proc = _setup.run_child(cmd)
            if proc.returncode:
                raise SystemExit(f"report_export failed:\n{proc.stderr[-3000:]}")
            match = _WROTE.search(proc.stdout)
            if not match:
                raise SystemExit(f"unexpected output: {proc.stdout!r}")
            rows, own = int(match[1]), float(match[2])
            run = {
                "format": fmt,
                "scope": label,
                "rows": rows,
                "seconds": own,
                "wall_seconds": round(proc.seconds, 1),
                "rows_per_s": round(rows / own),
                "peak_rss_mib": round(proc.peak_rss_mib, 1),
                "bundle_bytes": out.stat().st_size,
            }
            runs.append(run)
            _setup.say(
                f"[{fmt} {label}] {rows:,} rows in {own:.1f}s ({run['rows_per_s']:,} rows/s), "
                f"peak RSS {proc.peak_rss_mib:.0f} MiB, "
                f"bundle {_setup.human_bytes(run['bundle_bytes'])}"
            )
            if not verified and label == "one team":
                check = _setup.run_child([sys.executable, "audit/verify_bundle.py", str(out)])
                _setup.say(f"[verify_bundle] exit {check.returncode}: {check.stdout.strip()[:160]}")
                if check.returncode:
                    raise SystemExit("the bundle did not verify")
                verified = True
            out.unlink()
    figures = {"benchmark": "report_export", **fixture, "runs": runs,
               "load_avg_at_end": os.getloadavg(), "machine": machine}  # fmt: skip
    _setup.write_json(args.json, figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
