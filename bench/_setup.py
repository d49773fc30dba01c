"""Shared plumbing for the ledger benchmarks (not part of the test suite; tests never import it).

- ``bootstrap(db, name)``: a scratch environment of its own: a temporary GATEHOUSE_VAR_DIR, a
  scratch database (SQLite file in the temp dir, or ``gatehouse_bench_<name>`` on the local
  PostgreSQL, dropped first if a crashed run left it and dropped again at exit), Django set up
  with ``portal.settings`` and ``migrate`` run.
- ``attach()``: the same Django set-up in a child process that inherits the parent's environment.
- ``EventFactory``: deterministic, realistic event field values (people signing in, access
  requests changing state, admin edits, pipeline service calls), as ``record()`` arguments or as
  ready ``AuditEvent`` field values.
- ``bulk_ledger()``: the fast fixture path: computes the chain in Python with ``audit.canonical``
  and ``audit.merkle`` (the same functions ``record()`` and the verifier use), inserts with
  ``bulk_create`` in batches and signs a checkpoint every ``checkpoint_every`` events. The
  verifier recomputes every hash, so a fixture built this way is checked, not trusted.
- ``run_child()``: runs a command in a child process under ``/usr/bin/time -v`` and returns its
  own peak RSS, so a measured process's memory is not mixed with the fixture builder's.
"""

from __future__ import annotations

import argparse
import atexit
import copy
import hashlib
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PG_HOST = os.environ.get("BENCH_PG_HOST", "127.0.0.1")
PG_PORT = os.environ.get("BENCH_PG_PORT", "5432")
PG_USER = os.environ.get("BENCH_PG_USER", "postgres")
_CHILD_FLAG = "GATEHOUSE_BENCH_CHILD"


# --- Arguments and output ----------------------------------------------------------------------


def arg_parser(description: str, default_events: int) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--db", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--events", type=int, default=default_events)
    parser.add_argument("--seed", type=int, default=20251126)
    parser.add_argument(
        "--json", metavar="PATH", help="also write the figures as JSON to this file"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temp dir and scratch database"
    )
    return parser


def say(message: str) -> None:
    print(message, flush=True)


def write_json(path: str | None, figures: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(figures, indent=2, default=str) + "\n")


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} GiB"


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (ru_maxrss is KiB on Linux).

    In a child this includes what its parent had resident when it spawned it (see
    ``run_child``); ``vm_hwm_mib`` does not.
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# --- Scratch environment -----------------------------------------------------------------------


@dataclass
class Scratch:
    db: str
    name: str
    var_dir: Path
    database_url: str
    pg_dbnames: list[str] = field(default_factory=list)
    keep: bool = False

    def cleanup(self) -> None:
        if self.keep:
            say(f"[kept] var dir {self.var_dir}, databases {self.pg_dbnames or 'in it'}")
            return
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: S110 - best effort at exit
            pass
        for dbname in self.pg_dbnames:
            _pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        shutil.rmtree(self.var_dir, ignore_errors=True)


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(
        host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(sql)


def _scratch_database(db: str, var_dir: Path, dbname: str, scratch: Scratch) -> str:
    if db == "postgres":
        _pg_admin(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        _pg_admin(f'CREATE DATABASE "{dbname}"')
        scratch.pg_dbnames.append(dbname)
        return f"postgres://{PG_USER}@{PG_HOST}:{PG_PORT}/{dbname}"
    return f"sqlite:///{var_dir / (dbname + '.sqlite3')}"


def bootstrap(db: str, name: str, *, keep: bool = False, aliases: tuple[str, ...] = ()) -> Scratch:
    """Create the scratch environment, set Django up on it and migrate.

    ``aliases`` adds further scratch databases (same engine and options) as extra Django
    database aliases, e.g. a second ledger table for a side-by-side comparison.
    """
    var_dir = Path(tempfile.mkdtemp(prefix=f"gatehouse-bench-{name}-"))
    scratch = Scratch(db, name, var_dir, "", keep=keep)
    atexit.register(scratch.cleanup)
    # The pid keeps two runs of one script (two people benchmarking at once) apart.
    base = f"gatehouse_bench_{name}_{os.getpid()}"
    scratch.database_url = _scratch_database(db, var_dir, base, scratch)

    os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
    os.environ["GATEHOUSE_VAR_DIR"] = str(var_dir)
    os.environ["DATABASE_URL"] = scratch.database_url
    os.environ["GATEHOUSE_ENV"] = "development"
    os.environ["DEBUG"] = "false"  # no query log growing in memory
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["CELERY_BROKER_URL"] = "memory://"
    os.environ[_CHILD_FLAG] = "1"  # what children inherit

    os.chdir(REPO)
    from django.conf import settings

    for alias in aliases:
        url = _scratch_database(db, var_dir, f"{base}_{alias}", scratch)
        import dj_database_url

        extra = copy.deepcopy(settings.DATABASES["default"])
        extra["NAME"] = dj_database_url.parse(url)["NAME"]
        settings.DATABASES[alias] = extra
    _setup_django()

    from django.core.management import call_command

    for alias in ("default", *aliases):
        started = time.perf_counter()
        call_command("migrate", database=alias, verbosity=0, interactive=False)
        say(f"[setup] {db} ({alias}): migrated in {time.perf_counter() - started:.1f}s")
    return scratch


def attach() -> None:
    """Django set-up in a child started by ``run_child`` (the parent's env points at the DB)."""
    if os.environ.get(_CHILD_FLAG) != "1":
        raise SystemExit("attach() is for child processes started by the benchmark itself")
    _setup_django()


def _setup_django() -> None:
    os.chdir(REPO)
    import django

    django.setup()


# --- Machine ----------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import sqlite3

    model = ""
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as handle:
        mem_kib = int(handle.readline().split()[1])
    info: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(mem_kib / 2**20, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "load_avg_at_start": os.getloadavg(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    try:
        import psycopg

        with psycopg.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=3
        ) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            info["postgresql"] = row[0] if row else "?"
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        info["postgresql"] = f"unavailable ({exc.__class__.__name__})"
    return info


# --- Realistic event values --------------------------------------------------------------------

_FIRST = (
    "Ada Bo Chen Dara Eli Femi Gus Hana Ivo Jun Kemal Lea Mina Noor Omar Pia Quin Rosa Sam Tove"
)
_LAST = "Okafor Lindqvist Nakamura Haddad Moreau Silva Kowalski Brennan Ivanova Osei Park Rossi"
_ROLES = [
    "prod-db read-only",
    "billing admin",
    "k8s prod namespace deployer",
    "Grafana editor",
    "AWS prod break-glass",
    "GitHub org owner",
    "Support console agent",
    "Payroll viewer",
]
_UAS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "gatehouse-pipeline/1.4 python-requests/2.32.3",
]
_HUMAN_ACTIONS = [
    ("auth.login", None),
    ("auth.mfa.verified", None),
    ("auth.logout", None),
    ("admin.object.changed", "request"),
    ("admin.object.created", "request"),
    ("user.changed", "user"),
    ("auth.login.failed", None),
]


class _Actor:
    """Stands in for a ``portal.User`` as ``record()`` reads it."""

    def __init__(self, pk: int, display: str, email: str, kind: str) -> None:
        self.pk = pk
        self.display = display
        self.email = email
        self.kind = kind
        self.is_authenticated = kind in ("human", "service")

    def __str__(self) -> str:
        return self.display


class _Session(dict[str, Any]):
    def __init__(self, key: str, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.session_key = key


class EventFactory:
    """Deterministic, realistic event values: about 0.9-1.1 KB of canonical JSON each."""

    def __init__(self, seed: int) -> None:
        from django.conf import settings

        self.rng = random.Random(seed)  # noqa: S311 - fixture data, not secrets
        self.version = settings.CODE_VERSION
        self.env = settings.DEPLOYMENT_NAME
        first, last = _FIRST.split(), _LAST.split()
        self.people: list[dict[str, Any]] = []
        for pk in range(2, 302):
            name = f"{self.rng.choice(first)} {self.rng.choice(last)}"
            email = name.lower().replace(" ", ".") + f"{pk}@example.com"
            key = uuid.UUID(int=self.rng.getrandbits(128)).hex
            self.people.append(
                {
                    "actor": _Actor(pk, name, email, "human"),
                    "actor_name": f"{name} <{email}>",
                    "session_key": key,
                    "session_hash": hashlib.sha256(key.encode()).hexdigest(),
                    "ip": f"10.{pk % 7}.{pk % 251}.{(pk * 37) % 254 + 1}",
                    "ua": self.rng.choice(_UAS[:3]),
                }
            )
        self.service = _Actor(1000, "deploy-bot", "deploy-bot@svc.example.com", "service")
        self.system = _Actor(1, "Gatehouse system", "", "system")

    def raw(self) -> dict[str, Any]:
        """One event's inputs; ``fields()`` and ``record_kwargs()`` turn it into either form."""
        rng = self.rng
        roll = rng.random()
        request_id = f"{rng.getrandbits(128):032x}"
        if roll < 0.08:  # pipeline service call
            req_id = rng.randint(1, 90000)
            return {
                "who": "service",
                "action": "admin.object.changed",
                "target": ("accessreq.accessrequest", req_id, f"Access request #{req_id}"),
                "data": {
                    "changed": {"status": ["approved", "provisioned"]},
                    "provisioner": "terraform",
                    "resource": f"arn:aws:iam::123456789012:role/{rng.choice(_ROLES)}",
                },
                "pipeline": {
                    "run_id": str(rng.randint(10**8, 10**9)),
                    "stage": rng.choice(["plan", "apply", "verify"]),
                    "commit": f"{rng.getrandbits(160):040x}",
                },
                "request_id": request_id,
            }
        if roll < 0.10:  # system jobs
            return {
                "who": "system",
                "action": "audit.checkpoint.anchored",
                "target": ("audit.checkpoint", rng.randint(1, 5000), "checkpoint"),
                "data": {"file": "/var/lib/gatehouse/audit-anchors.jsonl", "webhook_status": 200},
                "pipeline": {},
                "request_id": "",
            }
        person = rng.choice(self.people)
        action, kind = rng.choice(_HUMAN_ACTIONS)
        target: tuple[str, Any, str] | None = None
        data: dict[str, Any] = {}
        if kind == "request":
            req_id = rng.randint(1, 90000)
            role = rng.choice(_ROLES)
            target = ("accessreq.accessrequest", req_id, f"{person['actor']} requests {role}")
            data = {
                "changed": {
                    "status": ["submitted", rng.choice(["approved", "rejected"])],
                    "decided_by": [None, rng.randint(2, 301)],
                    "decision_note": ["", "Approved for the Q3 migration; expires in 14 days."],
                },
                "role": role,
                "expires_in_days": rng.choice([1, 7, 14, 30]),
            }
        elif kind == "user":
            other = rng.choice(self.people)
            target = ("portal.user", other["actor"].pk, other["actor_name"])
            data = {"changed": {"team": ["Platform", "Payments"], "manager_id": [12, 48]}}
        elif action == "auth.login.failed":
            data = {"email": person["actor"].email, "reason": "bad password"}
        return {
            "who": person,
            "action": action,
            "target": target,
            "data": data,
            "pipeline": {},
            "request_id": request_id,
            "mfa_age": rng.randint(0, 3000),
        }

    def record_kwargs(self, raw: dict[str, Any]) -> dict[str, Any]:
        """Arguments for ``audit.services.record`` (a request with a session for people)."""
        from django.http import HttpRequest

        who = raw["who"]
        request = None
        if isinstance(who, dict):
            actor = who["actor"]
            request = HttpRequest()
            request.META = {"REMOTE_ADDR": who["ip"], "HTTP_USER_AGENT": who["ua"]}
            request.request_id = raw["request_id"]  # type: ignore[attr-defined]
            request.session = _Session(  # type: ignore[assignment]
                who["session_key"],
                {"mfa_method": "totp", "mfa_verified_at": time.time() - raw["mfa_age"]},
            )
        elif who == "service":
            actor = self.service
            request = HttpRequest()
            request.META = {"REMOTE_ADDR": "10.20.0.5", "HTTP_USER_AGENT": _UAS[3]}
            request.request_id = raw["request_id"]  # type: ignore[attr-defined]
        else:
            actor = self.system
        return {
            "actor": actor,
            "action": raw["action"],
            "target": raw["target"],
            "data": raw["data"],
            "request": request,
            "pipeline": raw["pipeline"] or None,
        }

    def fields(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The ``AuditEvent`` field values ``record()`` would derive (minus chain and time)."""
        who = raw["who"]
        target = raw["target"]
        out: dict[str, Any] = {
            "action": raw["action"],
            "data": raw["data"],
            "pipeline": raw["pipeline"],
            "code_version": self.version,
            "deployment": self.env,
            "target_type": target[0] if target else "",
            "target_id": str(target[1]) if target else "",
            "target_repr": str(target[2])[:200] if target else "",
            "request_id": raw["request_id"],
            "ip": None,
            "user_agent": "",
            "session_hash": "",
            "mfa_method": "",
            "mfa_age_seconds": None,
        }
        if isinstance(who, dict):
            actor = who["actor"]
            out.update(
                actor_id=actor.pk,
                actor_name=who["actor_name"],
                actor_kind="human",
                ip=who["ip"],
                user_agent=who["ua"],
                session_hash=who["session_hash"],
                mfa_method="totp",
                mfa_age_seconds=raw["mfa_age"],
            )
        elif who == "service":
            s = self.service
            out.update(
                actor_id=s.pk,
                actor_name=f"{s} <{s.email}>",
                actor_kind="service",
                ip="10.20.0.5",
                user_agent=_UAS[3],
            )
        else:
            out.update(actor_id=self.system.pk, actor_name=str(self.system), actor_kind="system")
        return out


# --- Fast fixture: the chain computed in Python, bulk inserted ----------------------------------


@dataclass
class LedgerState:
    size: int = 0
    prev: str = ""
    tree: Any = None
    time: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    canonical_bytes_total: int = 0


def ledger_state() -> LedgerState:
    """The chain head as it is in the database now (events ``migrate`` may have recorded)."""
    from audit import merkle
    from audit.canonical import GENESIS
    from audit.ledger import leaf_hashes
    from audit.models import AuditEvent

    state = LedgerState(prev=GENESIS, tree=merkle.StreamingRoot())
    head = AuditEvent.objects.order_by("-sequence").first()
    if head is not None:
        for leaf in leaf_hashes(0, head.sequence):
            state.tree.add(leaf)
        state.size = head.sequence
        state.prev = head.leaf_hash
        state.time = max(state.time, head.occurred_at)
    return state


class _Row:
    """What ``event_payload`` reads from an event, without a model instance's overhead."""

    __slots__ = (
        "sequence", "prev_hash", "leaf_hash", "occurred_at", "actor_id", "actor_name",
        "actor_kind", "action", "target_type", "target_id", "target_repr", "data", "ip",
        "user_agent", "request_id", "session_hash", "mfa_method", "mfa_age_seconds",
        "code_version", "deployment", "pipeline",
    )  # fmt: skip

    leaf_hash: str

    def __init__(self, **values: Any) -> None:
        for name, value in values.items():
            setattr(self, name, value)


_COLUMNS = _Row.__slots__


def _insert_rows(rows: list[_Row]) -> None:
    """Plain INSERTs (SQLite executemany) or COPY (PostgreSQL) of ready rows, no ORM per row."""
    from django.db import connection

    if connection.vendor == "postgresql":
        sql = f"COPY audit_auditevent ({', '.join(_COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(getattr(row, c))
                        if c in ("data", "pipeline")
                        else getattr(row, c)
                        for c in _COLUMNS
                    ]
                )
        return
    # SQLite: the values as Django's SQLite backend stores them (naive UTC text, JSON text).
    sql = (  # constant column names, no input
        f"INSERT INTO audit_auditevent ({', '.join(_COLUMNS)}) "  # noqa: S608
        f"VALUES ({', '.join('%s' for _ in _COLUMNS)})"
    )
    values = []
    for row in rows:
        item = []
        for c in _COLUMNS:
            value = getattr(row, c)
            if c in ("data", "pipeline"):
                value = json.dumps(value)
            elif c == "occurred_at":
                value = str(value.astimezone(UTC).replace(tzinfo=None))
            item.append(value)
        values.append(item)
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)


def bulk_ledger(
    n: int,
    *,
    seed: int,
    state: LedgerState | None = None,
    batch: int = 5000,
    checkpoint_every: int = 10_000,
    keep_canonical: list[bytes] | None = None,
    progress: bool = True,
) -> LedgerState:
    """Append ``n`` chained events (and a checkpoint every ``checkpoint_every``) quickly."""
    from django.db import transaction

    from audit import ledger, merkle, signing
    from audit.canonical import canonical_bytes, event_payload
    from audit.models import Checkpoint, SigningKey

    state = state or ledger_state()
    factory = EventFactory(seed + state.size)
    key = signing.signing_key()
    public_hex = signing.public_bytes(key.public_key()).hex()
    key_id = signing.key_id_of(key.public_key())
    SigningKey.objects.get_or_create(
        key_id=key_id, defaults={"public_key": public_hex, "created_at": state.time}
    )
    rng = random.Random(seed * 7 + state.size)  # noqa: S311 - fixture timing
    started = time.perf_counter()
    done = 0
    while done < n:
        rows: list[_Row] = []
        checkpoints: list[Checkpoint] = []
        for _ in range(min(batch, n - done)):
            state.size += 1
            state.time += timedelta(microseconds=rng.randint(1, 4_000_000))
            event = _Row(
                sequence=state.size,
                prev_hash=state.prev,
                occurred_at=state.time,
                **factory.fields(factory.raw()),
            )
            canonical = canonical_bytes(event_payload(event))
            leaf = merkle.leaf_hash(canonical)
            event.leaf_hash = state.prev = leaf.hex()
            state.tree.add(leaf)
            state.canonical_bytes_total += len(canonical)
            if keep_canonical is not None:
                keep_canonical.append(canonical)
            rows.append(event)
            if checkpoint_every and state.size % checkpoint_every == 0:
                checkpoint = Checkpoint(
                    tree_size=state.size,
                    root_hash=state.tree.root().hex(),
                    signed_at=state.time + timedelta(microseconds=1),
                    key_id=key_id,
                )
                checkpoint.signature = key.sign(ledger.checkpoint_message(checkpoint)).hex()
                checkpoints.append(checkpoint)
        with transaction.atomic():
            _insert_rows(rows)
            if checkpoints:
                Checkpoint.objects.bulk_create(checkpoints)
        done += len(rows)
        if progress and (done % 100_000 < batch or done == n):
            rate = done / (time.perf_counter() - started)
            say(f"[fixture] {done:,}/{n:,} events ({rate:,.0f}/s)")
    return state


def analyse() -> None:
    """Fresh planner statistics after a bulk load (autovacuum may not have run yet)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


# --- Children ---------------------------------------------------------------------------------


@dataclass
class ChildResult:
    returncode: int
    seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str


_TIME = "/usr/bin/time"
_MAXRSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")


def run_child(argv: list[str], *, env: dict[str, str] | None = None) -> ChildResult:
    """Run ``argv`` to completion under ``/usr/bin/time -v``; its peak RSS is that child's own.

    Not ``wait4`` on a direct child: Linux carries the forking process's high-water RSS into
    the child's ``ru_maxrss`` across exec (and Python spawns with vfork), so a direct child of
    a parent holding a big fixture would report the parent's peak. ``/usr/bin/time`` is small
    and forks the command itself, so its "Maximum resident set size" is the command's alone.
    """
    with tempfile.TemporaryFile() as out, tempfile.NamedTemporaryFile() as report:
        started = time.perf_counter()
        proc = subprocess.run(  # noqa: S603 - our own interpreter and scripts
            [_TIME, "-v", "-o", report.name, *argv],
            stdout=out,
            stderr=subprocess.PIPE,
            env=env or dict(os.environ),
            check=False,
        )
        seconds = time.perf_counter() - started
        out.seek(0)
        match = _MAXRSS.search(Path(report.name).read_text())
        return ChildResult(
            proc.returncode,
            seconds,
            int(match[1]) / 1024 if match else float("nan"),
            out.read().decode(errors="replace"),
            proc.stderr.decode(errors="replace"),
        )


def vm_hwm_mib() -> float:
    """This process's own peak RSS (VmHWM of its address space, reset at exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def child_json(stdout: str) -> dict[str, Any]:
    """The last line of a child's stdout that is a JSON object (the child's figures)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            return dict(json.loads(line))
    raise RuntimeError(f"the child printed no figures:\n{stdout[-2000:]}")


def iter_batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
