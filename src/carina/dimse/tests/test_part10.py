"""The File Meta Information Carina writes in front of a received data set is what pydicom's
writer gives (PS3.10 7.1), and the spooled data set is found behind pynetdicom's own meta."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian
from pynetdicom.dsutils import split_dataset

from carina.core.testing import write_series
from carina.dimse.conformance import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from carina.dimse.part10 import data_set_offset, file_meta_bytes, part10_stream


def pydicom_meta(sop_class: str, sop_instance: str, syntax: str, source_ae: str) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(syntax)
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    meta.SourceApplicationEntityTitle = source_ae
    out = DicomBytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, meta, enforce_standard=True)
    return out.getvalue()


@pytest.mark.parametrize(
    ("sop_class", "sop_instance", "syntax", "source_ae"),
    [
        ("1.2.840.10008.5.1.4.1.1.2", "1.2.3.4", "1.2.840.10008.1.2.1", "CTSCANNER"),
        ("1.2.840.10008.5.1.4.1.1.4", "1.2.3.45", "1.2.840.10008.1.2.4.50", "MR1"),
        ("1.2.840.10008.5.1.4.1.1.7", "1.2.3.456", "1.2.840.10008.1.2", "AB"),
    ],
)
def test_the_file_meta_is_the_one_pydicom_writes(
    sop_class: str, sop_instance: str, syntax: str, source_ae: str
) -> None:
    ours = file_meta_bytes(
        sop_class=sop_class, sop_instance=sop_instance, transfer_syntax=syntax, source_ae=source_ae
    )
    assert ours == pydicom_meta(sop_class, sop_instance, syntax, source_ae)


def test_the_data_set_is_found_behind_any_file_meta(tmp_path: Path) -> None:
    (path,) = write_series(tmp_path / "in", 1)
    assert data_set_offset(path) == split_dataset(path)[1]
    # A meta group without its group length (some writers leave it out): pynetdicom's parser.
    raw = path.read_bytes()
    offset = data_set_offset(path)
    no_length = tmp_path / "no-length.dcm"
    no_length.write_bytes(raw[:132] + raw[144:])
    assert data_set_offset(no_length) == offset - 12


def test_the_stream_is_a_file_pydicom_reads_with_the_data_set_untouched(tmp_path: Path) -> None:
    (path,) = write_series(tmp_path / "in", 1)
    original = pydicom.dcmread(path)
    out = tmp_path / "out.dcm"
    with part10_stream(
        path,
        sop_class=original.SOPClassUID,
        sop_instance=original.SOPInstanceUID,
        transfer_syntax=ExplicitVRLittleEndian,
        source_ae="CTSCANNER",
    ) as stream:
        out.write_bytes(stream.read(100) + stream.read(-1))
    copy = pydicom.dcmread(out)
    assert copy.file_meta.SourceApplicationEntityTitle == "CTSCANNER"
    assert out.read_bytes()[data_set_offset(out) :] == path.read_bytes()[data_set_offset(path) :]
    assert copy.PixelData == original.PixelData
