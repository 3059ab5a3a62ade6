"""Health endpoints answer without a login and tell which dependency is down: a required one
(database, storage) makes Carina unavailable (503), an optional one (broker, DICOM listener,
checked by ``/api/health/``) degraded (200)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client

from carina.archive.storage import reset_storage
from carina.config.env import StorageLocation
from carina.core.testing import free_port
from carina.dimse.listener import Listener, ListenerConfig

pytestmark = pytest.mark.django_db


@pytest.fixture
def listener(settings: Any, tmp_path: Path) -> Iterator[Listener]:
    """A real DICOM listener on a free port of 127.0.0.1, where the checks look for it."""
    config = ListenerConfig.from_settings(host="127.0.0.1", port=0, spool_dir=tmp_path / "spool")
    started = Listener(config).start()
    settings.CARINA_DICOM_HOST = "0.0.0.0"  # the check asks 127.0.0.1 then
    settings.CARINA_DICOM_PORT = started.port
    yield started
    # Let the checks' connections end first: Listener.stop() joins the association threads,
    # and one accepted a moment ago may not have started yet.
    deadline = time.monotonic() + 10
    while started.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    started.stop(grace_period=5)


@pytest.fixture
def no_listener(settings: Any) -> int:
    port = free_port()
    settings.CARINA_DICOM_HOST = "127.0.0.1"
    settings.CARINA_DICOM_PORT = port
    return port


def wait_port(host: str, port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), 0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[str]:
    """A real Redis server (Debian's redis-server) on a free port, for this test only."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is needed (apt-get install redis-server)"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port("127.0.0.1", port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_live_answers_without_checking_anything(client: Client) -> None:
    assert client.get("/api/health/live/").json() == {"status": "ok"}


def test_everything_up(client: Client, listener: Listener, settings: Any) -> None:
    settings.CARINA_BROKER_URL = ""
    ready = client.get("/api/health/ready/")
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ok",
        "checks": {
            "database": {"ok": True, "detail": connection.vendor},
            "storage": {"ok": True, "detail": f"file:{settings.CARINA_STORAGE.path}"},
        },
    }
    full = client.get("/api/health/")
    assert full.status_code == 200
    body = full.json()
    assert body["status"] == "ok" and body["version"]
    checks = body["checks"]
    assert [checks[n]["required"] for n in ("database", "storage", "broker", "dicom_listener")] == [
        True,
        True,
        False,
        False,
    ]
    assert all(c["ok"] and isinstance(c["seconds"], float) for c in checks.values())
    assert checks["broker"]["detail"] == "embedded task queue (no broker needed)"
    assert checks["dicom_listener"]["detail"] == (
        f"accepting connections on 127.0.0.1:{listener.port} (AE title {settings.CARINA_AE_TITLE})"
    )


def test_unreachable_storage_makes_carina_unavailable(
    client: Client, settings: Any, tmp_path: Path, listener: Listener
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the blob folder should be")
    settings.CARINA_STORAGE = StorageLocation(scheme="file", path=blocker / "blobs")
    reset_storage()
    answer = client.get("/api/health/ready/")
    assert answer.status_code == 503
    body = answer.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["storage"]["ok"] is False
    assert body["checks"]["storage"]["detail"].startswith("storage unavailable: ")
    assert "Not a directory" in body["checks"]["storage"]["detail"]
    assert body["checks"]["database"]["ok"] is True
    assert client.get("/api/health/").status_code == 503
    assert client.get("/api/health/live/").status_code == 200


def test_a_stopped_dicom_listener_is_reported_as_degraded(
    client: Client, no_listener: int, settings: Any
) -> None:
    # The web part still serves: ready, and a load balancer keeps sending requests.
    assert client.get("/api/health/ready/").json()["status"] == "ok"
    answer = client.get("/api/health/")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "degraded"
    listener_check = body["checks"]["dicom_listener"]
    assert listener_check["ok"] is False and listener_check["required"] is False
    assert listener_check["detail"].startswith(
        f"DICOM listener not reachable on 127.0.0.1:{no_listener}: "
    )
    assert "refused" in listener_check["detail"].lower()


def test_the_broker_is_checked_when_configured(
    client: Client, settings: Any, redis_server: str, listener: Listener
) -> None:
    settings.CARINA_BROKER_URL = redis_server
    checks = client.get("/api/health/").json()["checks"]
    assert checks["broker"] == {**checks["broker"], "ok": True, "detail": redis_server}
    settings.CARINA_BROKER_URL = f"redis://:s3cret@127.0.0.1:{free_port()}/0"
    body = client.get("/api/health/").json()
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["ok"] is False
    detail = body["checks"]["broker"]["detail"]
    assert detail.startswith("broker redis://:***@127.0.0.1:")
    assert "s3cret" not in detail


def test_health_only_answers_get() -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/api/health/live/").status_code == 405
    assert client.post("/api/health/ready/").status_code == 405
