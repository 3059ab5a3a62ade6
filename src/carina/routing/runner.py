"""Running one attempt of a transfer: claim it, send its instances still to send, record
each one as it is answered, then finish, retry later or fail (docs/routing.md).

* :func:`claim` locks the transfer's row and takes it only when it is queued and due, and
  fewer than the destination's maximum parallel associations are being sent to it; the
  transfer is then ``sending`` under this process's lease.
* Each instance's outcome is saved soon after the destination answered it (in batches of
  a short transaction each, :class:`Recorder`), so a transfer resumed after a stop of the
  destination or a retry sends only the instances not yet delivered, and one resumed after
  a crash of the worker at most the last batch again.
* :func:`finish_attempt` decides what follows: every instance answered → succeeded, partly
  failed or failed; some left because the destination was unreachable, busy or went away →
  queued again with exponential backoff, until the attempt limit, then failed with the last
  reason.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Count, F
from django.utils import timezone

from carina.core.request_id import bind
from carina.dimse.models import RemoteNode
from carina.dimse.sending import StoredInstance
from carina.routing import conf
from carina.routing.auditing import record_transfer
from carina.routing.models import ItemStatus, Transfer, TransferItem, TransferStatus
from carina.routing.queue import publish, worker_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ToSend:
    """One instance of the transfer to send, and its item's row."""

    item_id: int
    stored: StoredInstance
    size: int


@dataclass(frozen=True)
class ItemOutcome:
    """What happened to one instance in this attempt.

    ``delivered``: the destination stored it. Otherwise ``retry`` says whether it failed for
    a passing reason (the destination went away or is out of resources: it stays to send),
    or for good (the reason is kept and shown in the log).
    """

    item_id: int
    delivered: bool
    retry: bool = False
    status: int | None = None
    reason: str = ""
    sent_as: str = ""
    size: int = 0


#: Set when the worker is asked to stop: attempts stop after the instance on the wire and
#: the transfer is queued again at once, without counting the attempt.
STOPPING = threading.Event()
STOPPING_REASON = "the worker is stopping"

#: Records one outcome; returns False when the transfer must stop (cancelled).
Record = Callable[[ItemOutcome], bool]
#: Sends instances to a node, calling Record after each; returns "" once every instance was
#: answered, else why the others were not sent (they are retried later).
Send = Callable[[RemoteNode, list[ToSend], Record], str]


class TransferLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Log lines of one transfer. The correlation ID of the request that asked for it is
    the current one while the transfer runs (:func:`carina.core.request_id.bind`), so the
    log format shows it."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        extra = self.extra or {}
        return f"transfer {extra.get('id')}: {msg}", kwargs


def transfer_log(transfer: Transfer) -> TransferLog:
    return TransferLog(logger, {"id": transfer.pk, "correlation_id": transfer.correlation_id})


def claim(transfer_id: int, worker: str) -> Transfer | None:
    """Take a queued, due transfer for ``worker`` (None: nothing to do now)."""
    now = timezone.now()
    with transaction.atomic():
        transfer = (
            Transfer.objects.all_hospitals().select_for_update().filter(pk=transfer_id).first()
        )
        if transfer is None or transfer.status != TransferStatus.QUEUED:
            return None
        if transfer.next_attempt_at is not None and transfer.next_attempt_at > now:
            return None
        if transfer.destination_id is not None:
            node = (
                RemoteNode.objects.all_hospitals()
                .select_for_update()
                .filter(pk=transfer.destination_id)
                .first()
            )
            if node is not None:
                busy = (
                    Transfer.objects.all_hospitals()
                    .filter(destination_id=node.pk, status=TransferStatus.SENDING)
                    .count()
                )
                if busy >= node.max_associations:
                    transfer_log(transfer).info(
                        "waits: %d transfer(s) to %s already (its maximum)", busy, node.name
                    )
                    return None
        transfer.status = TransferStatus.SENDING
        transfer.worker = worker
        transfer.lease_until = now + conf.lease()
        transfer.attempts += 1
        transfer.started_at = transfer.started_at or now
        transfer.save(
            update_fields=[
                "status",
                "worker",
                "lease_until",
                "attempts",
                "started_at",
                "updated_at",
            ]
        )
    return transfer


#: Outcomes are saved in batches of at most this many instances …
RECORD_BATCH = 32
#: … or after this many seconds, whichever comes first.
RECORD_INTERVAL = 0.25


class Recorder:
    """The :data:`Record` of one attempt: outcomes are kept in memory and saved in one short
    transaction per batch (:data:`RECORD_BATCH` instances or :data:`RECORD_INTERVAL`
    seconds): the items' rows, then the transfer's counters and lease; a cancel is noticed
    at each save. :meth:`flush` saves the rest when the attempt ends.

    One transaction per instance cost more than sending the instance. The price of batches:
    if the worker is killed (SIGKILL, power loss), the instances answered since the last save
    are sent again by the next attempt — a duplicate C-STORE of the same SOP Instance UID,
    which a Storage SCP stores once (docs/routing.md, "Delivered once")."""

    def __init__(self, transfer: Transfer, worker: str) -> None:
        self.transfer = transfer
        self.worker = worker
        self.pending: list[ItemOutcome] = []
        self.saved_at = time.monotonic()
        self.go_on = True

    def __call__(self, outcome: ItemOutcome) -> bool:
        self.pending.append(outcome)
        if len(self.pending) >= RECORD_BATCH or time.monotonic() - self.saved_at >= RECORD_INTERVAL:
            self.flush()
        return self.go_on and not STOPPING.is_set()

    def flush(self) -> None:
        """Save the outcomes kept so far, and learn whether the transfer was cancelled."""
        outcomes, self.pending = self.pending, []
        self.saved_at = time.monotonic()
        if not outcomes:
            return
        now = timezone.now()
        groups: dict[tuple[Any, ...], list[int]] = {}
        for outcome in outcomes:
            if outcome.delivered:
                status, sent_at = ItemStatus.SENT, now
            else:
                status = ItemStatus.PENDING if outcome.retry else ItemStatus.FAILED
                sent_at = None
            key = (status, sent_at, outcome.reason[:1000], outcome.status, outcome.sent_as)
            groups.setdefault(key, []).append(outcome.item_id)
        transfer_id = self.transfer.pk
        with transaction.atomic():
            for (status, sent_at, reason, dimse_status, sent_as), ids in groups.items():
                fields: dict[str, Any] = {"sent_at": sent_at} if sent_at is not None else {}
                TransferItem.objects.filter(pk__in=ids, transfer_id=transfer_id).update(
                    attempts=F("attempts") + 1,
                    status=status,
                    reason=reason,
                    dimse_status=dimse_status,
                    sent_as=sent_as,
                    **fields,
                )
            delivered = [o for o in outcomes if o.delivered]
            failed = sum(1 for o in outcomes if not o.delivered and not o.retry)
            Transfer.objects.all_hospitals().filter(pk=transfer_id, worker=self.worker).update(
                sent=F("sent") + len(delivered),
                failed=F("failed") + failed,
                bytes_sent=F("bytes_sent") + sum(o.size for o in delivered),
                lease_until=now + conf.lease(),
                updated_at=now,
            )
            state = (
                Transfer.objects.all_hospitals()
                .filter(pk=transfer_id)
                .values_list("status", "worker")
                .first()
            )
        self.go_on = state == (TransferStatus.SENDING, self.worker)


def _pending(transfer: Transfer, record: Record) -> list[ToSend]:
    """The instances still to send; those deleted from the archive meanwhile fail."""
    items = (
        TransferItem.objects.filter(transfer=transfer, status=ItemStatus.PENDING)
        .select_related("instance")
        .order_by("id")
    )
    found: list[ToSend] = []
    for item in items:
        instance = item.instance
        if instance is None:
            record(
                ItemOutcome(item.pk, False, reason="deleted from the archive before it was sent")
            )
            continue
        stored = StoredInstance(
            instance.sop_class_uid,
            instance.sop_instance_uid,
            instance.transfer_syntax_uid,
            instance.blob_key,
            instance.rows,
        )
        found.append(ToSend(item.pk, stored, instance.size_bytes))
    return found


def _sender_for(node: RemoteNode) -> Send:
    if node.is_dicomweb:
        from carina.routing.dicomweb_send import send_stow

        return send_stow
    from carina.routing.dimse_send import send_cstore

    return send_cstore


def attempt(transfer: Transfer, worker: str) -> str:
    """Send what is still to send; returns why the attempt stopped early ("" if it did not)."""
    log = transfer_log(transfer)
    record = Recorder(transfer, worker)
    node = (
        RemoteNode.objects.all_hospitals().filter(pk=transfer.destination_id).first()
        if transfer.destination_id
        else None
    )
    why_not = ""
    if node is None:
        why_not = f"the destination {transfer.destination_name!r} was removed"
    elif not node.enabled:
        why_not = f"the destination {node.name!r} is disabled"
    elif not node.is_move_destination:
        why_not = f"{node.name!r} is not a send destination"
    try:
        items = _pending(transfer, record)
        if why_not or node is None:
            for item in items:
                if not record(ItemOutcome(item.item_id, False, reason=why_not)):
                    break
            return ""
        log.info("attempt %d: %d instance(s) to %s", transfer.attempts, len(items), node)
        if not items:
            return ""
        return _sender_for(node)(node, items, record)
    finally:
        record.flush()


def finish_attempt(transfer_id: int, worker: str, stopped_because: str) -> Transfer | None:
    """End this worker's attempt (see the module's docstring); returns the transfer."""
    now = timezone.now()
    final = False
    with transaction.atomic():
        transfer = (
            Transfer.objects.all_hospitals().select_for_update().filter(pk=transfer_id).first()
        )
        if transfer is None or transfer.worker != worker:
            return transfer  # taken over by the recovery sweep, or gone
        log = transfer_log(transfer)
        items = TransferItem.objects.filter(transfer=transfer)
        counts = dict(items.values_list("status").annotate(n=Count("pk")).order_by())
        pending = counts.get(ItemStatus.PENDING, 0)
        transfer.worker = ""
        transfer.lease_until = None
        if transfer.status == TransferStatus.CANCELLED:
            transfer.finished_at = transfer.finished_at or now
        elif pending and STOPPING.is_set():
            transfer.status = TransferStatus.QUEUED
            transfer.attempts = max(0, transfer.attempts - 1)
            transfer.next_attempt_at = now
            transfer.enqueued_at = None  # the next worker's start (or the sweep) enqueues it
            log.info("%d instance(s) left; %s", pending, STOPPING_REASON)
        elif pending:
            reason = stopped_because or "the attempt ended before every instance was sent"
            transfer.last_error = reason
            if transfer.attempts < transfer.max_attempts:
                delay = conf.retry_delay(transfer.attempts)
                transfer.status = TransferStatus.QUEUED
                transfer.next_attempt_at = now + delay
                log.warning(
                    "%d instance(s) left (%s); attempt %d of %d in %.0f s",
                    pending,
                    reason,
                    transfer.attempts + 1,
                    transfer.max_attempts,
                    delay.total_seconds(),
                )
            else:
                note = f"{reason} (gave up after {transfer.attempts} attempts)"
                items.filter(status=ItemStatus.PENDING).update(
                    status=ItemStatus.FAILED, reason=note[:1000]
                )
                transfer.last_error = note
                final = True
        else:
            final = True
        if final:
            counts = dict(items.values_list("status").annotate(n=Count("pk")).order_by())
            transfer.sent = counts.get(ItemStatus.SENT, 0)
            transfer.failed = counts.get(ItemStatus.FAILED, 0)
            if transfer.failed == 0:
                transfer.status = TransferStatus.SUCCEEDED
                transfer.last_error = ""
            elif transfer.sent:
                transfer.status = TransferStatus.PARTLY_FAILED
            else:
                transfer.status = TransferStatus.FAILED
            if transfer.failed and not transfer.last_error:
                first = items.filter(status=ItemStatus.FAILED).order_by("id").first()
                transfer.last_error = first.reason if first else ""
            transfer.finished_at = now
            record_transfer(transfer)
            log.info(
                "%s: %d of %d sent, %d failed",
                transfer.status,
                transfer.sent,
                transfer.total,
                transfer.failed,
            )
        transfer.save()
    kick(transfer)
    return transfer


def kick(transfer: Transfer) -> None:
    """Enqueue the next queued transfers to the same destination (one may have waited for
    this one's association)."""
    if transfer.destination_id is None:
        return
    now = timezone.now()
    node = RemoteNode.objects.all_hospitals().filter(pk=transfer.destination_id).first()
    slots = node.max_associations if node else 1
    waiting = list(
        Transfer.objects.all_hospitals()
        .filter(destination_id=transfer.destination_id, status=TransferStatus.QUEUED)
        .exclude(next_attempt_at__gt=now)
        .exclude(pk=transfer.pk)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)[:slots]
    )
    if waiting:
        Transfer.objects.all_hospitals().filter(pk__in=waiting).update(enqueued_at=now)
        publish(waiting)


def run_transfer(transfer_id: int, worker: str | None = None) -> Transfer | None:
    """One attempt of a transfer, if it is queued and due (the task's body; safe to call
    twice). Returns the transfer afterwards, or None when there was nothing to do."""
    worker = worker or worker_id()
    transfer = claim(transfer_id, worker)
    if transfer is None:
        return None
    with bind(transfer.correlation_id or None):
        try:
            stopped_because = attempt(transfer, worker)
        except Exception as exc:  # an error of ours: logged, and the attempt is retried
            transfer_log(transfer).exception("the attempt failed")
            stopped_because = f"internal error in Carina: {exc}; see the worker log"
        return finish_attempt(transfer.pk, worker, stopped_because)
