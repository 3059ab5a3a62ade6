"""The queue of transfers: its depth, putting transfers on it, and the recovery sweep that
makes the database the source of truth (docs/routing.md, "Background work").

A message carries a transfer's ID only. :func:`recover` puts a message again for every
transfer that needs one: queued transfers whose retry time came, whose message was never
sent (the broker was down) or seems lost, and transfers left ``sending`` by a worker that
died (a process of this machine that no longer exists, or a lease that ran out). It runs at
worker start (then every queued transfer gets a message: a killed worker's prefetched
messages are gone) and on every beat. A duplicate message is harmless: the task locks the
transfer's row and does nothing unless the transfer is queued and due.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from carina.routing import conf
from carina.routing.models import ACTIVE, Transfer, TransferStatus

logger = logging.getLogger(__name__)


def depth() -> int:
    """Transfers waiting or being sent, in every hospital (the metrics' queue-depth gauge
    and the status page)."""
    return Transfer.objects.all_hospitals().filter(status__in=ACTIVE).count()


def worker_id() -> str:
    """This process, as a transfer's owner: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def dead_here(worker: str) -> bool:
    """Whether ``worker`` was a process of this machine that no longer exists."""
    host, _, pid_text = worker.rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # someone else's live process
        return False
    return False


def publish(transfer_ids: Iterable[int]) -> None:
    """Put one message per transfer on the queue now. A transfer whose message could not be
    sent (broker down) is marked so, and the sweep sends it later."""
    from carina.routing.tasks import send_transfer

    for transfer_id in transfer_ids:
        try:
            send_transfer.apply_async((transfer_id,), retry=False)
        except Exception as exc:
            logger.warning(
                "transfer %s stays queued: the broker is unreachable (%s)", transfer_id, exc
            )
            Transfer.objects.all_hospitals().filter(
                pk=transfer_id, status=TransferStatus.QUEUED
            ).update(enqueued_at=None)


def publish_on_commit(transfer_ids: Iterable[int]) -> None:
    """Publish once the current transaction has committed (the worker must see the rows)."""
    ids = list(transfer_ids)
    if ids:
        transaction.on_commit(lambda: publish(ids), robust=True)


def recover(*, at_start: bool = False, now: datetime | None = None, limit: int = 1000) -> int:
    """Resume transfers left by dead workers and enqueue due ones; returns how many
    messages were sent."""
    now = now or timezone.now()
    transfers = Transfer.objects.all_hospitals()
    sending = transfers.filter(status=TransferStatus.SENDING).values_list(
        "pk", "worker", "lease_until"
    )
    for pk, worker, lease_until in list(sending):
        expired = lease_until is None or lease_until < now
        if expired or dead_here(worker):
            resumed = transfers.filter(
                pk=pk, status=TransferStatus.SENDING, worker=worker, lease_until=lease_until
            ).update(
                status=TransferStatus.QUEUED,
                worker="",
                lease_until=None,
                next_attempt_at=now,
                enqueued_at=None,
            )
            if resumed:
                logger.warning("transfer %s: its worker %s stopped; resuming it", pk, worker)
    due = transfers.filter(status=TransferStatus.QUEUED).filter(
        Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)
    )
    if not at_start:
        due = due.filter(
            Q(enqueued_at__isnull=True)
            | Q(enqueued_at__lt=F("next_attempt_at"))
            | Q(enqueued_at__lt=now - conf.reenqueue_after())
        )
    ids = list(due.order_by("next_attempt_at", "pk").values_list("pk", flat=True)[:limit])
    if ids:
        transfers.filter(pk__in=ids).update(enqueued_at=now)
        publish(ids)
    return len(ids)
