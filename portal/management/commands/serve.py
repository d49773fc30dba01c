"""Start the web server, one Celery worker and beat together; Ctrl-C stops all three."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Run web, worker and beat for local use (make run). Ctrl-C stops all of them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", default=os.environ.get("PORT", "8000"))
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))

    def handle(self, *args: Any, **options: Any) -> None:
        port = str(options["port"])
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise CommandError(f"PORT must be a number from 1 to 65535 (got {port!r}).")
        host = options["host"]
        python = sys.executable
        var = settings.VAR_DIR
        var.mkdir(parents=True, exist_ok=True)
        commands = {
            "web": [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"],
            "worker": [
                python,
                "-m",
                "celery",
                "-A",
                "portal",
                "worker",
                "-l",
                "INFO",
                "--concurrency",
                "2",
                "-n",
                "worker@%h",
            ],
            "beat": [
                python,
                "-m",
                "celery",
                "-A",
                "portal",
                "beat",
                "-l",
                "INFO",
                "--pidfile",
                str(var / "celerybeat.pid"),
            ],
        }
        # The children read their settings afresh: given the port, the default SITE_URL (links in
        # the worker's emails, the CSRF origin) names the port this server really listens on.
        env = {**os.environ, "PORT": port}
        procs: dict[str, subprocess.Popen[bytes]] = {}
        # Children get their own process group so one Ctrl-C here is handled once, in order.
        for name, cmd in commands.items():
            procs[name] = subprocess.Popen(  # noqa: S603
                cmd, cwd=settings.BASE_DIR, env=env, start_new_session=True
            )

        self._banner(host, port)
        stopping = False

        def stop(*_: Any) -> None:
            nonlocal stopping
            stopping = True

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, stop)
        try:
            while not stopping:
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        self._say(f"{name} exited with status {proc.returncode}; stopping.")
                        stopping = True
                time.sleep(0.5)
        finally:
            # Signal the children before printing anything: the terminal (or a pipe) may be gone.
            for proc in procs.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            self._say("Stopping web, worker and beat...")
            deadline = time.monotonic() + 15
            for proc in procs.values():
                try:
                    proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
            self._say("Stopped.")

    def _say(self, text: str) -> None:
        with contextlib.suppress(OSError):  # a closed terminal or pipe must not stop the shutdown
            self.stdout.write(text)

    def _banner(self, host: str, port: str) -> None:
        from portal.demo import persona_lines

        url = f"http://{host}:{port}/"
        lines = ["", f"Gatehouse is starting at {url}", ""]
        if not settings.PRODUCTION:
            lines += [
                "Sign in as a demo persona (password, then a code from `manage.py totp EMAIL`):"
            ]
            lines += persona_lines()
        lines += ["", "Press Ctrl-C to stop the web server, the worker and beat.", ""]
        self.stdout.write("\n".join(lines))
