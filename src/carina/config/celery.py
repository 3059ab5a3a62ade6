"""The Celery application: Carina's background work (``carina worker``, ``carina beat``).

Two brokers, chosen by ``CARINA_BROKER_URL`` and nothing else (docs/routing.md, "Background
work"):

* server mode: Redis (``redis://HOST:PORT/DB``) or AMQP, as given;
* embedded default: no broker service. Messages are files in ``CARINA_HOME/queue`` (kombu's
  filesystem transport), shared by every process on the machine.

In both modes a message only carries the ID of a database row (a transfer, a forwarding
rule), and the database is the source of truth: a row says what is still to be done
(``queued``, ``sending`` under a lease), and the recovery sweep at worker start and on every
beat re-enqueues rows whose message was lost (a worker killed with its prefetched messages,
a broker restarted empty). Tasks lock their row and are safe to run twice, so a duplicate
message costs one query. This is why no queued work is lost across a crash, whatever the
broker keeps.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carina.config.settings")

#: The queue every Carina task goes to.
QUEUE = "carina"
#: How often beat runs the recovery and forwarding sweep (seconds).
SWEEP_SECONDS = 5.0

app = Celery("carina")


def broker_options(queue_dir: Path) -> dict[str, Any]:
    """kombu's filesystem transport in one folder: producers and consumers read and write
    the same ``messages`` folder, polled twice a second."""
    messages = queue_dir / "messages"
    control = queue_dir / "control"
    for folder in (messages, control):
        folder.mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(messages),
        "data_folder_out": str(messages),
        "control_folder": str(control),
        "polling_interval": 0.5,
    }


def configuration() -> dict[str, Any]:
    """Celery's settings, from Carina's (read when the app is first used)."""
    from django.conf import settings

    embedded = not settings.CARINA_BROKER_URL
    config: dict[str, Any] = {
        "broker_url": settings.CARINA_BROKER_URL or "filesystem://localhost/",
        "broker_connection_retry_on_startup": True,
        "task_default_queue": QUEUE,
        "task_ignore_result": True,
        "result_backend": None,
        # Publishing does not block a web request when the broker is down: the row stays
        # queued and the sweep enqueues it once the broker is back.
        "task_publish_retry": False,
        # A message is acknowledged once its task ran (Redis redelivers it otherwise), and a
        # worker takes one message per thread at a time.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_hijack_root_logger": False,
        "worker_redirect_stdouts": False,
        "timezone": "UTC",
        "enable_utc": True,
        "beat_schedule": {
            "routing-sweep": {"task": "carina.routing.sweep", "schedule": SWEEP_SECONDS},
            # The embedded database's planner statistics (carina.archive.planner).
            "planner-statistics": {
                "task": "carina.ops.refresh_planner_statistics",
                "schedule": 3600.0,
            },
        },
    }
    if embedded:
        config["broker_transport_options"] = broker_options(Path(settings.CARINA_QUEUE_DIR))
        # No broadcast commands between workers: nothing polls a control folder.
        config["worker_enable_remote_control"] = False
    return config


def _configure(sender: Celery, **kwargs: Any) -> None:
    sender.conf.update(configuration())


app.on_configure.connect(_configure, weak=False)

app.autodiscover_tasks(["carina.routing", "carina.ops"])
