"""C-GET SCP, driven by DCMTK's getscu and by pynetdicom: the instances come back over the
requesting association, on the storage contexts it proposed with the SCP role, byte for byte
when a context has the stored transfer syntax, converted otherwise."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import (
    UID,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    RLELossless,
)
from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.dsutils import split_dataset
from pynetdicom.events import Event
from pynetdicom.presentation import build_context, build_role, negotiate_as_acceptor

from carina.dimse.actions import NodeOptions, do_add_node
from carina.dimse.conformance import PATIENT_ROOT_GET, STUDY_ROOT_GET, contexts_for_request
from carina.dimse.listener import Listener
from carina.dimse.tests.conftest import HOST, dcmtk, scu_args, stored_blob, wait_idle
from carina.dimse.tests.retrieving import (
    ArchivedStudy,
    archive_study,
    assert_received_as_stored,
    assert_received_decompressed,
)
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db(transaction=True)

GETTER = "GETSCU"
CTImageStorage = UID("1.2.840.10008.5.1.4.1.1.2")
MRImageStorage = UID("1.2.840.10008.5.1.4.1.1.4")


@pytest.fixture
def study(hospital: Hospital, tmp_path: Path) -> ArchivedStudy:
    """3 CT slices (Explicit VR Little Endian) and 4 MR images (RLE, JPEG 2000 and JPEG-LS
    lossless, Explicit VR Big Endian)."""
    return archive_study(hospital, tmp_path / "in")


@pytest.fixture
def getter(hospital: Hospital) -> None:
    do_add_node(hospital, "getter", ae_title=GETTER, host=HOST, port=104)


def getscu(
    listener: Listener, folder: Path, level: str, *keys: str, options: tuple[str, ...] = ()
) -> tuple[int, str, dict[str, Path]]:
    """Run DCMTK's getscu (Study Root, bit-preserving) into ``folder``: exit code, log, and the
    files received by SOP Instance UID."""
    folder.mkdir(parents=True, exist_ok=True)
    args = [
        "-v",
        "-S",
        "+B",
        *options,
        "-od",
        str(folder),
        *scu_args(listener.port, calling=GETTER),
    ]
    args += ["-k", f"QueryRetrieveLevel={level}"]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("getscu", *args)
    received = {
        str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID): path
        for path in sorted(folder.iterdir())
    }
    return result.returncode, result.stderr, received


def test_getscu_study_level_gets_uncompressed_as_stored_and_compressed_decompressed(
    listener: Listener, hospital: Hospital, getter: None, study: ArchivedStudy, tmp_path: Path
) -> None:
    """getscu proposes the uncompressed syntaxes only (its default), Explicit VR Little Endian
    first: the CT slices arrive as stored, the MR images converted (the transfer-syntax
    fallback: decompressed, or from big to little endian)."""
    code, log, received = getscu(
        listener, tmp_path / "out", "STUDY", f"StudyInstanceUID={study.study_uid}"
    )
    assert code == 0, log
    assert "Received C-GET Response (Success)" in log
    assert "Number of Completed Suboperations : 7" in log
    assert set(received) == set(study.uids)
    ct = study.series_uids(study.ct_series_uid)
    for uid, path in received.items():
        if uid in ct:
            assert_received_as_stored(hospital, path)
        else:
            assert_received_decompressed(hospital, path, ExplicitVRLittleEndian)
    wait_idle(listener)


def test_getscu_series_and_image_levels(
    listener: Listener, hospital: Hospital, getter: None, study: ArchivedStudy, tmp_path: Path
) -> None:
    ct = study.series_uids(study.ct_series_uid)
    code, log, received = getscu(
        listener, tmp_path / "series", "SERIES", f"SeriesInstanceUID={study.ct_series_uid}"
    )
    assert code == 0, log
    assert set(received) == set(ct)
    code, log, received = getscu(
        listener, tmp_path / "image", "IMAGE", f"SOPInstanceUID={ct[2]}\\{ct[0]}"
    )
    assert code == 0, log
    assert set(received) == {ct[0], ct[2]}
    for path in received.values():
        assert_received_as_stored(hospital, path)


def test_getscu_preferring_rle_gets_everything_in_rle(
    listener: Listener, hospital: Hospital, getter: None, study: ArchivedStudy, tmp_path: Path
) -> None:
    """getscu +xr proposes RLE Lossless first for every storage class, which Carina accepts:
    the RLE image arrives as stored, the others are converted to RLE (lossless, pixel for
    pixel)."""
    code, log, received = getscu(
        listener,
        tmp_path / "out",
        "STUDY",
        f"StudyInstanceUID={study.study_uid}",
        options=("+xr",),
    )
    assert code == 0, log
    assert set(received) == set(study.uids)
    for path in received.values():
        instance, _ = stored_blob(hospital, str(pydicom.dcmread(path).SOPInstanceUID))
        if instance.transfer_syntax_uid == RLELossless:
            assert_received_as_stored(hospital, path)
        else:
            assert_received_decompressed(hospital, path, RLELossless)


def test_getscu_preferring_a_syntax_carina_cannot_encode_gets_uncompressed(
    listener: Listener, hospital: Hospital, getter: None, study: ArchivedStudy, tmp_path: Path
) -> None:
    """getscu +xt proposes JPEG-LS first, then the uncompressed syntaxes, in one context per
    class. Carina cannot encode JPEG-LS, so it accepts Explicit VR Little Endian: every object
    can be sent."""
    code, log, received = getscu(
        listener,
        tmp_path / "out",
        "STUDY",
        f"StudyInstanceUID={study.study_uid}",
        options=("+xt",),
    )
    assert code == 0, log
    assert set(received) == set(study.uids)
    for path in received.values():
        assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


@pytest.mark.parametrize(
    ("proposed", "accepted"),
    [
        ([RLELossless, ExplicitVRLittleEndian], RLELossless),  # Carina encodes RLE
        ([JPEGLSLossless, ExplicitVRLittleEndian], ExplicitVRLittleEndian),  # not JPEG-LS
        ([JPEGLSLossless], JPEGLSLossless),  # nothing else proposed: as stored, or fails
    ],
)
def test_storage_contexts_for_c_get_accept_a_syntax_carina_can_send_anything_in(
    proposed: list[UID], accepted: UID
) -> None:
    context = build_context(CTImageStorage, list[str | UID](proposed))
    context.context_id = 1
    for receives, expected in [([CTImageStorage], accepted), ([], proposed[0])]:
        supported = contexts_for_request([context], receives)
        result, _ = negotiate_as_acceptor([context], supported)
        assert result[0].transfer_syntax[0] == expected


# --- pynetdicom as the C-GET SCU ------------------------------------------------------------


@dataclass
class Received:
    """What a pynetdicom C-GET SCU received: per SOP Instance UID, the context's transfer
    syntax and the data set bytes."""

    objects: dict[str, tuple[UID, bytes]] = field(default_factory=dict)
    delay: float = 0.0
    first: threading.Event = field(default_factory=threading.Event)

    def handle_store(self, event: Event) -> int:
        try:
            path = event.dataset_path
            _, offset = split_dataset(path)
            data = Path(path).read_bytes()[offset:]
        except AttributeError:
            data = event.encoded_dataset(include_meta=False)
        uid = str(cast(C_STORE, event.request).AffectedSOPInstanceUID)
        self.objects[uid] = (UID(event.context.transfer_syntax), data)
        self.first.set()
        if self.delay:
            threading.Event().wait(self.delay)
        return 0x0000


def c_get(
    listener: Listener,
    identifier: Dataset,
    storage: Sequence[tuple[str, Sequence[str]]],
    *,
    model: str = STUDY_ROOT_GET,
    received: Received | None = None,
    cancel_after_first: bool = False,
) -> tuple[list[Dataset], Received]:
    """C-GET with pynetdicom, proposing one storage context per (SOP class, syntaxes) pair
    with the SCP role; returns every response's status data set and what was received."""
    received = received or Received()
    ae = AE(ae_title=GETTER)
    ae.add_requested_context(model)
    for sop_class, syntaxes in storage:
        ae.add_requested_context(sop_class, list(syntaxes))
    roles: list[Any] = [build_role(sop_class, scp_role=True) for sop_class in dict(storage)]
    assoc = ae.associate(
        HOST,
        listener.port,
        ae_title="CARINA",
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, received.handle_store)],
    )
    assert assoc.is_established
    statuses = []
    try:
        for status, _ in assoc.send_c_get(identifier, model):
            statuses.append(status)
            if cancel_after_first and len(statuses) == 1:
                assoc.send_c_cancel(1, query_model=model)
    finally:
        assoc.release()
    return statuses, received


def study_identifier(study: ArchivedStudy) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study.study_uid
    return ds


def test_contexts_in_each_stored_syntax_get_everything_as_stored(
    listener: Listener, hospital: Hospital, getter: None, study: ArchivedStudy
) -> None:
    """A requestor proposing one context per syntax gets each object in the syntax it is
    stored in, the data set byte for byte."""
    statuses, received = c_get(
        listener,
        study_identifier(study),
        [
            (CTImageStorage, [ExplicitVRLittleEndian]),
            (MRImageStorage, [RLELossless]),
            (MRImageStorage, [JPEG2000Lossless]),
            (MRImageStorage, [JPEGLSLossless]),
            (MRImageStorage, [ExplicitVRBigEndian]),
            (MRImageStorage, [ExplicitVRLittleEndian]),
        ],
    )
    final = statuses[-1]
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == 7
    assert [s.Status for s in statuses[:-1]] == [0xFF00] * 7
    assert [s.NumberOfRemainingSuboperations for s in statuses[:-1]] == [6, 5, 4, 3, 2, 1, 0]
    assert set(received.objects) == set(study.uids)
    for uid, (syntax, data) in received.objects.items():
        instance, blob = stored_blob(hospital, uid)
        assert syntax == instance.transfer_syntax_uid
        assert data == blob[-len(data) :]  # the stored data set, after Carina's file meta


def test_without_storage_contexts_every_sub_operation_fails(
    listener: Listener, hospital: Hospital, getter: None, study: ArchivedStudy
) -> None:
    statuses, received = c_get(
        listener, study_identifier(study), [(CTImageStorage, [ExplicitVRLittleEndian])]
    )
    final = statuses[-1]
    # Only the CT slices had a context: a warning, the MR images listed as failed.
    assert final.Status == 0xB000
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (3, 4)
    assert len(received.objects) == 3
    statuses, received = c_get(listener, study_identifier(study), [])
    final = statuses[-1]
    assert final.Status == 0xA702
    assert final.NumberOfFailedSuboperations == 7
    assert "no presentation context" in final.ErrorComment
    assert received.objects == {}


@pytest.mark.slow
def test_c_cancel_stops_a_get(
    listener: Listener, hospital: Hospital, getter: None, tmp_path: Path
) -> None:
    study = archive_study(hospital, tmp_path / "in", ct_slices=6)
    statuses, received = c_get(
        listener,
        study_identifier(study),
        [(CTImageStorage, [ExplicitVRLittleEndian]), (MRImageStorage, [ExplicitVRLittleEndian])],
        received=Received(delay=0.2),
        cancel_after_first=True,
    )
    final = statuses[-1]
    assert final.Status == 0xFE00
    assert 1 <= final.NumberOfCompletedSuboperations < 10
    assert final.NumberOfRemainingSuboperations == 10 - final.NumberOfCompletedSuboperations
    assert len(received.objects) == final.NumberOfCompletedSuboperations
    wait_idle(listener)


def test_isolation_and_permissions(
    listener: Listener,
    hospital: Hospital,
    other_hospital: Hospital,
    getter: None,
    tmp_path: Path,
) -> None:
    theirs = archive_study(other_hospital, tmp_path / "theirs", ct_slices=2)
    contexts = [(CTImageStorage, [ExplicitVRLittleEndian])]
    # Hospital A's AE title does not find hospital B's study: 0 sub-operations.
    statuses, received = c_get(listener, study_identifier(theirs), contexts)
    assert [s.Status for s in statuses] == [0x0000]
    assert statuses[0].NumberOfCompletedSuboperations == 0
    assert received.objects == {}
    # The same through DCMTK, Patient Root at the PATIENT level.
    result = dcmtk(
        "getscu",
        "-P",
        "-od",
        str(tmp_path),
        *scu_args(listener.port, calling=GETTER),
        "-k",
        "QueryRetrieveLevel=PATIENT",
        "-k",
        "PatientID=PID001",
    )
    assert result.returncode == 0, result.stderr
    assert [p for p in tmp_path.iterdir() if p.is_file()] == []
    # A node that may not retrieve is refused.
    do_add_node(
        hospital, "getter", ae_title=GETTER, host=HOST, port=104,
        options=NodeOptions(may_retrieve=False),
    )  # fmt: skip
    statuses, received = c_get(listener, study_identifier(theirs), contexts, model=PATIENT_ROOT_GET)
    assert statuses[-1].Status == 0x0124
    assert statuses[-1].ErrorComment == "GETSCU may not retrieve from hospital default"


def test_bad_identifier_is_refused(
    listener: Listener, hospital: Hospital, getter: None, tmp_path: Path
) -> None:
    _, log, received = getscu(listener, tmp_path / "out", "SERIES", "StudyInstanceUID=1.2.3")
    # 0xA900, which DCMTK calls "Error: Data Set does not match SOP Class" (PS3.4 Table C.4-3:
    # Identifier does not match SOP Class); getscu exits with 0 all the same.
    assert "Received C-GET Response (Error: DataSetDoesNotMatchSOPClass)" in log
    assert received == {}
