"""Worker liveness with real ``carina worker`` processes: the heartbeat row appears when the
worker is ready and is renewed, goes at a clean stop and stays (turning stale) after a kill;
the system status page lists each worker, and warns "no worker alive" when transfers wait;
``/api/health/`` reports it without ever failing readiness. Embedded queue and Redis."""

from __future__ import annotations

import signal
import socket
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from carina.accounts.actions import do_create_admin
from carina.routing.models import WorkerHeartbeat
from carina.routing.tests.conftest import (
    add_destination,
    archive_ct_study,
    counting_scp,
    private_redis,
    send,
)
from carina.routing.tests.test_worker import current, running, wait_for, worker_env
from carina.tenancy.models import Hospital

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def admin_client(hospital: Hospital, settings: Any) -> Client:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user: Any
    user, _ = do_create_admin("hb-admin", "Carina-test-pw-1", hospital, role="hospital_admin")
    client = Client()
    client.force_login(user)
    return client


def status_page(client: Client) -> str:
    response = client.get("/manage/status/")
    assert response.status_code == 200
    return response.content.decode()


def row_of(page: str, name: str) -> str:
    """The status table's row headed ``name`` (its HTML)."""
    start = page.index(f'<th scope="row">{name}</th>')
    return page[page.rindex("<tr", 0, start) : page.index("</tr>", start)]


def heartbeat(pid: int) -> WorkerHeartbeat | None:
    return WorkerHeartbeat.objects.filter(pid=pid).first()


def test_a_worker_beats_and_the_status_page_and_health_show_it(
    hospital: Hospital, tmp_path: Path, admin_client: Client
) -> None:
    client = Client()
    study = archive_ct_study(hospital, tmp_path / "in", 2)
    host = socket.gethostname()
    with counting_scp("HBSCP") as scp:
        node = add_destination(hospital, "hb", "HBSCP", scp.port)
        transfer = send(hospital, node, study_uid=study.study_uid)  # queued, no worker yet
        # No worker alive with a transfer waiting: a warning, never a readiness failure.
        page = status_page(admin_client)
        workers_row = row_of(page, "Workers")
        assert 'data-state="warn"' in workers_row
        assert "no worker alive, and 1 transfer waiting" in workers_row
        assert "Working, with a problem below" in page
        health = client.get("/api/health/")
        assert health.status_code == 200
        body = health.json()
        assert body["status"] == "degraded"
        assert body["checks"]["workers"]["ok"] is False
        assert body["checks"]["workers"]["required"] is False
        assert client.get("/api/health/ready/").json()["status"] == "ok"

        env = worker_env(tmp_path)
        with running(["worker", "--concurrency", "3"], env, tmp_path / "worker.log") as worker:
            wait_for(lambda: heartbeat(worker.pid) is not None, what="the first heartbeat")
            first = heartbeat(worker.pid)
            assert first is not None
            assert (first.hostname, first.concurrency) == (host, 3)
            assert first.broker == "embedded queue"
            assert first.name == f"{host}:{worker.pid}"
            wait_for(lambda: current(transfer).is_finished, what="the transfer to end")
            page = status_page(admin_client)
            row = row_of(page, f"Worker {host}")
            assert 'data-state="ok"' in row
            assert f"(pid {worker.pid}): 3 threads, embedded queue, up since" in row
            assert "last heartbeat" in row
            assert 'data-state="ok"' in row_of(page, "Workers")
            body = client.get("/api/health/").json()
            assert body["checks"]["workers"]["ok"] is True
            assert body["checks"]["workers"]["detail"].startswith("1 alive: carina@")
            # Renewed every 10 seconds.
            wait_for(
                lambda: (
                    (beat := heartbeat(worker.pid)) is not None
                    and beat.last_seen_at > first.last_seen_at
                ),
                timeout=30,
                what="a second heartbeat",
            )
            worker.send_signal(signal.SIGTERM)
            worker.wait(30)
        # A clean stop removes the row: no dead worker shown.
        assert heartbeat(worker.pid) is None
        assert "Worker " + host not in status_page(admin_client)


def test_a_killed_worker_shows_as_stale_until_a_new_one_starts(
    hospital: Hospital, tmp_path: Path, admin_client: Client
) -> None:
    env = worker_env(tmp_path)
    host = socket.gethostname()
    log = tmp_path / "worker.log"
    with running(["worker"], env, log) as worker:
        wait_for(lambda: heartbeat(worker.pid) is not None, what="the first heartbeat")
        worker.kill()
        worker.wait()
    killed = worker.pid
    assert heartbeat(killed) is not None  # no clean stop: the row stays
    # A minute later its heartbeat is stale (the window is 45 s).
    WorkerHeartbeat.objects.filter(pid=killed).update(
        last_seen_at=timezone.now() - timedelta(minutes=1)
    )
    page = status_page(admin_client)
    row = row_of(page, f"Worker {host}")
    assert 'data-state="warn"' in row and "stopped or stuck without a clean stop" in row
    assert "no worker alive (no transfer waiting)" in row_of(page, "Workers")
    # A new worker on this machine forgets the dead one (its process is gone).
    with running(["worker"], env, log) as second:
        wait_for(lambda: heartbeat(second.pid) is not None, what="the new worker's heartbeat")
        assert heartbeat(killed) is None
        assert list(WorkerHeartbeat.objects.values_list("pid", flat=True)) == [second.pid]


def test_the_heartbeat_with_redis_as_broker(
    hospital: Hospital, tmp_path: Path, admin_client: Client
) -> None:
    with private_redis() as broker:
        env = worker_env(tmp_path, CARINA_BROKER_URL=broker)
        with running(["worker"], env, tmp_path / "worker.log") as worker:
            wait_for(lambda: heartbeat(worker.pid) is not None, what="the first heartbeat")
            beat = heartbeat(worker.pid)
            assert beat is not None and beat.broker == broker
            row = row_of(status_page(admin_client), f"Worker {socket.gethostname()}")
            assert 'data-state="ok"' in row and broker in row
