"""``carina send (--study UID | --series UID | --instance UID…) --to NODE… [--hospital SLUG]``:
send to the hospital's destination nodes (DESIGN.md §1, docs/routing.md).

Each destination gets a transfer record, as from the web or the API. By default the command
sends it itself and prints the outcome (no worker needed); ``--queue`` only queues it for the
worker. A transfer the worker took first is followed until it ends. Exit code: 0 when every
transfer succeeded, 1 otherwise, 2 for a mistake on the command line.
"""

from __future__ import annotations

import getpass
import time
import uuid

from django.utils import timezone

from carina.cli.setup import fail
from carina.dimse.nodes import node_by_name
from carina.routing.actions import Requester, TransferError, do_send
from carina.routing.models import Origin, Transfer, TransferStatus
from carina.routing.runner import run_transfer
from carina.tenancy.lookups import hospital_by_slug


def _size(count: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1000  # type: ignore[assignment]
    return str(count)


def _describe(transfer: Transfer) -> str:
    line = (
        f"Transfer {transfer.pk} to {transfer.destination_name}: "
        f"{transfer.get_status_display().lower()}, {transfer.sent} of {transfer.total} sent "
        f"({_size(transfer.bytes_sent)})"
    )
    if transfer.duration is not None and transfer.is_finished:
        line += f" in {transfer.duration:.1f} s"
    if transfer.status == TransferStatus.QUEUED and transfer.next_attempt_at:
        line += f"; the worker retries it at {transfer.next_attempt_at:%H:%M:%S} UTC"
    if transfer.last_error:
        line += f". {transfer.last_error}"
    return line


def _follow(transfer_id: int) -> Transfer:
    """Wait while a worker sends the transfer (or until it waits for a retry)."""
    while True:
        transfer = Transfer.objects.all_hospitals().get(pk=transfer_id)
        waiting = (
            transfer.status == TransferStatus.QUEUED
            and transfer.next_attempt_at is not None
            and transfer.next_attempt_at > timezone.now()
        )
        if transfer.is_finished or waiting:
            return transfer
        time.sleep(0.5)


def run_send(
    *,
    study: str | None,
    series: str | None,
    instances: list[str] | None,
    to: list[str],
    slug: str,
    queue_only: bool,
) -> int:
    hospital = hospital_by_slug(slug)
    if hospital is None:
        return fail(f"no hospital {slug!r}")
    nodes = []
    for name in to:
        node = node_by_name(hospital, name)
        if node is None:
            return fail(f"no node {name!r} in hospital {slug!r}; see: carina nodes list")
        nodes.append(node)
    requester = Requester(
        origin=Origin.CLI, name=getpass.getuser(), correlation_id=f"cli-{uuid.uuid4().hex[:12]}"
    )
    try:
        transfers = do_send(
            hospital,
            nodes,
            requester=requester,
            study_uid=study,
            series_uid=series,
            sop_instance_uids=instances,
        )
    except TransferError as exc:
        return fail(str(exc))
    for transfer in transfers:
        print(
            f"Transfer {transfer.pk}: {transfer.total} instance(s) to "
            f"{transfer.destination_name} queued.",
            flush=True,
        )
    if queue_only:
        return 0
    code = 0
    for transfer in transfers:
        done = run_transfer(transfer.pk) or _follow(transfer.pk)
        if done.status == TransferStatus.SENDING or (
            done.status == TransferStatus.QUEUED and done.next_attempt_at is None
        ):
            done = _follow(transfer.pk)
        print(_describe(done), flush=True)
        if done.status != TransferStatus.SUCCEEDED:
            code = 1
    return code
