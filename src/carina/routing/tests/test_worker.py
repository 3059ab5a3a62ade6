"""The real background worker (``carina worker`` child processes): killed with SIGKILL in the
middle of a 200-instance transfer and started again, it finishes the transfer with every
instance delivered once (embedded queue, no broker service); the same worker over Redis;
``carina send``; a second Carina (its own home and database) as the destination."""

from __future__ import annotations

import contextlib
import getpass
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from django.conf import settings

from carina.config.celery import app
from carina.core.testing import child_env, free_port, run_carina
from carina.dimse.tests.conftest import data_set_bytes, stored_blob
from carina.dimse.tests.retrieving import storescp, wait_listening
from carina.routing.models import ItemStatus, Transfer, TransferItem, TransferStatus
from carina.routing.runner import RECORD_BATCH
from carina.routing.tasks import send_transfer
from carina.routing.tests.conftest import (
    add_destination,
    archive_ct_study,
    counting_scp,
    private_redis,
    send,
)
from carina.tenancy.models import Hospital

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def worker_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A child sharing the test's database, blob folder and embedded queue."""
    return child_env(
        Path(settings.CARINA_HOME),
        storage_url=f"file://{tmp_path / 'blobs'}",
        CARINA_DICOM_PORT=str(free_port()),
        **extra,
    )


@contextlib.contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "carina", *argv], env=env, stdout=out, stderr=out
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(condition: Callable[[], bool], timeout: float = 90, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def current(transfer: Transfer) -> Transfer:
    return Transfer.objects.all_hospitals().get(pk=transfer.pk)


def test_a_worker_killed_mid_transfer_resumes_it_and_delivers_every_instance_once(
    hospital: Hospital, tmp_path: Path
) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 200)
    env = worker_env(tmp_path)
    log = tmp_path / "worker.log"
    with counting_scp("SLOWSCP", delay=0.01) as scp:
        node = add_destination(hospital, "slow", "SLOWSCP", scp.port)
        with running(["worker", "--concurrency", "2"], env, log) as worker:
            transfer = send(hospital, node, study_uid=study.study_uid)  # queued, message sent
            wait_for(lambda: current(transfer).sent >= 50, what="50 instances sent")
            worker.kill()  # SIGKILL: no clean-up at all
            worker.wait()
        stopped = current(transfer)
        assert stopped.status == TransferStatus.SENDING  # left by the dead worker
        assert 50 <= stopped.sent < 200
        # A new worker resumes it at start (its process is gone), without a new message.
        with running(["worker", "--concurrency", "2"], env, log):
            wait_for(lambda: current(transfer).is_finished, what="the transfer to end")
        done = current(transfer)
    assert done.status == TransferStatus.SUCCEEDED, done.last_error + log.read_text()
    assert (done.sent, done.failed) == (200, 0)
    assert sorted(set(scp.stored)) == sorted(study.uids)
    # Delivered once, but for the outcomes not saved yet at the kill (at most one batch, and
    # the instance on the wire): those may have gone twice.
    assert len(scp.stored) <= 200 + RECORD_BATCH + 1
    assert all(scp.count(uid) <= 2 for uid in study.uids)
    assert TransferItem.objects.filter(transfer=transfer, status=ItemStatus.SENT).count() == 200


def test_the_worker_with_redis_as_broker(hospital: Hospital, tmp_path: Path) -> None:
    with private_redis() as broker:
        study = archive_ct_study(hospital, tmp_path / "in", 5)
        with counting_scp("REDISSCP") as scp:
            node = add_destination(hospital, "r", "REDISSCP", scp.port)
            env = worker_env(tmp_path, CARINA_BROKER_URL=broker)
            with running(["worker"], env, tmp_path / "worker.log"):
                transfer = send(hospital, node, study_uid=study.study_uid)
                # Through Redis: the message the web process would publish.
                with app.connection_for_write(broker) as connection:
                    send_transfer.apply_async((transfer.pk,), connection=connection)
                wait_for(lambda: current(transfer).is_finished, what="the transfer to end")
        assert current(transfer).status == TransferStatus.SUCCEEDED
        assert sorted(scp.stored) == sorted(study.uids)


def test_carina_send_to_storescp(hospital: Hospital, tmp_path: Path) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 5)
    env = worker_env(tmp_path)
    with storescp(tmp_path / "out", "STORESCP") as scp:
        add_destination(hospital, "pacs2", "STORESCP", scp.port)
        result = run_carina(["send", "--study", study.study_uid, "--to", "pacs2"], env)
        received = scp.received()
    assert result.returncode == 0, result.stderr
    assert "Transfer" in result.stdout and "succeeded, 5 of 5 sent" in result.stdout
    assert sorted(received) == sorted(study.uids)
    transfer = Transfer.objects.for_hospital(hospital).get()
    assert (transfer.origin, transfer.requested_by_name) == ("cli", _os_user())
    missing = run_carina(["send", "--study", study.study_uid, "--to", "nowhere"], env)
    assert missing.returncode == 2
    assert "no node 'nowhere' in hospital 'default'" in missing.stderr


def _os_user() -> str:
    return getpass.getuser()


def test_a_second_carina_receives_a_200_instance_study_byte_for_byte(
    hospital: Hospital, tmp_path: Path
) -> None:
    """The destination is another Carina: its own CARINA_HOME, SQLite database and blobs."""
    study = archive_ct_study(hospital, tmp_path / "in", 200)
    peer_home = tmp_path / "peer"
    peer_port = free_port()
    peer_env = {k: v for k, v in os.environ.items() if not k.startswith("CARINA_")}
    peer_env.update(
        CARINA_HOME=str(peer_home),
        CARINA_DICOM_PORT=str(peer_port),
        CARINA_DICOM_HOST="127.0.0.1",
        CARINA_AE_TITLE="PEER",
    )
    for args in (
        ["migrate"],
        [
            "nodes",
            "add",
            "carina",
            "--hospital",
            "default",
            "--ae",
            settings.CARINA_AE_TITLE,
            "--host",
            "127.0.0.1",
            "--port",
            "104",
        ],
    ):
        done = run_carina(args, peer_env)
        assert done.returncode == 0, done.stderr
    with running(["dicom"], peer_env, tmp_path / "peer.log"):
        wait_listening(peer_port, timeout=60)
        node = add_destination(hospital, "peer", "PEER", peer_port)
        transfer = send(hospital, node, study_uid=study.study_uid)
        from carina.routing.runner import run_transfer

        run_transfer(transfer.pk)
    transfer = current(transfer)
    assert transfer.status == TransferStatus.SUCCEEDED, transfer.last_error
    received: dict[str, Path] = {}
    for path in (peer_home / "blobs").rglob("*"):
        if path.is_file():
            received[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    assert sorted(received) == sorted(study.uids)
    for uid, path in received.items():
        _, blob = stored_blob(hospital, uid)
        ours = tmp_path / "ours.dcm"
        ours.write_bytes(blob)
        assert data_set_bytes(path) == data_set_bytes(ours)
