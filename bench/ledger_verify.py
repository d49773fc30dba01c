"""Verification throughput: ``ledger_verify()`` against raw SHA-256 over the same bytes.

    .venv/bin/python bench/ledger_verify.py --db sqlite   [--events 200000] [--rss-at 50000]
    .venv/bin/python bench/ledger_verify.py --db postgres [--events 200000] [--rss-at 50000]
    ... [--repeat 2] [--profile]

Builds the ledger with the fast fixture path (``_setup.bulk_ledger``: the chain computed in
Python with ``audit.canonical`` and ``audit.merkle``, a signed checkpoint every 10,000 events),
keeping every event's canonical bytes in memory. Then, at ``--rss-at`` events and again at
``--events`` events:

- ``ledger_verify()`` runs in a child process, so its peak RSS is its own and not the fixture
  builder's: events/s, MB/s of canonical bytes, and peak RSS as ``/usr/bin/time -v`` reports it
  (the ru_maxrss that wait4 returns for a cleanly forked process) and as the child's own VmHWM,
  read just before the call (Django loaded, connection open) and after it;
- in the same child after the call, a bare scan of the same columns in the same order through
  the DB-API cursor (no ORM, no hashing): the floor any Python verifier reading the database
  pays before doing any work;
- in the parent, right before and after each child, ``hashlib.sha256(b"\\x00" + canonical)``
  over the same canonical byte strings held in memory: events/s and MB/s.

The ratio is verify / raw (best run of each; the aim is >= 0.5). Also reported: the cost of
the canonical JSON serialisation alone (``canonical_bytes`` of the already-built dictionaries),
which bounds the ratio any verifier that re-serialises each event can reach.

In memory, over the same canonical bytes, two ceilings: the leaf hash plus
``merkle.StreamingRoot.add`` (the tree costs about one more SHA-256 per event), and
``canonical_bytes`` over already-built dictionaries. They bound the ratio any verifier that
builds the tree, or re-serialises each event, can reach however fast it reads the database.

``--what-if`` also times, in the same child, two verification loops that are NOT the project's
verifier, to size proposals: "lean" (the same leaf, chain and tree checks over DB-API tuples,
one reused JSONEncoder, time formatted without strftime) and "stored canonical" (hash canonical
bytes stored in a scratch side table ``bench_canonical`` and build the tree: what verifying
would cost if ``record()`` stored the exact bytes it hashed).

``--profile`` runs one more verification under cProfile and prints where the time goes, by
category (ORM row materialisation, driver, JSON, payload building, time formatting, hashing).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup  # noqa: E402

# --- The measured child ------------------------------------------------------------------------


def child(profile_path: str | None, what_if: bool) -> None:
    _setup.attach()
    from django.db import connection

    from audit.verify import ledger_verify

    connection.ensure_connection()
    baseline_peak = _setup.vm_hwm_mib()
    baseline_now = _setup.current_rss_mib()
    profiler = cProfile.Profile() if profile_path else None
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = ledger_verify()
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    if profiler and profile_path:
        profiler.dump_stats(profile_path)
    peak = _setup.vm_hwm_mib()
    scan = scan_floor() if not profiler else None
    extra = {}
    if what_if and not profiler:
        extra["lean_seconds"], lean_events = lean_verify()
        extra["stored_seconds"], stored_events = stored_canonical_verify()
        assert lean_events == stored_events == result.events, (lean_events, stored_events)
    print(
        json.dumps(
            {
                "ok": result.ok,
                "problems": result.problems[:3],
                "events": result.events,
                "checkpoints": result.checkpoints,
                "seconds": seconds,
                "rss_before_mib": round(baseline_now, 1),
                "vm_hwm_before_mib": round(baseline_peak, 1),
                "vm_hwm_after_mib": round(peak, 1),
                "rss_after_mib": round(_setup.current_rss_mib(), 1),
                "scan_seconds": scan,
                **extra,
            }
        )
    )


def _scan_sql() -> str:
    from audit.canonical import PAYLOAD_FIELDS

    columns = ", ".join(PAYLOAD_FIELDS)  # constant model field names, no input
    return f"SELECT {columns}, leaf_hash FROM audit_auditevent ORDER BY sequence"  # noqa: S608


def scan_floor() -> float:
    """Seconds to fetch every event's canonical columns in sequence order, doing nothing else."""
    from django.db import connection, transaction

    sql = _scan_sql()
    started = time.perf_counter()
    with transaction.atomic():
        if connection.vendor == "postgresql":  # server-side, as QuerySet.iterator() reads
            cursor = connection.connection.cursor(name="bench_scan")
            cursor.itersize = 2000
        else:
            cursor = connection.connection.cursor()
        cursor.execute(sql)
        while cursor.fetchmany(2000):
            pass
        cursor.close()
    return time.perf_counter() - started


def _cursor(name: str) -> Any:
    from django.db import connection

    if connection.vendor == "postgresql":  # server-side, as QuerySet.iterator() reads
        cursor = connection.connection.cursor(name=name)
        cursor.itersize = 2000
        return cursor
    return connection.connection.cursor()


def lean_verify() -> tuple[float, int]:
    """What-if: the leaf, chain and tree checks without the ORM row path (NOT the verifier)."""
    from django.db import transaction

    from audit import merkle
    from audit.canonical import GENESIS

    encode = json.JSONEncoder(
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode
    loads, sha256 = json.loads, hashlib.sha256
    tree = merkle.StreamingRoot()
    prev, expected, bad = GENESIS, 1, 0
    sql = _scan_sql()
    started = time.perf_counter()
    with transaction.atomic():
        cursor = _cursor("bench_lean")
        cursor.execute(sql)
        while rows := cursor.fetchmany(2000):
            for row in rows:
                (seq, prev_hash, at, a_id, a_name, a_kind, session, mfa, mfa_age, action, t_type,
                 t_id, t_repr, data, ip, ua, rid, version, env, pipeline, stored) = row  # fmt: skip
                if at.tzinfo is not None and at.utcoffset():
                    raise RuntimeError("the lean loop expects UTC session times")
                payload = {
                    "v": 1,
                    "seq": seq,
                    "prev": prev_hash,
                    "time": f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:"
                    f"{at.minute:02d}:{at.second:02d}.{at.microsecond:06d}Z",
                    "actor": {"id": a_id, "name": a_name, "kind": a_kind},
                    "auth": {"session": session, "mfa_method": mfa, "mfa_age": mfa_age},
                    "action": action,
                    "target": {"type": t_type, "id": t_id, "repr": t_repr},
                    "data": loads(data) if data.__class__ is str else data,
                    "ip": str(ip) if ip else None,
                    "ua": ua,
                    "request_id": rid,
                    "version": version,
                    "env": env,
                    "pipeline": loads(pipeline) if pipeline.__class__ is str else pipeline,
                }
                leaf = sha256(b"\x00" + encode(payload).encode()).digest()
                if seq != expected or prev_hash != prev or leaf.hex() != stored:
                    bad += 1
                tree.add(leaf)
                prev, expected = stored, expected + 1
        cursor.close()
    if bad:
        raise RuntimeError(f"the lean loop disagrees with the verifier on {bad} events")
    return time.perf_counter() - started, tree.size


def stored_canonical_verify() -> tuple[float, int]:
    """What-if: hash stored canonical bytes and build the tree (the side table, NOT the ledger)."""
    from django.db import transaction

    from audit import merkle

    sha256 = hashlib.sha256
    tree = merkle.StreamingRoot()
    started = time.perf_counter()
    with transaction.atomic():
        cursor = _cursor("bench_stored")
        cursor.execute("SELECT sequence, canonical FROM bench_canonical ORDER BY sequence")
        while rows := cursor.fetchmany(2000):
            for _sequence, canonical in rows:
                tree.add(sha256(b"\x00" + bytes(canonical)).digest())
        cursor.close()
    return time.perf_counter() - started, tree.size


def fill_side_table(canonicals: list[bytes], start: int) -> None:
    """Copy canonical bytes from ``start`` on into the what-if side table (scratch DB only)."""
    from django.db import connection, transaction

    blob = "bytea" if connection.vendor == "postgresql" else "blob"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS bench_canonical "
            f"(sequence bigint PRIMARY KEY, canonical {blob} NOT NULL)"
        )
        for offset in range(start, len(canonicals), 5000):
            cursor.executemany(
                "INSERT INTO bench_canonical (sequence, canonical) VALUES (%s, %s)",
                [
                    (i + 1, canonicals[i])
                    for i in range(offset, min(offset + 5000, len(canonicals)))
                ],
            )


# --- Parent -----------------------------------------------------------------------------------


def raw_sha256(canonicals: list[bytes]) -> float:
    """Seconds to hash every canonical string as an RFC 6962 leaf, the plain way."""
    sha256 = hashlib.sha256
    started = time.perf_counter()
    for canonical in canonicals:
        sha256(b"\x00" + canonical).digest()
    return time.perf_counter() - started


def leaf_and_tree(canonicals: list[bytes]) -> float:
    """Seconds for the leaf hashes plus the streaming Merkle root, in memory."""
    from audit import merkle

    sha256 = hashlib.sha256
    tree = merkle.StreamingRoot()
    started = time.perf_counter()
    for canonical in canonicals:
        tree.add(sha256(b"\x00" + canonical).digest())
    tree.root()
    return time.perf_counter() - started


def serialise_only(canonicals: list[bytes], sample: int = 20_000) -> float:
    """Seconds per event of ``canonical_bytes`` over already-built payload dictionaries."""
    from audit.canonical import canonical_bytes

    payloads = [json.loads(c) for c in canonicals[:sample]]
    started = time.perf_counter()
    for payload in payloads:
        canonical_bytes(payload)
    return (time.perf_counter() - started) / len(payloads)


CATEGORIES = [
    # (label, predicate on (filename, function name)); the first that matches wins.
    ("hashing: sha256, Merkle tree, hex", lambda f, n: "merkle.py" in f or "sha256" in n
     or n in ("<method 'hex' of 'bytes' objects>", "<method 'digest' of '_hashlib.HASH' objects>")),
    ("JSON parsing of data/pipeline columns (JSONField.from_db_value)",
     lambda f, n: "json/decoder" in f or "fields/json.py" in f
     or (f.endswith("json/__init__.py") and "loads" in n)),
    ("JSON serialisation: canonical_bytes / json.dumps", lambda f, n: "/json/" in f
     or "canonical_bytes" in n or n.startswith("<method 'encode' of 'str'")),
    ("time formatting: format_time", lambda f, n: "format_time" in n or "strftime" in n
     or "astimezone" in n),
    ("payload building: event_payload", lambda f, n: "event_payload" in n),
    ("DB driver fetch (psycopg / sqlite3 C code)", lambda f, n: "psycopg" in f or "sqlite3" in f
     or "fetchmany" in n or "SQLiteCursorWrapper" in n or "execute" in n),
    ("ORM row path: iterator, converters, datetime parsing, namedtuple",
     lambda f, n: "django/" in f or "datetime" in n or "fromisoformat" in n
     or "collections/__init__" in f or "re.Pattern" in n),
    ("verify loop itself (audit/verify.py)", lambda f, n: "audit/verify.py" in f),
]  # fmt: skip


def summarise_profile(path: str, top: int = 25) -> dict[str, Any]:
    stats = pstats.Stats(path)
    total = sum(entry[2] for entry in stats.stats.values())  # type: ignore[attr-defined]
    by_category: dict[str, float] = {}
    for (filename, _line, name), entry in stats.stats.items():  # type: ignore[attr-defined]
        label = next((c for c, test in CATEGORIES if test(filename, name)), "other")
        by_category[label] = by_category.get(label, 0.0) + entry[2]
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    return {
        "total_profiled_seconds": round(total, 2),
        "self_time_by_category": {
            k: {"seconds": round(v, 2), "share": round(v / total, 3)}
            for k, v in sorted(by_category.items(), key=lambda kv: -kv[1])
        },
        "top_functions": out.getvalue(),
    }


def main() -> None:
    parser = _setup.arg_parser(__doc__.splitlines()[0], default_events=200_000)
    parser.add_argument("--rss-at", type=int, default=50_000, help="also verify at this size")
    parser.add_argument("--repeat", type=int, default=2, help="verification runs per size")
    parser.add_argument("--profile", action="store_true", help="profile one more run")
    parser.add_argument(
        "--what-if", action="store_true", help="also time the lean and stored-canonical loops"
    )
    parser.add_argument("--child-verify", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_verify:
        child(args.profile_to, args.what_if)
        return

    machine = _setup.machine()
    scratch = _setup.bootstrap(args.db, "verify", keep=args.keep)
    sizes = sorted({s for s in (args.rss_at, args.events) if 0 < s <= args.events})
    canonicals: list[bytes] = []
    state = _setup.ledger_state()
    if state.size:
        raise SystemExit("migrate recorded events: the canonical bytes would be incomplete")
    runs: list[dict[str, Any]] = []
    for size in sizes:
        started = time.perf_counter()
        state = _setup.bulk_ledger(
            size - state.size, seed=args.seed, state=state, keep_canonical=canonicals
        )
        if args.what_if:
            fill_side_table(canonicals, runs[-1]["events"] if runs else 0)
        _setup.analyse()
        _setup.say(
            f"[fixture] {size:,} events in the ledger ({time.perf_counter() - started:.0f}s)"
        )
        mb = state.canonical_bytes_total / 1e6
        verify_times, raw_times, children = [], [], []
        for _ in range(args.repeat):
            raw_times.append(raw_sha256(canonicals))
            argv = [sys.executable, __file__, "--child-verify"]
            proc = _setup.run_child(argv + (["--what-if"] if args.what_if else []))
            if proc.returncode:
                raise SystemExit(f"verify child failed:\n{proc.stderr[-3000:]}")
            measured = _setup.child_json(proc.stdout)
            if not measured["ok"] or measured["events"] != size:
                raise SystemExit(f"the fixture did not verify: {measured}")
            measured["time_v_peak_rss_mib"] = round(proc.peak_rss_mib, 1)
            children.append(measured)
            verify_times.append(measured["seconds"])
            raw_times.append(raw_sha256(canonicals))
            _setup.say(
                f"  verify {size / measured['seconds']:,.0f} events/s "
                f"({mb / measured['seconds']:.1f} MB/s), peak RSS {proc.peak_rss_mib:.0f} MiB "
                f"(VmHWM before the call {measured['vm_hwm_before_mib']:.0f} MiB, after "
                f"{measured['vm_hwm_after_mib']:.0f}); raw sha256 "
                f"{size / min(raw_times[-2:]):,.0f} events/s; bare scan "
                f"{size / measured['scan_seconds']:,.0f} rows/s"
            )
        verify_s, raw_s = min(verify_times), min(raw_times)
        runs.append(
            {
                "events": size,
                "checkpoints": children[0]["checkpoints"],
                "canonical_mb": round(mb, 1),
                "avg_canonical_bytes": round(state.canonical_bytes_total / size, 1),
                "verify_seconds": [round(t, 2) for t in verify_times],
                "verify_events_per_s": round(size / verify_s, 1),
                "verify_mb_per_s": round(mb / verify_s, 2),
                "raw_seconds": [round(t, 3) for t in raw_times],
                "raw_events_per_s": round(size / raw_s, 1),
                "raw_mb_per_s": round(mb / raw_s, 1),
                "ratio_verify_over_raw": round(raw_s / verify_s, 4),
                "verify_peak_rss_mib": max(c["time_v_peak_rss_mib"] for c in children),
                "verify_vm_hwm_before_call_mib": children[0]["vm_hwm_before_mib"],
                "verify_vm_hwm_after_call_mib": max(c["vm_hwm_after_mib"] for c in children),
                "verify_rss_growth_mib": round(
                    max(c["vm_hwm_after_mib"] - c["vm_hwm_before_mib"] for c in children), 1
                ),
                "scan_seconds": [round(c["scan_seconds"], 2) for c in children],
                "scan_events_per_s": round(size / min(c["scan_seconds"] for c in children), 1),
                "ratio_scan_over_raw": round(raw_s / min(c["scan_seconds"] for c in children), 4),
                "ratio_verify_over_scan": round(
                    min(c["scan_seconds"] for c in children) / verify_s, 4
                ),
                **(
                    {
                        "what_if_lean_events_per_s": round(
                            size / min(c["lean_seconds"] for c in children), 1
                        ),
                        "what_if_lean_ratio_over_raw": round(
                            raw_s / min(c["lean_seconds"] for c in children), 4
                        ),
                        "what_if_stored_canonical_events_per_s": round(
                            size / min(c["stored_seconds"] for c in children), 1
                        ),
                        "what_if_stored_canonical_ratio_over_raw": round(
                            raw_s / min(c["stored_seconds"] for c in children), 4
                        ),
                    }
                    if args.what_if
                    else {}
                ),
            }
        )

    per_event_serialise = serialise_only(canonicals)
    per_event_raw = min(runs[-1]["raw_seconds"]) / runs[-1]["events"]
    tree_times = [leaf_and_tree(canonicals) for _ in range(2)]
    raw_again = [raw_sha256(canonicals) for _ in range(2)]
    ratio_tree = min(raw_again) / min(tree_times)
    figures: dict[str, Any] = {
        "benchmark": "ledger_verify",
        "db": args.db,
        "runs": runs,
        "ratio_verify_over_raw": runs[-1]["ratio_verify_over_raw"],
        "canonical_bytes_us_per_event_alone": round(per_event_serialise * 1e6, 2),
        "raw_sha256_us_per_event": round(per_event_raw * 1e6, 3),
        "ratio_ceiling_if_serialising": round(
            per_event_raw / (per_event_raw + per_event_serialise), 4
        ),
        "leaf_plus_tree_us_per_event": round(min(tree_times) / len(canonicals) * 1e6, 3),
        "ratio_ceiling_with_tree_in_memory": round(ratio_tree, 4),
        "load_avg_at_end": os.getloadavg(),
        "machine": machine,
    }

    if args.profile:
        path = str(scratch.var_dir / "verify.prof")
        proc = _setup.run_child([sys.executable, __file__, "--child-verify", "--profile-to", path])
        if proc.returncode:
            raise SystemExit(f"profile child failed:\n{proc.stderr[-3000:]}")
        profile = summarise_profile(path)
        figures["profile"] = {k: v for k, v in profile.items() if k != "top_functions"}
        _setup.say(profile["top_functions"])
        _setup.say("[profile] self time by category:")
        for label, cell in profile["self_time_by_category"].items():
            _setup.say(f"  {cell['share']:6.1%}  {cell['seconds']:7.2f}s  {label}")

    for run in runs:
        _setup.say(
            f"[verify] {args.db} {run['events']:,} events: ledger_verify "
            f"{run['verify_events_per_s']:,.0f} events/s ({run['verify_mb_per_s']} MB/s), "
            f"raw sha256 {run['raw_events_per_s']:,.0f} events/s ({run['raw_mb_per_s']} MB/s), "
            f"ratio {run['ratio_verify_over_raw']:.3f}; peak RSS {run['verify_peak_rss_mib']} MiB "
            f"(VmHWM {run['verify_vm_hwm_before_call_mib']} MiB before the call, "
            f"{run['verify_vm_hwm_after_call_mib']} after); bare column scan "
            f"{run['scan_events_per_s']:,.0f} rows/s (scan/raw {run['ratio_scan_over_raw']:.3f}, "
            f"verify/scan {run['ratio_verify_over_scan']:.3f})"
        )
    if args.what_if:
        run = runs[-1]
        _setup.say(
            f"[what-if] lean loop {run['what_if_lean_events_per_s']:,.0f} events/s (ratio "
            f"{run['what_if_lean_ratio_over_raw']:.3f}); stored canonical bytes "
            f"{run['what_if_stored_canonical_events_per_s']:,.0f} events/s (ratio "
            f"{run['what_if_stored_canonical_ratio_over_raw']:.3f})"
        )
    _setup.say(
        f"[verify] in memory: leaf hash + Merkle tree {figures['leaf_plus_tree_us_per_event']} "
        f"us/event, i.e. ratio {figures['ratio_ceiling_with_tree_in_memory']:.3f} with no "
        "database and no serialisation at all"
    )
    _setup.say(
        f"[verify] canonical_bytes alone {figures['canonical_bytes_us_per_event_alone']} us/event "
        f"vs raw sha256 {figures['raw_sha256_us_per_event']} us/event: a verifier that "
        f"re-serialises cannot pass ratio {figures['ratio_ceiling_if_serialising']:.3f}"
    )
    _setup.write_json(args.json, figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
