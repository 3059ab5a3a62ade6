"""Bad input over the network: refused objects get the right status and a reason, nothing
partial is ever stored, and the listener keeps serving everyone else."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian

from carina.archive.models import Instance
from carina.archive.storage import get_storage
from carina.core.testing import write_series
from carina.dimse import scu
from carina.dimse.actions import NodeOptions, do_add_node
from carina.dimse.listener import Listener
from carina.dimse.tests.conftest import HOST, SCU_AE, data_set_bytes, dcmtk, scu_args, wait_idle
from carina.dimse.tests.rawpeer import A_ABORT, RawPeer, c_store_pdus
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"


def assert_nothing_kept(staging: Path, spool: Path) -> None:
    """No row, no blob, no staged or spooled file."""
    assert Instance.objects.all_hospitals().count() == 0
    assert list(get_storage().iter_keys()) == []
    for folder in (staging, spool):
        assert not folder.exists() or list(folder.iterdir()) == []


def assert_still_serving(listener: Listener, tmp_path: Path, hospital: Hospital) -> None:
    """Echo works and a whole object is stored after the trouble."""
    assert dcmtk("echoscu", *scu_args(listener.port)).returncode == 0
    path = write_series(tmp_path / f"after{time.monotonic_ns()}", 1)[0]
    assert dcmtk("storescu", *scu_args(listener.port), str(path)).returncode == 0
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    assert Instance.objects.for_hospital(hospital).filter(sop_instance_uid=uid).exists()


@pytest.fixture
def staging(tmp_path: Path) -> Path:
    return tmp_path / "staging"


def test_a_data_set_of_another_sop_class_than_announced_is_refused_with_a900(
    listener: Listener, tmp_path: Path, staging: Path, spool: Path
) -> None:
    # The file meta (which the SCU announces as Affected SOP Class) says MR; the data set is CT.
    ct = write_series(tmp_path / "s", 1)[0]
    meta = pydicom.dcmread(ct).file_meta
    meta.MediaStorageSOPClassUID = UID(MR)
    header = DicomBytesIO()
    header.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(header, meta)
    path = tmp_path / "mislabelled.dcm"
    path.write_bytes(header.getvalue() + data_set_bytes(ct))
    report = scu.store([path], HOST, listener.port, "CARINA", SCU_AE)
    [outcome] = report.outcomes
    assert outcome.status == 0xA900
    assert outcome.comment.startswith("the data set's SOP Class UID 1.2.840.10008.5.1.4.1.1.2")
    assert len(outcome.comment) <= 64
    wait_idle(listener)
    assert_nothing_kept(staging, spool)


def test_a_c_store_outside_its_presentation_context_is_refused_with_a900(
    listener: Listener, tmp_path: Path, staging: Path, spool: Path
) -> None:
    path = write_series(tmp_path / "s", 1)[0]
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    peer = RawPeer(listener.port)
    peer.associate([(CT, ExplicitVRLittleEndian)])
    # Context 1 was negotiated for CT Image Storage; the request claims MR Image Storage.
    for pdu in c_store_pdus(1, MR, uid, data_set_bytes(path)):
        peer.send(pdu)
    response = peer.read_response()
    peer.release()
    assert response.Status == 0xA900
    assert response.ErrorComment == "wrong context: 1 is for 1.2.840.10008.5.1.4.1.1.2"
    wait_idle(listener)
    assert_nothing_kept(staging, spool)


def test_a_data_set_without_study_instance_uid_is_refused_with_the_reason(
    listener: Listener, tmp_path: Path, staging: Path, spool: Path
) -> None:
    path = write_series(tmp_path / "s", 1)[0]
    ds = pydicom.dcmread(path)
    del ds.StudyInstanceUID
    ds.save_as(path, enforce_file_format=True)
    result = dcmtk("storescu", "-v", *scu_args(listener.port), str(path))
    assert result.returncode != 0
    assert "Received Store Response (Error: CannotUnderstand)" in result.stderr
    [outcome] = scu.store([path], HOST, listener.port, "CARINA", SCU_AE).outcomes
    assert outcome.status == 0xC001
    assert outcome.comment == "StudyInstanceUID (0020,000D) is missing or empty"
    wait_idle(listener)
    assert_nothing_kept(staging, spool)


def test_a_node_without_the_store_permission_is_refused(
    listener: Listener, hospital: Hospital, tmp_path: Path, staging: Path, spool: Path
) -> None:
    do_add_node(
        hospital,
        "viewer",
        ae_title=SCU_AE,
        host=HOST,
        port=104,
        options=NodeOptions(may_store=False),
    )
    paths = write_series(tmp_path / "s", 2)
    result = dcmtk("storescu", *scu_args(listener.port), *map(str, paths))
    assert result.returncode != 0
    report = scu.store(paths, HOST, listener.port, "CARINA", SCU_AE)
    assert {o.status for o in report.outcomes} == {0x0124}
    assert (
        report.outcomes[0].comment == "TESTSCU may not store into this archive of hospital default"
    )
    wait_idle(listener)
    assert_nothing_kept(staging, spool)


@pytest.mark.parametrize("ending", ["connection closed", "A-ABORT"])
def test_an_association_cut_off_mid_transfer_stores_nothing(
    listener: Listener,
    hospital: Hospital,
    tmp_path: Path,
    staging: Path,
    spool: Path,
    ending: str,
) -> None:
    path = write_series(tmp_path / "big", 1, size=512)[0]  # a 512 KB data set
    uid = str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)
    pdus = c_store_pdus(1, CT, uid, data_set_bytes(path))
    assert len(pdus) > 10
    peer = RawPeer(listener.port)
    peer.associate([(CT, ExplicitVRLittleEndian)])
    for pdu in pdus[: len(pdus) // 2]:
        peer.send(pdu)
    deadline = time.monotonic() + 10
    while not list(spool.glob("*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert list(spool.glob("*")), "the listener was receiving the data set"
    if ending == "A-ABORT":
        peer.send(A_ABORT)
    peer.close()
    wait_idle(listener)
    assert_nothing_kept(staging, spool)
    assert_still_serving(listener, tmp_path, hospital)


@pytest.mark.parametrize(
    "garbage",
    [
        pytest.param(random.Random(3).randbytes(4096), id="random bytes"),
        pytest.param(b"\x09\x00\x00\x00\x00\x02ab", id="unknown PDU type"),
        pytest.param(b"\x01\x00\xff\xff\xff\xff" + b"\x00" * 64, id="A-ASSOCIATE-RQ of 4 GB"),
        pytest.param(b"\x01\x00\x00\x00\x00\x10" + b"\xff" * 16, id="garbled A-ASSOCIATE-RQ"),
    ],
)
def test_malformed_pdus_do_not_stop_the_listener(
    listener: Listener,
    hospital: Hospital,
    tmp_path: Path,
    staging: Path,
    spool: Path,
    garbage: bytes,
) -> None:
    peer = RawPeer(listener.port)
    with contextlib.suppress(OSError):  # the listener may already have closed the connection
        peer.send(garbage)
    peer.close()
    wait_idle(listener)
    assert_nothing_kept(staging, spool)
    assert_still_serving(listener, tmp_path, hospital)


def test_garbage_inside_an_established_association_ends_only_that_association(
    listener: Listener, hospital: Hospital, tmp_path: Path, staging: Path, spool: Path
) -> None:
    peer = RawPeer(listener.port)
    peer.associate([(CT, ExplicitVRLittleEndian)])
    # A P-DATA-TF whose PDV item claims more bytes than the PDU holds.
    peer.send(b"\x04\x00\x00\x00\x00\x08" + b"\x00\x00\x10\x00\x01\x03\x00\x00")
    time.sleep(0.2)
    peer.close()
    wait_idle(listener)
    assert_nothing_kept(staging, spool)
    assert_still_serving(listener, tmp_path, hospital)


def test_a_stalled_peer_is_dropped_after_the_network_timeout(
    make_listener: Callable[..., Listener], hospital: Hospital, tmp_path: Path
) -> None:
    listener = make_listener(network_timeout=1, acse_timeout=2)
    silent = RawPeer(listener.port)  # connects and never speaks
    stalled = RawPeer(listener.port)  # starts a PDU and stops in its middle
    stalled.send(b"\x01\x00\x00\x00\x01\x00" + b"\x00\x01" + b"\x00" * 8)
    assert_still_serving(listener, tmp_path, hospital)  # others are served meanwhile
    wait_idle(listener, timeout=15)  # both connections were given up
    silent.close()
    stalled.close()


def test_associations_beyond_the_limit_are_rejected_as_transient(
    make_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = make_listener(max_associations=1)
    holder = RawPeer(listener.port)
    holder.associate([(CT, ExplicitVRLittleEndian)])
    result = dcmtk("echoscu", *scu_args(listener.port))
    assert result.returncode != 0
    assert "Rejected Transient" in result.stderr
    assert "Local Limit Exceeded" in result.stderr
    holder.release()
    wait_idle(listener)
    assert dcmtk("echoscu", *scu_args(listener.port)).returncode == 0


def test_connections_that_close_without_a_request_do_not_hold_association_slots(
    make_listener: Callable[..., Listener],
) -> None:
    # Without Carina's EVT_CONN_CLOSE handler each would hold a slot for the ACSE timeout.
    listener = make_listener(max_associations=2, acse_timeout=60)
    for _ in range(6):
        RawPeer(listener.port).close()
    wait_idle(listener, timeout=5)
    assert dcmtk("echoscu", *scu_args(listener.port)).returncode == 0
