"""`/api/v1/authorize` under load: gunicorn on PostgreSQL, wrk from a second process on loopback.

    .venv/bin/python bench/authorize_load.py [--grants 10000] [--seconds 20] [--connections 16]
        [--workers 2] [--threads 8] [--repo PATH]

The fixture: 200 service accounts, each holding 50 entitlements (10 systems x 5 environments,
scope ``deploy``) = 10,000 active grants, one minted API token each (through ``token_issue``).
The load: wrk (Debian's ``wrk``) with a Lua script cycling through 2,000 pre-built requests, 90%
for a scope the account holds (200 allow), 10% for one it does not (``rollback``: 403 deny),
each with a pipeline context. gunicorn runs the project's WSGI app with ``gthread`` workers,
``DEBUG=false``, Redis as the cache (rate limits), persistent database connections.

Every decision must be in the ledger: after the run the script counts the ``api.authorize.*``
events and compares them with the responses wrk counted (events >= responses: requests still in
flight when wrk stops may be committed after it stopped counting), then runs ``ledger_verify()``.

``--repo PATH`` serves another checkout of Gatehouse (its own .venv) against the same fixture,
for a before/after comparison; the fixture is built with this checkout's code.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _setup  # noqa: E402

SYSTEMS, ENVIRONMENTS, ACCOUNTS = 10, 5, 200
REQUESTS_IN_SCRIPT = 2000


def build_fixture(grants: int) -> list[tuple[str, list[tuple[str, str]]]]:
    """Accounts, catalog and grants; per account its token secret and the (system, env) held."""
    from django.db import transaction

    from accessreq.models import AccessRequest, Entitlement, Environment, Grant, Scope, System
    from accessreq.services.common import MfaContext, now
    from accessreq.services.tokens import token_issue
    from portal.models import User

    per_account = max(1, grants // ACCOUNTS)
    clock = now()
    started = time.perf_counter()
    with transaction.atomic():
        owner = User.objects.create(email="owner@example.com", display_name="Omar Owner")
        deploy, _ = Scope.objects.get_or_create(slug="deploy")
        Scope.objects.get_or_create(slug="rollback")
        tiers = ("low", "medium", "high", "critical", "high")
        environments = Environment.objects.bulk_create(
            Environment(name=f"env-{n}", slug=f"env-{n}", risk_tier=tiers[n])
            for n in range(ENVIRONMENTS)
        )
        systems = System.objects.bulk_create(
            System(name=f"service-{n:02d}", slug=f"service-{n:02d}") for n in range(SYSTEMS)
        )
        entitlements = Entitlement.objects.bulk_create(
            Entitlement(
                system=s,
                environment=e,
                name=f"deploy {s.slug} {e.slug}",
                slug=f"deploy-{s.slug}-{e.slug}",
            )
            for s in systems
            for e in environments
        )
        Entitlement.scopes.through.objects.bulk_create(
            Entitlement.scopes.through(entitlement_id=e.pk, scope_id=deploy.pk)
            for e in entitlements
        )
        accounts = User.objects.bulk_create(
            User(
                email=f"svc{n}@service.invalid",
                display_name=f"svc-{n:03d}",
                kind=User.Kind.SERVICE,
                password="!",  # noqa: S106 - the unusable-password marker
            )
            for n in range(ACCOUNTS)
        )
        User.owners.through.objects.bulk_create(
            User.owners.through(from_user_id=a.pk, to_user_id=owner.pk) for a in accounts
        )
        requests, plan = [], []
        for account in accounts:
            for entitlement in entitlements[:per_account]:
                plan.append((account, entitlement))
                requests.append(
                    AccessRequest(
                        requester=owner,
                        beneficiary=account,
                        entitlement=entitlement,
                        justification="Deploys from CI",
                        duration=timedelta(days=365),
                        state="active",
                        created_at=clock - timedelta(days=3),
                        decided_at=clock - timedelta(days=3),
                    )
                )
        AccessRequest.objects.bulk_create(requests, batch_size=5000)
        Grant.objects.bulk_create(
            (
                Grant(
                    beneficiary=a,
                    entitlement=e,
                    request=r,
                    state="active",
                    starts_at=clock - timedelta(days=3),
                    expires_at=clock + timedelta(days=300),
                    created_at=clock - timedelta(days=3),
                )
                for (a, e), r in zip(plan, requests, strict=True)
            ),
            batch_size=5000,
        )
    tokens = []
    fresh = MfaContext(method="totp", age_seconds=0)  # as if the owner had just typed a code
    for account in accounts:
        issued = token_issue(
            actor=owner, service_account=account, kind="minted", name="bench", mfa=fresh
        )
        held = [(e.system.slug, e.environment.slug) for e in entitlements[:per_account]]
        tokens.append((issued.secret, held))
    _setup.analyse()
    _setup.say(
        f"[fixture] {len(accounts)} service accounts, {len(plan):,} active grants, "
        f"{len(tokens)} tokens in {time.perf_counter() - started:.1f}s"
    )
    return tokens


def lua_script(tokens: list[tuple[str, list[tuple[str, str]]]], seed: int, path: Path) -> None:
    rng = random.Random(seed)  # noqa: S311 - load mix
    lines = []
    for n in range(REQUESTS_IN_SCRIPT):
        secret, held = rng.choice(tokens)
        system, environment = rng.choice(held)
        body = json.dumps(
            {
                "action": "deploy" if rng.random() < 0.9 else "rollback",
                "system": system,
                "environment": environment,
                "context": {
                    "commit_sha": f"{rng.getrandbits(160):040x}",
                    "run_id": str(100000 + n),
                    "stage": "deploy",
                    "repository": "acme/payments-service",
                },
            }
        )
        headers = f"{{['Authorization']='Bearer {secret}', ['Content-Type']='application/json'}}"
        lines.append(f"  wrk.format(nil, nil, {headers}, {_lua(body)}),")
    path.write_text(
        'wrk.method = "POST"\nwrk.path = "/api/v1/authorize"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        "local requests = nil\nlocal i = 0\n"
        "function init(args)\n  requests = {\n" + "\n".join(lines) + "\n  }\n"
        "  i = math.random(#requests)\nend\n"
        "function request()\n  i = i % #requests + 1\n  return requests[i]\nend\n"
    )


def _lua(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds so far of these processes (from /proc; gone ones count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


def processes_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in text.split()]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_gunicorn(repo: Path, port: int, workers: int, threads: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "CACHE_URL": os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/11"),
        "API_RATE_LIMIT_PER_MINUTE": "1000000",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
    }
    env.pop(_setup._CHILD_FLAG, None)
    argv = [
        str(repo / ".venv/bin/gunicorn"),
        "portal.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--worker-class",
        "gthread",
        "--log-level",
        "warning",
        "--backlog",
        "512",
    ]
    proc = subprocess.Popen(argv, cwd=repo, env=env)  # noqa: S603 - our own gunicorn
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(  # noqa: S310 - loopback
                f"http://127.0.0.1:{port}/api/v1/openapi.json", timeout=2
            ):
                return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise SystemExit("gunicorn did not answer within 60 s")


def run_wrk(port: int, script: Path, seconds: int, connections: int) -> dict[str, Any]:
    out = subprocess.run(  # noqa: S603 - wrk from Debian
        [
            shutil.which("wrk") or "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "--timeout",
            "5s",
            "-s",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, Any] = {"raw": out}
    match = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
    assert match, out
    figures["requests"] = int(match[1])
    figures["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])  # type: ignore[index]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    figures["non_2xx"] = int(non2xx[1]) if non2xx else 0
    errors = re.search(r"Socket errors: (.*)", out)
    figures["socket_errors"] = errors[1] if errors else ""
    for pct in ("50", "75", "90", "99"):
        found = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        assert found, out
        value = float(found[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[found[2]]
        figures[f"p{pct}_ms"] = round(value, 2)
    return figures


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = _setup.arg_parser(__doc__.splitlines()[0], 0)
    parser.add_argument("--grants", type=int, default=10000)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--repo", type=Path, default=_setup.REPO)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    machine = _setup.machine()
    scratch = _setup.bootstrap("postgres", "authorize", keep=args.keep)
    tokens = build_fixture(args.grants)

    from django.db import connection

    from audit.models import AuditEvent
    from audit.verify import ledger_verify

    workdir = Path(tempfile.mkdtemp(prefix="gatehouse-bench-wrk-"))
    script = workdir / "authorize.lua"
    lua_script(tokens, args.seed, script)
    connection.close()
    port = free_port()
    repo = args.repo.resolve()
    server = start_gunicorn(repo, port, args.workers, args.threads)
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607 - git from PATH
            cwd=repo,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        _setup.say(
            f"[serve] gunicorn {args.workers} workers x {args.threads} threads, "
            f"code {repo} @ {commit}"
        )
        run_wrk(port, script, 5, args.connections)  # warm-up: connections, caches
        before = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True)[0]
        workers, postgres = children_of(server.pid), processes_named("postgres")
        cpu_before = (cpu_seconds(workers), cpu_seconds(postgres), _children_cpu())
        figures = run_wrk(port, script, args.seconds, args.connections)
        cpu_after = (cpu_seconds(workers), cpu_seconds(postgres), _children_cpu())
        time.sleep(1)  # let in-flight requests finish
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    events = AuditEvent.objects.filter(
        sequence__gt=before, action__startswith="api.authorize."
    ).count()
    verified = ledger_verify()
    per_request = [
        round((after - before_) / max(1, figures["requests"]) * 1000, 3)
        for before_, after in zip(cpu_before, cpu_after, strict=True)
    ]
    result = {
        "benchmark": "authorize_load",
        "code": commit,
        "grants": args.grants,
        "seconds": args.seconds,
        "connections": args.connections,
        "workers": args.workers,
        "threads": args.threads,
        "requests_per_s": figures["rps"],
        "requests": figures["requests"],
        "denied_403": figures["non_2xx"],
        "socket_errors": figures["socket_errors"],
        "p50_ms": figures["p50_ms"],
        "p75_ms": figures["p75_ms"],
        "p90_ms": figures["p90_ms"],
        "p99_ms": figures["p99_ms"],
        "cpu_ms_per_request": {
            "gunicorn_workers": per_request[0],
            "postgresql": per_request[1],
            "wrk": per_request[2],
        },
        "authorize_events_recorded": events,
        "every_decision_recorded": events >= figures["requests"],
        "ledger_verified": verified.ok,
        "ledger_events": verified.events,
        "load_avg_at_end": os.getloadavg(),
        "machine": machine,
    }
    _setup.say(figures["raw"])
    _setup.say(
        f"[authorize] {figures['rps']:,.0f} requests/s, p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms; {figures['requests']:,} answered ({figures['non_2xx']:,} "
        f"denied), {events:,} decisions in the ledger, ledger verified: {verified.ok}"
    )
    _setup.say(
        f"[authorize] CPU per request: gunicorn workers {per_request[0]} ms, PostgreSQL "
        f"{per_request[1]} ms, wrk {per_request[2]} ms (2 cores = 2,000 ms of CPU a second)"
    )
    print(json.dumps(result, default=str))
    _setup.write_json(args.json, result)
    if args.keep:
        _setup.say(f"[kept] wrk script {script}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    del scratch


if __name__ == "__main__":
    main()
