"""Signal receivers: a stored instance is checked against the forwarding rules (which are
asked for again once one is saved or deleted), and a
worker that starts resumes what a stopped one left and beats its heartbeat until it stops
(docs/routing.md)."""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready, worker_shutdown, worker_shutting_down
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from carina.archive.signals import instance_stored

logger = logging.getLogger(__name__)


@receiver(instance_stored, dispatch_uid="carina.routing.note_arrival")
def _instance_stored(sender: Any, hospital_id: int, instance_id: int, **kwargs: Any) -> None:
    from carina.routing.rules import note_arrival

    note_arrival(hospital_id, instance_id)


@receiver(post_save, sender="routing.ForwardingRule", dispatch_uid="carina.routing.rule_saved")
@receiver(post_delete, sender="routing.ForwardingRule", dispatch_uid="carina.routing.rule_deleted")
def _rule_changed(sender: Any, **kwargs: Any) -> None:
    from carina.routing.rules import forget_rule_checks

    forget_rule_checks()


#: This process's heartbeat, while it runs as a worker.
_heartbeat: Any = None


def _start_heartbeat(consumer: Any) -> None:
    global _heartbeat
    from carina.routing.heartbeat import Heartbeat, WorkerInfo, broker_label

    controller = getattr(consumer, "controller", None)
    info = WorkerInfo(
        node=str(getattr(consumer, "hostname", "") or ""),
        concurrency=int(getattr(controller, "concurrency", 0) or 0),
        broker=broker_label(),
    )
    if _heartbeat is None:
        _heartbeat = Heartbeat(info)
        _heartbeat.start()


def _worker_ready(sender: Any = None, **kwargs: Any) -> None:
    from carina.routing.queue import recover

    try:
        _start_heartbeat(sender)
    except Exception:
        logger.exception("the worker heartbeat could not start")
    try:
        count = recover(at_start=True)
    except Exception:
        logger.exception("the recovery sweep at worker start failed")
        return
    if count:
        logger.info("worker start: %d transfer(s) put back on the queue", count)


def _worker_stopping(sender: Any = None, **kwargs: Any) -> None:
    from carina.routing.runner import STOPPING

    STOPPING.set()


def _worker_stopped(sender: Any = None, **kwargs: Any) -> None:
    global _heartbeat
    if _heartbeat is not None:
        _heartbeat.stop()
        _heartbeat = None


# Celery's signals (its decorator is untyped).
worker_ready.connect(_worker_ready, dispatch_uid="carina.routing.recover_at_start", weak=False)
worker_shutting_down.connect(
    _worker_stopping, dispatch_uid="carina.routing.stop_sending", weak=False
)
worker_shutdown.connect(_worker_stopped, dispatch_uid="carina.routing.heartbeat_off", weak=False)
