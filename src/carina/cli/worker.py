"""``carina worker`` and ``carina beat``: Celery's worker and scheduler for Carina's background
work (docs/routing.md, "Background work").

The worker runs tasks in threads (transfers wait on the network, not the CPU). Its broker is
Redis when ``CARINA_BROKER_URL`` is set, else the embedded queue folder under ``CARINA_HOME``;
either way it first puts back on the queue whatever a stopped worker left (the recovery
sweep). ``carina beat`` sends the sweep every few seconds: retries that came due, lost
messages, forwarding rules.
"""

from __future__ import annotations

import socket

from django.conf import settings

from carina.config.celery import QUEUE, app


def _broker() -> str:
    url = str(settings.CARINA_BROKER_URL)
    if not url:
        return f"embedded queue in {settings.CARINA_QUEUE_DIR}"
    return url.split("@")[-1]  # no password in the output


def run_worker(concurrency: int) -> int:
    import carina.routing.tasks  # noqa: F401 (registers the tasks)

    print(f"Carina worker: {concurrency} thread(s), broker: {_broker()}", flush=True)
    argv = [
        "worker",
        "--loglevel",
        str(settings.CARINA.log_level),
        "--pool",
        "threads",
        "--concurrency",
        str(concurrency),
        "--queues",
        QUEUE,
        "--hostname",
        f"carina@{socket.gethostname()}",
        "--without-mingle",
        "--without-gossip",
    ]
    if not settings.CARINA_BROKER_URL:
        argv.append("--without-heartbeat")
    app.worker_main(argv)
    return 0


def run_beat() -> int:
    import carina.routing.tasks  # noqa: F401

    print(f"Carina beat: broker: {_broker()}", flush=True)
    # The schedule is a few fixed intervals: kept in memory, nothing to corrupt on a crash.
    app.start(
        [
            "beat",
            "--loglevel",
            str(settings.CARINA.log_level),
            "--scheduler",
            "celery.beat:Scheduler",
        ]
    )
    return 0
