"""Helpers for the C-MOVE and C-GET tests: an archived study with uncompressed and compressed
series, DCMTK's storescp as a move destination, a slow pynetdicom Storage SCP, and comparisons
of what arrived with what the archive keeps."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid
from pynetdicom import AE, evt
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from pynetdicom.presentation import AllStoragePresentationContexts

from carina.archive.ingest import Origin, ingest
from carina.archive.models import Instance, Source
from carina.core.testing import free_port, shipped_file, write_series
from carina.dimse.tests.conftest import HOST, data_set_bytes, stored_blob
from carina.tenancy.models import Hospital

#: MR images shipped with pydicom (all the same image, with the same UIDs), in syntaxes a
#: destination may not accept: RLE, JPEG 2000 and JPEG-LS lossless, Explicit VR Big Endian.
MR_FILES = (
    "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_bigendian.dcm",
)


@dataclass
class ArchivedStudy:
    """A study in the archive: an uncompressed CT series and an MR series in 4 other syntaxes
    (:data:`MR_FILES`)."""

    study_uid: str
    ct_series_uid: str
    mr_series_uid: str
    #: SOP Instance UID → the file that was archived.
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def uids(self) -> list[str]:
        return list(self.files)

    def series_uids(self, series_uid: str) -> list[str]:
        return [
            uid
            for uid, path in self.files.items()
            if pydicom.dcmread(path, stop_before_pixels=True).SeriesInstanceUID == series_uid
        ]


def archive_files(hospital: Hospital, paths: list[Path]) -> None:
    for path in paths:
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT, path.name))


def archive_study(
    hospital: Hospital, folder: Path, ct_slices: int = 3, patient_id: str = "PID001"
) -> ArchivedStudy:
    """Archive one study: ``ct_slices`` CT slices in Explicit VR Little Endian, and an MR
    series with one image per file of :data:`MR_FILES`."""
    study_uid = generate_uid()
    ct = write_series(folder / "ct", ct_slices, study_uid=study_uid, patient_id=patient_id)
    mr_series = generate_uid()
    mr = []
    for number, name in enumerate(MR_FILES, start=1):
        ds = pydicom.dcmread(shipped_file(name))
        sop = generate_uid()
        ds.SOPInstanceUID = sop
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = mr_series
        ds.PatientID = patient_id
        ds.PatientName = "TEST^PATIENT"
        ds.PatientBirthDate = "19700101"
        ds.PatientSex = "O"
        ds.InstanceNumber = number
        path = folder / "mr" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        mr.append(path)
    archive_files(hospital, ct + mr)
    study = ArchivedStudy(study_uid, str(pydicom.dcmread(ct[0]).SeriesInstanceUID), mr_series)
    for path in ct + mr:
        study.files[str(pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID)] = path
    return study


# --- DCMTK storescp -----------------------------------------------------------------------


@dataclass
class StoreSCP:
    """A running DCMTK storescp: its AE title, port and output folder."""

    ae_title: str
    port: int
    folder: Path
    process: subprocess.Popen[str]

    def received(self) -> dict[str, Path]:
        """SOP Instance UID → file, for every file storescp wrote."""
        found = {}
        for path in sorted(self.folder.iterdir()):
            if path.is_file():
                ds = pydicom.dcmread(path, stop_before_pixels=True)
                found[str(ds.SOPInstanceUID)] = path
        return found


@contextmanager
def storescp(folder: Path, ae_title: str = "STORESCP", *options: str) -> Iterator[StoreSCP]:
    """Start ``/usr/bin/storescp`` writing into ``folder`` (bit-preserving: the received data
    set is written exactly as it arrived), and stop it afterwards. DCMTK 3.6.7's storescp has
    no option to bind one address; it listens on every interface."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    args = ["/usr/bin/storescp", "-aet", ae_title, "+B", "-od", str(folder), *options, str(port)]
    process = subprocess.Popen(
        args, cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_listening(port)
        yield StoreSCP(ae_title, port, folder, process)
    finally:
        process.terminate()
        try:
            process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def wait_listening(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {HOST}:{port}")


# --- a slow pynetdicom Storage SCP -----------------------------------------------------------


@dataclass
class SlowSCP:
    """A pynetdicom Storage SCP on 127.0.0.1 that takes ``delay`` seconds per object."""

    ae_title: str
    port: int
    received: list[str] = field(default_factory=list)


@contextmanager
def slow_store_scp(delay: float, ae_title: str = "SLOWSCP") -> Iterator[SlowSCP]:
    scp = SlowSCP(ae_title, free_port())
    lock = threading.Lock()

    def handle_store(event: Event) -> int:
        time.sleep(delay)
        with lock:
            scp.received.append(str(cast(C_STORE, event.request).AffectedSOPInstanceUID))
        return 0x0000

    ae = AE(ae_title=ae_title)
    ae.supported_contexts = AllStoragePresentationContexts
    server = ae.start_server(
        (HOST, scp.port), block=False, evt_handlers=[(evt.EVT_C_STORE, handle_store)]
    )
    assert server is not None
    try:
        yield scp
    finally:
        server.shutdown()


# --- comparisons ----------------------------------------------------------------------------


def assert_received_as_stored(hospital: Hospital, received: Path) -> None:
    """``received`` holds the archived object exactly: same transfer syntax, and the same
    data set bytes (storescp ``+B`` writes them as they arrived)."""
    ds = pydicom.dcmread(received, stop_before_pixels=True)
    instance, blob = stored_blob(hospital, str(ds.SOPInstanceUID))
    copy = received.parent / f".{received.name}.stored"
    copy.write_bytes(blob)
    try:
        assert ds.file_meta.TransferSyntaxUID == instance.transfer_syntax_uid
        assert data_set_bytes(received) == data_set_bytes(copy)
    finally:
        copy.unlink()


def assert_received_decompressed(hospital: Hospital, received: Path, syntax: UID) -> None:
    """``received`` holds the archived object converted to ``syntax``: every data element the
    same but Pixel Data, and the same pixel values once decoded."""
    got = pydicom.dcmread(received)
    instance, blob = stored_blob(hospital, str(got.SOPInstanceUID))
    copy = received.parent / f".{received.name}.stored"
    copy.write_bytes(blob)
    try:
        stored = pydicom.dcmread(copy)
        assert got.file_meta.TransferSyntaxUID == syntax
        assert UID(instance.transfer_syntax_uid) != syntax
        assert _elements(got) == _elements(stored)
        assert np.array_equal(got.pixel_array, stored.pixel_array)
    finally:
        copy.unlink()


def _elements(ds: Dataset) -> Dataset:
    """A new data set with the elements of ``ds`` but group lengths, Pixel Data and Data Set
    Trailing Padding. (``Dataset(ds)`` would share, and then lose, the elements of ``ds``.)"""
    copy = Dataset()
    for elem in ds:
        if elem.tag.element != 0 and elem.tag not in (0x7FE00010, 0xFFFCFFFC):
            copy.add(elem)
    return copy


def archived_uids(hospital: Hospital) -> set[str]:
    return set(Instance.objects.for_hospital(hospital).values_list("sop_instance_uid", flat=True))
