"""C-MOVE SCP, driven by DCMTK's movescu and by Carina's SCU: what arrives at the move
destination is counted and compared with the archive, byte for byte when the destination accepts
the stored transfer syntax, pixel for pixel when Carina has to decompress."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import UID, ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE

from carina.core.testing import free_port
from carina.dimse import move, scu, sending
from carina.dimse.actions import NodeOptions, do_add_node
from carina.dimse.conformance import STUDY_ROOT_MOVE
from carina.dimse.listener import Listener
from carina.dimse.models import RemoteNode
from carina.dimse.scu import MoveProgress, Target
from carina.dimse.tests.conftest import HOST, dcmtk, scu_args, stored_blob, wait_idle
from carina.dimse.tests.retrieving import (
    ArchivedStudy,
    archive_study,
    assert_received_as_stored,
    assert_received_decompressed,
    slow_store_scp,
    storescp,
)
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

MOVER = "MOVESCU"


@pytest.fixture
def study(hospital: Hospital, tmp_path: Path) -> ArchivedStudy:
    """3 CT slices (Explicit VR Little Endian) and 4 MR images (RLE, JPEG 2000 and JPEG-LS
    lossless, Explicit VR Big Endian)."""
    return archive_study(hospital, tmp_path / "in")


@pytest.fixture
def mover(hospital: Hospital) -> RemoteNode:
    """The node that asks for the moves (it may retrieve)."""
    node, _ = do_add_node(hospital, "mover", ae_title=MOVER, host=HOST, port=104)
    return node


def destination(
    hospital: Hospital, ae_title: str, port: int, options: NodeOptions | None = None
) -> RemoteNode:
    """Register a node (by default a move destination) listening on 127.0.0.1:``port``."""
    node, _ = do_add_node(
        hospital, ae_title.lower(), ae_title=ae_title, host=HOST, port=port, options=options
    )
    return node


def movescu(listener: Listener, dest: str, level: str, *keys: str, ok: bool = True) -> str:
    """Run DCMTK's movescu (Study Root) and return its log; it exits with 0 only when the
    final status is Success."""
    args = ["-v", "-S", *scu_args(listener.port, calling=MOVER), "-aem", dest]
    args += ["-k", f"QueryRetrieveLevel={level}"]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("movescu", *args)
    assert (result.returncode == 0) == ok, result.stderr
    return result.stderr


def carina(listener: Listener) -> Target:
    return Target(HOST, listener.port, "CARINA")


def test_movescu_study_level_sends_every_instance_as_stored(
    listener: Listener, hospital: Hospital, mover: RemoteNode, study: ArchivedStudy, tmp_path: Path
) -> None:
    with storescp(tmp_path / "out", "STORESCP", "+xa") as scp:
        destination(hospital, "STORESCP", scp.port)
        log = movescu(listener, "STORESCP", "STUDY", f"StudyInstanceUID={study.study_uid}")
        received = scp.received()
    assert "Received Final Move Response (Success)" in log
    assert log.count("(Pending)") == 7
    assert set(received) == set(study.uids)
    for path in received.values():
        assert_received_as_stored(hospital, path)
    wait_idle(listener)


def test_movescu_series_and_image_levels_send_only_what_they_name(
    listener: Listener, hospital: Hospital, mover: RemoteNode, study: ArchivedStudy, tmp_path: Path
) -> None:
    ct = study.series_uids(study.ct_series_uid)
    mr = study.series_uids(study.mr_series_uid)
    with storescp(tmp_path / "series", "STORESCP", "+xa") as scp:
        destination(hospital, "STORESCP", scp.port)
        log = movescu(listener, "STORESCP", "SERIES", f"SeriesInstanceUID={study.mr_series_uid}")
        assert "Received Final Move Response (Success)" in log
        assert set(scp.received()) == set(mr)
    with storescp(tmp_path / "images", "STORESCP", "+xa") as scp:
        destination(hospital, "STORESCP", scp.port)
        # A list of UIDs (backslash-separated), and the study key above the level.
        log = movescu(
            listener,
            "STORESCP",
            "IMAGE",
            f"StudyInstanceUID={study.study_uid}",
            f"SOPInstanceUID={ct[0]}\\{mr[1]}",
        )
        assert "Received Final Move Response (Success)" in log
        received = scp.received()
        assert set(received) == {ct[0], mr[1]}
        for path in received.values():
            assert_received_as_stored(hospital, path)


@pytest.mark.parametrize(
    ("options", "accepted", "syntax"),
    [
        ((), {ExplicitVRLittleEndian, ExplicitVRBigEndian}, ExplicitVRLittleEndian),
        (("+xi",), set(), ImplicitVRLittleEndian),
    ],
    ids=["uncompressed", "implicit-only"],
)
def test_a_destination_refusing_the_stored_syntax_gets_a_conversion(
    listener: Listener,
    hospital: Hospital,
    mover: RemoteNode,
    study: ArchivedStudy,
    tmp_path: Path,
    options: tuple[str, ...],
    accepted: set[UID],
    syntax: UID,
) -> None:
    """The transfer-syntax fallback: storescp without +xa accepts the uncompressed syntaxes
    only, and with +xi only Implicit VR Little Endian. What it accepts arrives as stored, the
    rest converted to ``syntax``."""
    with storescp(tmp_path / "out", "STORESCP", *options) as scp:
        destination(hospital, "STORESCP", scp.port)
        log = movescu(listener, "STORESCP", "STUDY", f"StudyInstanceUID={study.study_uid}")
        received = scp.received()
    assert "Received Final Move Response (Success)" in log
    assert set(received) == set(study.uids)
    for uid, path in received.items():
        instance, _ = stored_blob(hospital, uid)
        if instance.transfer_syntax_uid in accepted:
            assert_received_as_stored(hospital, path)
        else:
            assert_received_decompressed(hospital, path, syntax)


def test_patient_root_patient_level_with_carinas_scu(
    listener: Listener, hospital: Hospital, mover: RemoteNode, study: ArchivedStudy
) -> None:
    progress: list[MoveProgress] = []
    with slow_store_scp(0) as scp:
        destination(hospital, "SLOWSCP", scp.port)
        result = scu.move(
            carina(listener),
            "PATIENT",
            {"PatientID": "PID001"},
            "SLOWSCP",
            model="patient",
            on_progress=progress.append,
            calling_ae=MOVER,
        )
    assert result.ok, result
    assert (result.completed, result.failed, result.warning) == (7, 0, 0)
    assert [p.remaining for p in progress] == [6, 5, 4, 3, 2, 1, 0]
    assert [p.completed for p in progress] == [1, 2, 3, 4, 5, 6, 7]
    assert sorted(scp.received) == sorted(study.uids)


def test_move_to_an_unknown_destination_is_refused_and_nothing_is_sent(
    listener: Listener, hospital: Hospital, mover: RemoteNode, study: ArchivedStudy, tmp_path: Path
) -> None:
    with storescp(tmp_path / "out", "STORESCP", "+xa") as scp:
        destination(hospital, "STORESCP", scp.port)
        log = movescu(listener, "NOBODY", "STUDY", f"StudyInstanceUID={study.study_uid}", ok=False)
        assert "Received Final Move Response (Refused: MoveDestinationUnknown)" in log
        result = scu.move(
            carina(listener),
            "STUDY",
            {"StudyInstanceUID": study.study_uid},
            "NOBODY",
            calling_ae=MOVER,
        )
        assert result.status == 0xA801
        assert result.error_comment == "Move Destination 'NOBODY' is not a known node"
        # A known node that may not receive moves, and a disabled one, are refused alike.
        destination(hospital, "WS", scp.port, NodeOptions(is_move_destination=False))
        refused = scu.move(
            carina(listener), "STUDY", {"StudyInstanceUID": study.study_uid}, "WS", calling_ae=MOVER
        )
        assert refused.status == 0xA801
        assert "not a move destination" in refused.error_comment
        destination(hospital, "STORESCP", scp.port, NodeOptions(enabled=False))
        disabled = scu.move(
            carina(listener),
            "STUDY",
            {"StudyInstanceUID": study.study_uid},
            "STORESCP",
            calling_ae=MOVER,
        )
        assert disabled.status == 0xA801
        assert "disabled" in disabled.error_comment
        assert scp.received() == {}


def test_a_destination_that_is_down_fails_every_sub_operation(
    listener: Listener, hospital: Hospital, mover: RemoteNode, study: ArchivedStudy
) -> None:
    destination(hospital, "DOWN", free_port())  # nothing listens there
    result = scu.move(
        carina(listener), "STUDY", {"StudyInstanceUID": study.study_uid}, "DOWN", calling_ae=MOVER
    )
    # PS3.4 C.4.2.1.5: Refused, out of resources, unable to perform sub-operations.
    assert result.status == 0xA702
    assert (result.completed, result.failed, result.warning) == (0, 7, 0)
    assert sorted(result.failed_sop_instance_uids) == sorted(study.uids)
    assert result.error_comment.startswith("could not connect to DOWN@127.0.0.1")
    assert scu.echo(HOST, listener.port, "CARINA", MOVER).ok  # the listener goes on
    wait_idle(listener)


@pytest.mark.slow
def test_c_cancel_stops_a_move_between_sub_operations(
    listener: Listener, hospital: Hospital, mover: RemoteNode, tmp_path: Path
) -> None:
    study = archive_study(hospital, tmp_path / "in", ct_slices=6)  # 10 instances
    cancel = threading.Event()
    with slow_store_scp(0.3) as scp:
        destination(hospital, "SLOWSCP", scp.port)
        result = scu.move(
            carina(listener),
            "STUDY",
            {"StudyInstanceUID": study.study_uid},
            "SLOWSCP",
            on_progress=lambda progress: cancel.set(),
            calling_ae=MOVER,
            cancel=cancel,
        )
        wait_idle(listener)
        received = list(scp.received)
    assert result.status == 0xFE00
    assert 1 <= result.completed < 10
    assert result.failed == 0
    assert result.remaining == 10 - result.completed
    assert result.failed_sop_instance_uids == ()
    assert len(received) == result.completed


@pytest.mark.slow
def test_a_requestor_that_aborts_mid_move_stops_the_sub_operations(
    listener: Listener, hospital: Hospital, mover: RemoteNode, tmp_path: Path
) -> None:
    study = archive_study(hospital, tmp_path / "in", ct_slices=6)  # 10 instances
    ae = AE(ae_title=MOVER)
    ae.add_requested_context(STUDY_ROOT_MOVE)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study.study_uid
    with slow_store_scp(0.3) as scp:
        destination(hospital, "SLOWSCP", scp.port)
        assoc = ae.associate(HOST, listener.port, ae_title="CARINA")
        assert assoc.is_established
        for status, _ in assoc.send_c_move(identifier, "SLOWSCP", STUDY_ROOT_MOVE):
            assert status.Status == 0xFF00
            assoc.abort()
            break
        wait_idle(listener)
        assert 1 <= len(scp.received) < 10
    assert scu.echo(HOST, listener.port, "CARINA", MOVER).ok  # the listener goes on
    wait_idle(listener)


def test_isolation_a_hospital_cannot_move_another_hospitals_study(
    listener: Listener,
    hospital: Hospital,
    other_hospital: Hospital,
    mover: RemoteNode,
    tmp_path: Path,
) -> None:
    theirs = archive_study(other_hospital, tmp_path / "theirs", ct_slices=1)
    with slow_store_scp(0) as scp:
        destination(hospital, "SLOWSCP", scp.port)
        cases: list[tuple[str, dict[str, str | list[str]]]] = [
            ("STUDY", {"StudyInstanceUID": theirs.study_uid}),
            ("SERIES", {"SeriesInstanceUID": theirs.ct_series_uid}),
            ("IMAGE", {"SOPInstanceUID": theirs.uids}),
        ]
        for level, keys in cases:
            result = scu.move(carina(listener), level, keys, "SLOWSCP", calling_ae=MOVER)
            assert result.ok
            assert (result.completed, result.failed, result.pending) == (0, 0, 0)
        assert scp.received == []


def test_only_nodes_that_may_retrieve_may_move(
    listener: Listener, hospital: Hospital, study: ArchivedStudy
) -> None:
    destination(hospital, "VIEWER", 104, NodeOptions(may_retrieve=False))
    with slow_store_scp(0) as scp:
        destination(hospital, "SLOWSCP", scp.port)
        keys = {"StudyInstanceUID": study.study_uid}
        refused = scu.move(carina(listener), "STUDY", keys, "SLOWSCP", calling_ae="VIEWER")
        # An unknown caller, accepted by the default hospital's policy, may only echo and store.
        stranger = scu.move(carina(listener), "STUDY", keys, "SLOWSCP", calling_ae="STRANGER")
        assert scp.received == []
    assert refused.status == 0x0124
    assert refused.error_comment == "VIEWER may not retrieve from hospital default"
    assert stranger.status == 0x0124


@pytest.mark.parametrize(
    ("model", "level", "keys", "comment"),
    [
        ("study", "", {"StudyInstanceUID": "1.2.3"}, "QueryRetrieveLevel (0008,0052) is missing"),
        (
            "study",
            "PATIENT",
            {"PatientID": "PID001"},
            "QueryRetrieveLevel PATIENT is not in the Study Root model",
        ),
        ("study", "SERIES", {"StudyInstanceUID": "1.2.3"}, "SeriesInstanceUID is required at the"),
        ("patient", "PATIENT", {}, "PatientID is required at the PATIENT level"),
        (
            "study",
            "STUDY",
            {"StudyInstanceUID": "1.2.3", "SeriesInstanceUID": "1.2.3.4"},
            "SeriesInstanceUID is below the STUDY retrieve level",
        ),
        ("study", "FRAME", {"SOPInstanceUID": "1.2.3"}, "QueryRetrieveLevel FRAME is not in the"),
    ],
)
def test_bad_identifiers_are_refused(
    listener: Listener,
    hospital: Hospital,
    mover: RemoteNode,
    model: str,
    level: str,
    keys: dict[str, str],
    comment: str,
) -> None:
    identifier = Dataset()
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    destination(hospital, "DEST", free_port())  # refused before anything is sent
    result = scu.move(carina(listener), level, identifier, "DEST", model=model, calling_ae=MOVER)
    # PS3.4 C.4.2.1.5: Error, Identifier does not match SOP Class.
    assert result.status == 0xA900
    assert result.error_comment.startswith(comment)


def test_a_blob_without_a_local_file_is_sent_from_a_temporary_copy(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Object storage (S3) gives a stream, not a file: sending copies it to a temporary file,
    removed afterwards."""
    content = b"\x00" * 128 + b"DICM" + b"rest of the object"

    class Streams:
        def open(self, key: str) -> io.BytesIO:
            return io.BytesIO(content)

    monkeypatch.setattr(sending, "get_storage", Streams)
    with sending.blob_file("any/key.dcm") as path:
        assert path.read_bytes() == content
    assert not path.exists()


def test_an_unexpected_error_is_answered_and_the_association_goes_on(
    listener: Listener,
    hospital: Hospital,
    mover: RemoteNode,
    study: ArchivedStudy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(move, "node_for_ae", broken)
    result = scu.move(
        carina(listener), "STUDY", {"StudyInstanceUID": study.study_uid}, "X", calling_ae=MOVER
    )
    assert result.status == 0xC000
    assert result.error_comment == "internal error in Carina; see the listener log"
    assert scu.echo(HOST, listener.port, "CARINA", MOVER).ok
