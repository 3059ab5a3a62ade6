"""Worker liveness (docs/routing.md, "Worker liveness"): each ``carina worker`` writes a
:class:`~carina.routing.models.WorkerHeartbeat` row when it is ready, then every
:data:`~carina.routing.conf.HEARTBEAT_SECONDS` from a thread of its own, and deletes it when it
stops cleanly. A worker is *alive* while its last beat is younger than
:data:`~carina.routing.conf.HEARTBEAT_FRESH_SECONDS`.

The beat goes to the database, not through the broker, so it works the same with the
embedded broker-less queue and with Redis, and anything that reads the database (the status
page, ``/api/health/``, another machine) sees it. The ``workers`` health check is optional:
it never fails readiness; ``/api/health/`` says ``degraded`` when transfers wait and no worker
is alive.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from dataclasses import dataclass

from django.db import close_old_connections, connection
from django.utils import timezone

from carina.ops.checks import broker_url, without_password
from carina.routing import conf
from carina.routing.models import ACTIVE, Transfer, WorkerHeartbeat
from carina.routing.queue import dead_here, worker_id

logger = logging.getLogger(__name__)

#: Rows of workers not seen for this long are deleted by the next worker that starts.
FORGET_AFTER = dt.timedelta(days=1)
#: The status page lists the workers seen within this window (the dead ones as warnings).
SHOWN_FOR = dt.timedelta(hours=1)


@dataclass(frozen=True)
class WorkerInfo:
    """What a heartbeat says about one worker process."""

    node: str
    concurrency: int
    broker: str


def broker_label() -> str:
    """The worker's broker as shown on the status page: never a password."""
    url = broker_url()
    return without_password(url) if url else "embedded queue"


def beat(info: WorkerInfo, *, started_at: dt.datetime, now: dt.datetime | None = None) -> None:
    """Write (or renew) this process's heartbeat row."""
    now = now or timezone.now()
    WorkerHeartbeat.objects.update_or_create(
        name=worker_id(),
        defaults={
            "node": info.node[:255],
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "concurrency": info.concurrency,
            "broker": info.broker[:255],
            "started_at": started_at,
            "last_seen_at": now,
        },
    )


def forget_dead(now: dt.datetime | None = None) -> int:
    """Delete the rows of workers of this machine whose process is gone, and of any worker
    not seen for :data:`FORGET_AFTER`; returns how many went."""
    now = now or timezone.now()
    gone = [
        pk
        for pk, name in WorkerHeartbeat.objects.values_list("pk", "name")
        if name != worker_id() and dead_here(name)
    ]
    deleted, _ = WorkerHeartbeat.objects.filter(pk__in=gone).delete()
    old, _ = WorkerHeartbeat.objects.filter(last_seen_at__lt=now - FORGET_AFTER).delete()
    return deleted + old


def is_fresh(worker: WorkerHeartbeat, now: dt.datetime | None = None) -> bool:
    return worker.last_seen_at >= (now or timezone.now()) - conf.heartbeat_fresh()


def recent_workers(now: dt.datetime | None = None) -> list[WorkerHeartbeat]:
    """The workers seen within :data:`SHOWN_FOR`, alive or not."""
    now = now or timezone.now()
    return list(WorkerHeartbeat.objects.filter(last_seen_at__gte=now - SHOWN_FOR))


def alive_workers(now: dt.datetime | None = None) -> list[WorkerHeartbeat]:
    now = now or timezone.now()
    return list(WorkerHeartbeat.objects.filter(last_seen_at__gte=now - conf.heartbeat_fresh()))


def describe(worker: WorkerHeartbeat, now: dt.datetime | None = None) -> str:
    """``carina@host (pid 123): 4 threads, embedded queue, up since …, seen 3 s ago``."""
    now = now or timezone.now()
    seen = max(0, int((now - worker.last_seen_at).total_seconds()))
    threads = f"{worker.concurrency} thread{'s' if worker.concurrency != 1 else ''}"
    started = timezone.localtime(worker.started_at).strftime("%Y-%m-%d %H:%M:%S")
    return (
        f"{worker.node} (pid {worker.pid}): {threads}, {worker.broker or 'broker unknown'}, "
        f"up since {started}, last heartbeat {seen} s ago"
    )


def check_workers() -> tuple[bool, str]:
    """The ``workers`` health check: fails (optional: ``degraded``) only when transfers wait
    or are being sent and no worker is alive to send them."""
    now = timezone.now()
    alive = alive_workers(now)
    if alive:
        names = ", ".join(f"{w.node} pid {w.pid}" for w in alive)
        return True, f"{len(alive)} alive: {names}"
    waiting = Transfer.objects.all_hospitals().filter(status__in=ACTIVE).count()
    if waiting:
        return False, (
            f"no worker alive, and {waiting} transfer{'s' if waiting != 1 else ''} waiting "
            "or being sent: start `carina worker` (or `carina serve`)"
        )
    return True, "no worker alive (no transfer waiting)"


class Heartbeat:
    """The beating thread of one worker process: :meth:`start` writes the first beat at
    once, then one every interval until :meth:`stop`, which deletes the row."""

    def __init__(self, info: WorkerInfo, interval: float | None = None) -> None:
        self.info = info
        self.interval = interval if interval is not None else conf.heartbeat_interval()
        self.started_at = timezone.now()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="carina-heartbeat", daemon=True)

    def start(self) -> None:
        try:
            forget_dead()
            self._beat()
        finally:
            close_old_connections()
        self._thread.start()

    def _beat(self) -> None:
        try:
            beat(self.info, started_at=self.started_at)
        except Exception as exc:  # a busy or unreachable database: the next beat may pass
            logger.warning("worker heartbeat not written: %s", exc)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                close_old_connections()
                self._beat()
        finally:
            connection.close()  # this thread's own connection

    def stop(self) -> None:
        """Stop beating and delete this worker's row (a clean stop is not a dead worker)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.interval + 5)
        try:
            WorkerHeartbeat.objects.filter(name=worker_id()).delete()
        except Exception as exc:
            logger.warning("worker heartbeat not removed: %s", exc)


__all__ = [
    "Heartbeat",
    "WorkerInfo",
    "alive_workers",
    "beat",
    "broker_label",
    "check_workers",
    "describe",
    "forget_dead",
    "is_fresh",
    "recent_workers",
]
