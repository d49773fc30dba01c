"""/healthz reports database and broker reachability, without signing in."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from portal.celery import app as celery_app


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def broker_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], None]]:
    """Point the app at another broker; Celery reads CELERY_BROKER_URL before its own config."""
    original = celery_app.conf.broker_url

    def use(url: str) -> None:
        monkeypatch.setenv("CELERY_BROKER_URL", url)
        celery_app.conf.broker_url = url

    yield use
    celery_app.conf.broker_url = original


@pytest.mark.django_db
def test_health_is_public_and_ok_with_the_configured_broker(client) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"] == {"database": {"ok": True}, "broker": {"ok": True}}
    assert body["version"]


@pytest.mark.django_db
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")
def test_health_turns_503_when_the_broker_stops(client, broker_url, tmp_path) -> None:
    port = _free_port()
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ],
        stdout=subprocess.DEVNULL,
    )
    try:
        broker_url(f"redis://127.0.0.1:{port}/0")
        for _ in range(50):
            if client.get("/healthz").status_code == 200:
                break
            time.sleep(0.1)
        assert client.get("/healthz").json()["checks"]["broker"] == {"ok": True}
    finally:
        server.terminate()
        server.wait(timeout=10)

    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == {"ok": True}
    assert body["checks"]["broker"]["ok"] is False
    assert str(port) not in response.content.decode()  # no connection details leak


def test_health_refuses_post(client) -> None:
    assert client.post("/healthz").status_code == 405
