"""Transfers to DICOM destinations, run as the worker runs them: DCMTK's storescp receives a
200-instance study byte for byte; a destination stopped mid-transfer and brought back gets
every instance once; a destination rejecting a SOP class gives a partly failed transfer that
names the instances and the reason; retries back off and end; the transfer-syntax fallback
and a node's preferred syntax; cancel and manual retry."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone
from pydicom.uid import UID, ImplicitVRLittleEndian

from carina.audit.models import AuditEvent
from carina.core.testing import free_port
from carina.dimse.tests import retrieving
from carina.dimse.tests.conftest import stored_blob
from carina.dimse.tests.retrieving import (
    archive_study,
    assert_received_as_stored,
    assert_received_decompressed,
    storescp,
)
from carina.routing.actions import TransferError, do_cancel, do_retry
from carina.routing.models import ItemStatus, Transfer, TransferItem, TransferStatus
from carina.routing.queue import depth, recover
from carina.routing.runner import claim, run_transfer
from carina.routing.tests.conftest import (
    CT_IMAGE,
    add_destination,
    archive_ct_study,
    counting_scp,
    run_due,
    send,
)
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)


def items(transfer: Transfer) -> list[TransferItem]:
    return list(TransferItem.objects.filter(transfer=transfer).order_by("id"))


@pytest.mark.slow
def test_a_200_instance_study_reaches_storescp_byte_for_byte(
    hospital: Hospital, tmp_path: Path
) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 200)
    with storescp(tmp_path / "out", "STORESCP") as scp:
        node = add_destination(hospital, "storescp", "STORESCP", scp.port)
        transfer = send(hospital, node, study_uid=study.study_uid)
        assert (transfer.status, transfer.total, depth()) == (TransferStatus.QUEUED, 200, 1)
        run_transfer(transfer.pk)
        received = scp.received()
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.SUCCEEDED, transfer.last_error
    assert (transfer.sent, transfer.failed, transfer.attempts) == (200, 0, 1)
    assert transfer.bytes_sent > 200 * 32 * 32 * 2
    assert transfer.duration is not None and transfer.finished_at is not None
    assert depth() == 0
    assert sorted(received) == sorted(study.uids)
    for path in received.values():
        assert_received_as_stored(hospital, path)
    # In the audit trail: who, which study, where, how many.
    event = AuditEvent.objects.for_hospital(hospital).get(action="routing.transfer")
    assert (event.object_uid, event.destination_ae, event.count) == (
        study.study_uid,
        "STORESCP",
        200,
    )
    assert (event.outcome, event.actor) == ("success", "tester")


@pytest.mark.slow
def test_a_destination_stopped_mid_transfer_gets_every_instance_once_when_back(
    hospital: Hospital, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 200)
    out = tmp_path / "out"
    with storescp(out, "STORESCP") as scp:
        port = scp.port
        node = add_destination(hospital, "storescp", "STORESCP", port)
        transfer = send(hospital, node, study_uid=study.study_uid)
        worker = threading.Thread(target=run_transfer, args=(transfer.pk,))
        worker.start()
        deadline = time.monotonic() + 60
        while Transfer.objects.all_hospitals().get(pk=transfer.pk).sent < 40:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    # storescp is stopped (SIGTERM) while the transfer goes on.
    worker.join(60)
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.QUEUED
    assert 40 <= transfer.sent < 200
    assert transfer.next_attempt_at is not None and transfer.next_attempt_at > timezone.now()
    assert transfer.last_error
    left = TransferItem.objects.filter(transfer=transfer, status=ItemStatus.PENDING).count()
    assert left == 200 - transfer.sent
    # The destination comes back on the same port; the retry sends what is left.
    monkeypatch.setattr(retrieving, "free_port", lambda: port)
    with storescp(out, "STORESCP") as scp:
        transfer = run_due(transfer)
        received = scp.received()
    assert transfer.status == TransferStatus.SUCCEEDED, transfer.last_error
    assert (transfer.sent, transfer.attempts) == (200, 2)
    assert sorted(received) == sorted(study.uids)
    for path in received.values():
        assert_received_as_stored(hospital, path)
    # Delivered once: each instance was confirmed once; only the one on the wire when the
    # destination went away can have been sent twice.
    rows = items(transfer)
    assert all(row.status == ItemStatus.SENT for row in rows)
    assert sum(row.attempts for row in rows) <= 201


def test_a_destination_rejecting_a_sop_class_gives_a_partly_failed_transfer(
    hospital: Hospital, tmp_path: Path
) -> None:
    """The SCP accepts CT Image Storage only: the MR images fail, each with the reason."""
    study = archive_study(hospital, tmp_path / "in", ct_slices=3)
    with counting_scp("CTONLY", sop_classes=[CT_IMAGE]) as scp:
        node = add_destination(hospital, "ct-only", "CTONLY", scp.port)
        transfer = run_due(send(hospital, node, study_uid=study.study_uid))
    assert transfer.status == TransferStatus.PARTLY_FAILED
    assert (transfer.total, transfer.sent, transfer.failed) == (7, 3, 4)
    mr = set(study.series_uids(study.mr_series_uid))
    failed = [row for row in items(transfer) if row.status == ItemStatus.FAILED]
    assert {row.sop_instance_uid for row in failed} == mr
    for row in failed:
        assert "no presentation context with ct-only for MR Image Storage" in row.reason
    assert "MR Image Storage" in transfer.last_error
    assert sorted(scp.stored) == sorted(set(study.uids) - mr)
    event = AuditEvent.objects.for_hospital(hospital).get(action="routing.transfer")
    assert (event.outcome, event.count) == ("partial", 3)


def test_the_transfer_syntax_fallback_and_a_preferred_syntax(
    hospital: Hospital, tmp_path: Path
) -> None:
    study = archive_study(hospital, tmp_path / "in", ct_slices=2)
    # storescp without +xa accepts uncompressed syntaxes only: compressed MR is converted.
    with storescp(tmp_path / "plain", "PLAIN") as scp:
        node = add_destination(hospital, "plain", "PLAIN", scp.port)
        transfer = run_due(send(hospital, node, study_uid=study.study_uid))
        received = scp.received()
    assert transfer.status == TransferStatus.SUCCEEDED, transfer.last_error
    assert sorted(received) == sorted(study.uids)
    converted = {row.sop_instance_uid: row.sent_as for row in items(transfer)}
    for uid, path in received.items():
        instance, _ = stored_blob(hospital, uid)
        if converted[uid] == instance.transfer_syntax_uid:
            assert_received_as_stored(hospital, path)
        else:
            assert_received_decompressed(hospital, path, UID(converted[uid]))
    # A node preferring Implicit VR Little Endian gets every object in it.
    with storescp(tmp_path / "implicit", "IMPL", "+xa") as scp:
        node = add_destination(
            hospital, "impl", "IMPL", scp.port, preferred_transfer_syntax=ImplicitVRLittleEndian
        )
        transfer = run_due(send(hospital, node, study_uid=study.study_uid))
        received = scp.received()
    assert transfer.status == TransferStatus.SUCCEEDED, transfer.last_error
    assert {row.sent_as for row in items(transfer)} == {ImplicitVRLittleEndian}
    for path in received.values():
        assert_received_decompressed(hospital, path, ImplicitVRLittleEndian)


def test_an_unreachable_destination_is_retried_with_backoff_then_fails(
    hospital: Hospital, tmp_path: Path, settings: Any
) -> None:
    settings.CARINA_ROUTING_MAX_ATTEMPTS = 3
    study = archive_ct_study(hospital, tmp_path / "in", 3)
    node = add_destination(hospital, "down", "DOWN", free_port())
    transfer = send(hospital, node, study_uid=study.study_uid)
    waits = []
    for attempt in (1, 2):
        before = timezone.now()
        transfer = run_due(transfer)
        assert transfer.status == TransferStatus.QUEUED
        assert transfer.attempts == attempt
        assert "could not connect" in transfer.last_error
        assert transfer.next_attempt_at is not None
        waits.append((transfer.next_attempt_at - before).total_seconds())
        # Not due yet: a message for it does nothing.
        assert run_transfer(transfer.pk) is None
    assert 0.9 < waits[0] < waits[1]  # 1 s, then 2 s: exponential backoff
    transfer = run_due(transfer)
    assert transfer.status == TransferStatus.FAILED
    assert "gave up after 3 attempts" in transfer.last_error
    assert all(
        row.status == ItemStatus.FAILED and "could not connect" in row.reason
        for row in items(transfer)
    )
    # A manual retry starts afresh, and succeeds once the destination listens.
    with counting_scp("DOWN", port=node.port) as scp:
        transfer = do_retry(hospital, transfer.pk)
        assert (transfer.status, transfer.attempts) == (TransferStatus.QUEUED, 0)
        transfer = run_due(transfer)
    assert transfer.status == TransferStatus.SUCCEEDED
    assert sorted(scp.stored) == sorted(study.uids)


def test_cancel_stops_a_transfer_and_retry_sends_only_the_rest(
    hospital: Hospital, tmp_path: Path
) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 30)
    with counting_scp("SLOW", delay=0.05) as scp:
        node = add_destination(hospital, "slow", "SLOW", scp.port)
        transfer = send(hospital, node, study_uid=study.study_uid)
        worker = threading.Thread(target=run_transfer, args=(transfer.pk,))
        worker.start()
        while Transfer.objects.all_hospitals().get(pk=transfer.pk).sent < 5:
            time.sleep(0.01)
        do_cancel(hospital, transfer.pk, "tester")
        worker.join(30)
        transfer.refresh_from_db()
        assert transfer.status == TransferStatus.CANCELLED
        assert 5 <= transfer.sent < 30
        assert len(scp.stored) == transfer.sent
        with pytest.raises(TransferError, match="already ended"):
            do_cancel(hospital, transfer.pk, "tester")
        transfer = run_due(do_retry(hospital, transfer.pk))
        assert transfer.status == TransferStatus.SUCCEEDED
    assert sorted(scp.stored) == sorted(study.uids)  # each instance once
    with pytest.raises(TransferError, match="only a failed"):
        do_retry(hospital, transfer.pk)


def test_a_destination_takes_at_most_its_parallel_associations(
    hospital: Hospital, tmp_path: Path
) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 2)
    node = add_destination(hospital, "one", "ONE", free_port(), max_associations=1)
    first = send(hospital, node, study_uid=study.study_uid)
    second = send(hospital, node, study_uid=study.study_uid)
    assert claim(first.pk, "elsewhere:1") is not None
    assert claim(second.pk, "elsewhere:2") is None  # waits for the first
    assert claim(first.pk, "elsewhere:3") is None  # and nobody takes a transfer twice
    assert depth() == 2


def test_recovery_resumes_a_transfer_whose_worker_died(hospital: Hospital, tmp_path: Path) -> None:
    study = archive_ct_study(hospital, tmp_path / "in", 2)
    with counting_scp("BACK") as scp:
        node = add_destination(hospital, "back", "BACK", scp.port)
        transfer = send(hospital, node, study_uid=study.study_uid)
        import socket

        # A worker of this machine that no longer exists (no process has this PID).
        assert claim(transfer.pk, f"{socket.gethostname()}:{2**22 + 7}") is not None
        assert recover() == 1
        transfer.refresh_from_db()
        assert (transfer.status, transfer.worker) == (TransferStatus.QUEUED, "")
        run_transfer(transfer.pk)
    transfer.refresh_from_db()
    assert transfer.status == TransferStatus.SUCCEEDED
    assert sorted(scp.stored) == sorted(study.uids)
