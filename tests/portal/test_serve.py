"""`manage.py serve` (what `make run` starts) runs web, worker and beat; Ctrl-C stops them all."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_INHERITED = {"DATABASE_URL", "CELERY_BROKER_URL", "CACHE_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    queue = [pid]
    while queue:
        out = subprocess.run(["pgrep", "-P", str(queue.pop())], capture_output=True, text=True)
        children = {int(x) for x in out.stdout.split()}
        queue.extend(children - found)
        found |= children
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its parent has not collected it yet.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(")")[-1].split()[0] != "Z"


def test_ctrl_c_stops_web_worker_and_beat(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in _INHERITED}
    env.update({"DJANGO_SETTINGS_MODULE": "portal.settings", "GATEHOUSE_VAR_DIR": str(tmp_path)})
    env.pop("PORT", None)
    env.pop("DEBUG", None)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    port = _free_port()
    serve = subprocess.Popen(
        [*manage, "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the web server never answered"
                time.sleep(0.5)
        children = _descendants(serve.pid)
        assert len(children) >= 3  # runserver, celery worker (+ its pool), celery beat
        # The worker and web server build links from the port they were given (SITE_URL).
        for pid in children:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            assert f"PORT={port}".encode() in environ
        # A first visitor meets the styled pages, never Django's debug page.
        page = ""
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page/", timeout=10)
        except urllib.error.HTTPError as error:
            assert error.code == 404
            page = error.read().decode()
        assert "<h1>Page not found</h1>" in page
        assert "URLconf" not in page

        serve.send_signal(signal.SIGINT)
        output, _ = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            serve.kill()
    assert serve.returncode == 0
    assert "Stopped." in output
    time.sleep(0.5)
    assert [pid for pid in children if _alive(pid)] == []
