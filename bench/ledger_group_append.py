"""Group append throughput: N threads appending through ``audit.group.GroupWriter`` against the
same threads each committing their own ``record()`` transaction.

    .venv/bin/python bench/ledger_group_append.py --db postgres|sqlite [--events 5000]
        [--threads 16]

Each caller waits until its event is committed in both modes, so the figure is what a
high-volume writer (API authorization decisions) can acknowledge per second.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup  # noqa: E402


def run(mode: str, events: int, threads: int) -> tuple[float, int]:
    from django.db import connection, transaction

    from audit.group import GroupWriter
    from audit.services import build_event, record

    writer = GroupWriter()
    per_thread = events // threads
    barrier = threading.Barrier(threads + 1)

    def work(n: int) -> None:
        barrier.wait()
        try:
            for i in range(per_thread):
                data = {"worker": n, "n": i}
                if mode == "grouped":
                    writer.append(build_event(actor=None, action="user.changed", data=data))
                else:
                    with transaction.atomic():
                        record(actor=None, action="user.changed", data=data)
        finally:
            connection.close()

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in pool:
        thread.join()
    seconds = time.perf_counter() - started
    groups = writer.groups
    writer.stop()
    return per_thread * threads / seconds, groups


def main() -> None:
    parser = _setup.arg_parser(__doc__.splitlines()[0], 5000)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    machine = _setup.machine()
    _setup.bootstrap(args.db, "group_append", keep=args.keep)
    from audit.verify import ledger_verify

    rates: dict[str, list[float]] = {"per-event": [], "grouped": []}
    for mode in ("per-event", "grouped", "per-event", "grouped"):
        rate, groups = run(mode, args.events, args.threads)
        commits = f" ({groups} commits)" if mode == "grouped" else ""
        _setup.say(
            f"[group] {args.db} {mode}: {rate:,.0f} events/s, {args.threads} threads{commits}"
        )
        rates[mode].append(round(rate, 1))
    verified = ledger_verify()
    figures = {
        "benchmark": "ledger_group_append",
        "db": args.db,
        **rates,
        "threads": args.threads,
        "events_each": args.events,
        "ledger_verified": verified.ok,
        "ledger_events": verified.events,
        "machine": machine,
    }
    print(json.dumps(figures, default=str))
    _setup.write_json(args.json, figures)


if __name__ == "__main__":
    main()
