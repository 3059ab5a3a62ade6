"""Fixtures for routing tests: archived studies, destination nodes, Storage SCPs that accept
some SOP classes only, and helpers that run transfers as the worker does."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest
from django.utils import timezone
from pydicom.uid import generate_uid
from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from pynetdicom.presentation import AllStoragePresentationContexts, build_context

from carina.archive.models import Instance
from carina.core.testing import free_port, write_series
from carina.dimse.actions import NodeOptions, do_add_node
from carina.dimse.models import RemoteNode
from carina.dimse.tests.conftest import HOST
from carina.dimse.tests.retrieving import archive_files, wait_listening
from carina.routing.actions import Requester, do_send
from carina.routing.models import Origin, Transfer
from carina.routing.queue import recover
from carina.routing.runner import run_transfer
from carina.tenancy.models import Hospital

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"


@dataclass
class Study:
    """A study archived for a test: its UID and its instances' UIDs, in order."""

    study_uid: str
    series_uid: str
    uids: list[str]


def archive_ct_study(
    hospital: Hospital, folder: Path, count: int, *, size: int = 32, **kwargs: Any
) -> Study:
    """Archive a CT series of ``count`` slices (Explicit VR Little Endian)."""
    study_uid, series_uid = generate_uid(), generate_uid()
    paths = write_series(
        folder, count, study_uid=study_uid, series_uid=series_uid, size=size, **kwargs
    )
    archive_files(hospital, paths)
    uids = list(
        Instance.objects.for_hospital(hospital)
        .filter(series__series_instance_uid=series_uid)
        .order_by("instance_number")
        .values_list("sop_instance_uid", flat=True)
    )
    return Study(study_uid, series_uid, uids)


def add_destination(
    hospital: Hospital, name: str, ae_title: str, port: int, **options: Any
) -> RemoteNode:
    node, _ = do_add_node(
        hospital, name, ae_title=ae_title, host=HOST, port=port, options=NodeOptions(**options)
    )
    return node


def send(hospital: Hospital, node: RemoteNode, **what: Any) -> Transfer:
    """Ask for one transfer as a user of the web would (no worker runs it yet)."""
    (transfer,) = do_send(hospital, [node], requester=Requester(Origin.USER, name="tester"), **what)
    return transfer


def run_due(transfer: Transfer) -> Transfer:
    """Make the transfer's next attempt due, then run it as the worker's task would."""
    Transfer.objects.all_hospitals().filter(pk=transfer.pk).update(next_attempt_at=timezone.now())
    run_transfer(transfer.pk)
    transfer.refresh_from_db()
    return transfer


@pytest.fixture(autouse=True)
def fast_retries(settings: Any) -> None:
    """Retries are due after a second in tests (the delays still double)."""
    settings.CARINA_ROUTING_RETRY_BASE_SECONDS = 1


@dataclass
class CountingSCP:
    """A pynetdicom Storage SCP that counts what it stored, accepting ``sop_classes`` only
    (all storage classes by default), optionally slowly."""

    ae_title: str
    port: int
    stored: list[str] = field(default_factory=list)

    def count(self, uid: str) -> int:
        return self.stored.count(uid)


@contextmanager
def counting_scp(
    ae_title: str = "COUNTSCP",
    *,
    sop_classes: list[str] | None = None,
    delay: float = 0.0,
    port: int | None = None,
) -> Iterator[CountingSCP]:
    scp = CountingSCP(ae_title, port or free_port())
    lock = threading.Lock()

    def handle_store(event: Event) -> int:
        if delay:
            time.sleep(delay)
        with lock:
            scp.stored.append(str(cast(C_STORE, event.request).AffectedSOPInstanceUID))
        return 0x0000

    ae = AE(ae_title=ae_title)
    if sop_classes is None:
        ae.supported_contexts = AllStoragePresentationContexts
    else:
        ae.supported_contexts = [build_context(uid) for uid in sop_classes]
    ae.add_supported_context("1.2.840.10008.1.1")  # Verification: answers C-ECHO
    server = ae.start_server(
        (HOST, scp.port), block=False, evt_handlers=[(evt.EVT_C_STORE, handle_store)]
    )
    assert server is not None
    try:
        yield scp
    finally:
        server.shutdown()


__all__ = ["CT_IMAGE", "Study", "add_destination", "archive_ct_study", "recover", "run_due", "send"]


@contextmanager
def private_redis() -> Iterator[str]:
    """A Redis server of the test's own on a free loopback port, keeping nothing on disk;
    yields its broker URL (``CARINA_BROKER_URL``) and stops it afterwards."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_listening(port)
        yield f"redis://{HOST}:{port}/0"
    finally:
        server.terminate()
        server.wait(10)
