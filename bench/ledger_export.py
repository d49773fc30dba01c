"""Evidence-bundle export of a large ledger: peak RSS (aim < 150 MB) and rows/s.

    .venv/bin/python bench/ledger_export.py --db postgres [--events 1000000] [--verify-bundle]
    .venv/bin/python bench/ledger_export.py --db sqlite   [--events 1000000]

Builds the ledger with the fast fixture path (``_setup.bulk_ledger``, a signed checkpoint every
10,000 events), then records ``--tail`` more events through ``audit.services.record`` so that,
as in production, the newest events are not yet under a checkpoint and the export has to sign
one first (``write_bundle`` does that: a Merkle root over every leaf).

The export runs as its own process, exactly as an operator would run it::

    .venv/bin/python manage.py audit_export -o bundle.zip

under ``/usr/bin/time -v``; its peak RSS is that process's own "Maximum resident set size"
(the ru_maxrss wait4 returns; see ``_setup.run_child`` for why not wait4 on a direct child).
For scale, a child that only loads Django and ``audit.export`` and opens the connection is
measured the same way. rows/s = exported events /
the command's own reported seconds (and / the process's wall time, start-up included).

The bundle is then checked: its ``events.jsonl`` is streamed to count lines and
(``--verify-bundle``) the offline verifier ``audit/verify_bundle.py`` is run on it, also timed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup  # noqa: E402

_WROTE = re.compile(
    r"Wrote .*?: (\d+) events, covered by the checkpoint of (\d+) events.*?([\d.]+)s\."
)


def child_baseline() -> None:
    _setup.attach()
    from django.db import connection

    import audit.export  # noqa: F401 - what the export command loads
    from portal.models import User

    connection.ensure_connection()
    User.objects.system_actor()
    print(json.dumps({"vm_hwm_mib": round(_setup.vm_hwm_mib(), 1)}))


def main() -> None:
    parser = _setup.arg_parser(__doc__.splitlines()[0], default_events=1_000_000)
    parser.add_argument("--tail", type=int, default=5, help="events after the last checkpoint")
    parser.add_argument(
        "--verify-bundle", action="store_true", help="also run verify_bundle.py on the bundle"
    )
    parser.add_argument("--child-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_baseline:
        child_baseline()
        return

    exporter = _setup.REPO / "audit" / "management" / "commands" / "audit_export.py"
    if not exporter.exists():
        raise SystemExit(f"{exporter.relative_to(_setup.REPO)} does not exist yet")

    machine = _setup.machine()
    scratch = _setup.bootstrap(args.db, "export", keep=args.keep)

    from audit.services import record

    started = time.perf_counter()
    state = _setup.bulk_ledger(args.events, seed=args.seed)
    factory = _setup.EventFactory(args.seed + 1)
    for _ in range(args.tail):
        record(**factory.record_kwargs(factory.raw()))
    _setup.analyse()
    fixture_s = time.perf_counter() - started
    total = state.size + args.tail
    _setup.say(f"[fixture] {total:,} events ({fixture_s:.0f}s), last checkpoint {state.size:,}")

    base = _setup.run_child([sys.executable, __file__, "--child-baseline"])
    if base.returncode:
        raise SystemExit(f"baseline child failed:\n{base.stderr[-3000:]}")

    bundle = scratch.var_dir / "bundle.zip"
    cmd = [sys.executable, "manage.py", "audit_export", "-o", str(bundle)]
    _setup.say(f"[export] {' '.join(cmd[1:])}")
    proc = _setup.run_child(cmd)
    if proc.returncode:
        raise SystemExit(f"audit_export failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    match = _WROTE.search(proc.stdout)
    if not match:
        raise SystemExit(f"unexpected audit_export output: {proc.stdout!r}")
    exported, tree_size, own_seconds = int(match[1]), int(match[2]), float(match[3])
    _setup.say(f"  {proc.stdout.strip()}")

    # The bundle holds every event: count events.jsonl lines without unpacking it.
    lines = 0
    with zipfile.ZipFile(bundle) as archive, archive.open("events.jsonl") as events:
        for _ in events:
            lines += 1
        members = {i.filename: (i.file_size, i.compress_size) for i in archive.infolist()}
    assert lines == exported, (lines, exported)

    figures: dict[str, Any] = {
        "benchmark": "ledger_export",
        "db": args.db,
        "events_in_ledger": total,
        "events_exported": exported,
        "checkpoint_tree_size": tree_size,
        "command": "manage.py audit_export -o bundle.zip",
        "export_seconds_reported": own_seconds,
        "export_wall_seconds": round(proc.seconds, 2),
        "rows_per_s": round(exported / own_seconds, 1),
        "rows_per_s_wall": round(exported / proc.seconds, 1),
        "peak_rss_mib": round(proc.peak_rss_mib, 1),
        "peak_rss_mb": round(proc.peak_rss_mib * 2**20 / 1e6, 1),
        "baseline_django_rss_mib": round(base.peak_rss_mib, 1),
        "bundle_bytes": bundle.stat().st_size,
        "members": members,
        "fixture_seconds": round(fixture_s, 1),
        "load_avg_at_end": os.getloadavg(),
        "machine": machine,
    }
    _setup.say(
        f"[export] {args.db}: {exported:,} events in {own_seconds:.1f}s "
        f"({figures['rows_per_s']:,.0f} rows/s; {proc.seconds:.1f}s wall with start-up, "
        f"{figures['rows_per_s_wall']:,.0f} rows/s); peak RSS {proc.peak_rss_mib:.1f} MiB "
        f"= {figures['peak_rss_mb']} MB (aim < 150 MB; Django alone {base.peak_rss_mib:.0f} "
        f"MiB); bundle {_setup.human_bytes(figures['bundle_bytes'])}"
    )

    if args.verify_bundle:
        verifier = [sys.executable, "audit/verify_bundle.py", str(bundle)]
        check = _setup.run_child(verifier)
        figures["verify_bundle"] = {
            "returncode": check.returncode,
            "seconds": round(check.seconds, 1),
            "peak_rss_mib": round(check.peak_rss_mib, 1),
            "output": (check.stdout + check.stderr).strip()[-500:],
        }
        _setup.say(
            f"[verify_bundle] exit {check.returncode} in {check.seconds:.1f}s, peak RSS "
            f"{check.peak_rss_mib:.0f} MiB: {check.stdout.strip()[:200]}"
        )
        if check.returncode:
            raise SystemExit(f"the bundle did not verify:\n{figures['verify_bundle']['output']}")
    _setup.write_json(args.json, figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
