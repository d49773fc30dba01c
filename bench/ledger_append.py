"""Append throughput: the chained ledger writer against a plain INSERT of the same rows.

    .venv/bin/python bench/ledger_append.py --db sqlite   [--events 20000] [--rounds 4]
    .venv/bin/python bench/ledger_append.py --db postgres [--events 20000] [--rounds 4]

Chained: ``audit.services.record`` (writer lock, head read, database time, canonical hash,
insert), one event per transaction, into the scratch database.

Plain: the same ``record()`` arguments turned into the same field values by the same helpers
(action check, JSON round trip of ``data``, actor/target/request fields), then
``AuditEvent.objects.create(...)`` in its own ``transaction.atomic()``, with a running sequence
number and dummy hashes, Python time instead of database time, and no lock, no head read and
no hashing. It writes to a second scratch database of the same engine and settings (so both
tables start empty and grow alike), and the two are interleaved in rounds, alternating which
goes first, so a busy neighbour on the machine slows both rather than one.

Reports events/s of each and the ratio chained / plain (1.0 = the chain costs nothing).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup  # noqa: E402

DUMMY_HASH = "f" * 64


def plain_create(alias: str, sequence: int, kwargs: dict[str, Any]) -> Any:
    """``record()`` without the chain: same field derivation, a plain INSERT in a transaction."""
    from django.conf import settings
    from django.db import transaction
    from django.utils import timezone

    from audit import services
    from audit.actions import describe
    from audit.models import AuditEvent

    describe(kwargs["action"])
    fields = {
        "action": kwargs["action"],
        "data": json.loads(json.dumps(kwargs["data"] or {}, allow_nan=False)),
        "pipeline": kwargs["pipeline"] or {},
        "code_version": settings.CODE_VERSION,
        "deployment": settings.DEPLOYMENT_NAME,
        **services._actor_fields(kwargs["actor"]),
        **services._target_fields(kwargs["target"]),
        **services._request_fields(kwargs["request"]),
    }
    with transaction.atomic(using=alias):
        return AuditEvent.objects.using(alias).create(
            sequence=sequence,
            prev_hash=DUMMY_HASH,
            leaf_hash=DUMMY_HASH,
            occurred_at=timezone.now(),
            **fields,
        )


def chain_step_costs(calls: int = 2000) -> dict[str, float]:
    """Microseconds per call of each step ``record()`` adds to a plain insert."""
    from django.db import connection, transaction

    from audit import merkle
    from audit.canonical import canonical_bytes, event_payload
    from audit.models import AuditEvent
    from audit.services import database_now, lock_ledger

    def head() -> Any:
        return (
            AuditEvent.objects.order_by("-sequence")
            .values("sequence", "leaf_hash", "occurred_at")
            .first()
        )

    def head_sql() -> Any:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT sequence, leaf_hash, occurred_at FROM audit_auditevent "
                "ORDER BY sequence DESC LIMIT 1"
            )
            return cursor.fetchone()

    sample = list(AuditEvent.objects.order_by("-sequence")[:calls])
    costs: dict[str, float] = {}
    with transaction.atomic():
        for label, step in (
            ("writer lock (pg_advisory_xact_lock; no-op on SQLite)", lock_ledger),
            ("head read (ORM .values().first())", head),
            ("for comparison: the same head read as raw SQL", head_sql),
            ("database_now()", database_now),
        ):
            started = time.perf_counter()
            for _ in range(calls):
                step()
            costs[label] = round((time.perf_counter() - started) / calls * 1e6, 1)
    started = time.perf_counter()
    for event in sample:
        merkle.leaf_hash(canonical_bytes(event_payload(event))).hex()
    costs["canonical JSON + SHA-256"] = round(
        (time.perf_counter() - started) / len(sample) * 1e6, 1
    )
    return costs


def main() -> None:
    parser = _setup.arg_parser(__doc__.splitlines()[0], default_events=20_000)
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    args = parser.parse_args()

    machine = _setup.machine()
    _setup.bootstrap(args.db, "append", keep=args.keep, aliases=("plain",))

    from audit.models import AuditEvent
    from audit.services import record
    from audit.verify import ledger_verify

    factory = _setup.EventFactory(args.seed)
    inputs = [factory.record_kwargs(factory.raw()) for _ in range(args.events)]
    start_chained = AuditEvent.objects.count()  # events migrate itself recorded, if any
    start_plain = AuditEvent.objects.using("plain").count()

    # Warm both paths (imports, prepared connections, first-page allocation), untimed.
    for i in range(50):
        record(**inputs[i])
        plain_create("plain", start_plain + i + 1, inputs[i])
    next_plain = start_plain + 51

    per_round = args.events // args.rounds
    totals = {"chained": 0.0, "plain": 0.0}
    counts = {"chained": 0, "plain": 0}
    round_ratios = []
    _setup.say(
        f"[append] {args.db}: {per_round * args.rounds:,} events each way, "
        f"{args.rounds} interleaved rounds, one event per transaction"
    )
    for r in range(args.rounds):
        batch = inputs[r * per_round : (r + 1) * per_round]
        order = ("plain", "chained") if r % 2 == 0 else ("chained", "plain")
        seconds: dict[str, float] = {}
        for kind in order:
            started = time.perf_counter()
            if kind == "chained":
                for kwargs in batch:
                    record(**kwargs)
            else:
                for kwargs in batch:
                    plain_create("plain", next_plain, kwargs)
                    next_plain += 1
            seconds[kind] = time.perf_counter() - started
            totals[kind] += seconds[kind]
            counts[kind] += len(batch)
        ratio = seconds["plain"] / seconds["chained"]
        round_ratios.append(ratio)
        _setup.say(
            f"  round {r + 1}: chained {len(batch) / seconds['chained']:,.0f}/s, "
            f"plain {len(batch) / seconds['plain']:,.0f}/s, ratio {ratio:.2f}"
        )

    chained_rate = counts["chained"] / totals["chained"]
    plain_rate = counts["plain"] / totals["plain"]

    # Where the chained writer's extra time goes: each step record() adds, timed alone.
    breakdown = chain_step_costs()

    # The chained rows must form a valid ledger (and the plain table must hold every row).
    result = ledger_verify()
    assert result.ok, result.problems[:3]
    assert result.events == start_chained + 50 + counts["chained"], result.events
    assert AuditEvent.objects.using("plain").count() == next_plain - 1

    figures = {
        "benchmark": "ledger_append",
        "db": args.db,
        "events_each": counts["chained"],
        "rounds": args.rounds,
        "chained_events_per_s": round(chained_rate, 1),
        "plain_events_per_s": round(plain_rate, 1),
        "ratio_chained_over_plain": round(chained_rate / plain_rate, 3),
        "round_ratios": [round(x, 3) for x in round_ratios],
        "median_round_ratio": round(statistics.median(round_ratios), 3),
        "chained_us_per_event": round(1e6 / chained_rate, 1),
        "plain_us_per_event": round(1e6 / plain_rate, 1),
        "chain_steps_us": breakdown,
        "ledger_verified_events": result.events,
        "load_avg_at_end": _setup.os.getloadavg(),
        "machine": machine,
    }
    _setup.say(
        f"[append] {args.db}: chained {chained_rate:,.0f} events/s "
        f"({figures['chained_us_per_event']} us), plain {plain_rate:,.0f} events/s "
        f"({figures['plain_us_per_event']} us); ratio chained/plain "
        f"{figures['ratio_chained_over_plain']:.2f} (median of rounds "
        f"{figures['median_round_ratio']:.2f}); chain verified ({result.events:,} events)"
    )
    _setup.say(
        "[append] record()'s chain steps, each timed alone (us/call): "
        + ", ".join(f"{k} {v}" for k, v in breakdown.items())
    )
    _setup.write_json(args.json, figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
