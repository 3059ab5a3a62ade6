"""Transcoding stored objects: which syntaxes can be produced, and the conversion itself."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from carina.archive.pixels.transcode import (
    ImagePixels,
    can_convert,
    converted_file,
    instance_chunks,
    local_file,
    producible,
)
from carina.archive.storage import get_storage
from carina.core.testing import shipped_file

EXPLICIT = "1.2.840.10008.1.2.1"
IMPLICIT = "1.2.840.10008.1.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"
JPEG_LS = "1.2.840.10008.1.2.4.80"

MONO16 = ImagePixels(1, "MONOCHROME2", 16, 12, 0)
YBR8 = ImagePixels(3, "YBR_FULL_422", 8, 8, 0)


def test_what_a_native_image_can_be_turned_into() -> None:
    assert producible(EXPLICIT, MONO16) == [EXPLICIT, IMPLICIT, DEFLATED, BIG, RLE, J2K_LOSSLESS]


def test_nothing_is_encoded_lossy_or_without_an_encoder() -> None:
    assert not can_convert(EXPLICIT, JPEG_BASELINE, MONO16)
    assert not can_convert(EXPLICIT, JPEG_LS, MONO16)  # no JPEG-LS encoder installed
    assert not can_convert(EXPLICIT, "1.2.3.4", MONO16)


def test_a_lossy_image_decompresses_and_recompresses_losslessly() -> None:
    """A JPEG in YCbCr decodes to RGB, which RLE and JPEG 2000 Lossless can hold."""
    assert can_convert(JPEG_BASELINE, EXPLICIT, YBR8)
    assert can_convert(JPEG_BASELINE, RLE, YBR8)
    assert can_convert(JPEG_BASELINE, J2K_LOSSLESS, YBR8)


def test_objects_without_pixels_go_uncompressed_only() -> None:
    assert producible(EXPLICIT, None) == [EXPLICIT, IMPLICIT, DEFLATED, BIG]


def test_encoder_limits() -> None:
    too_deep = ImagePixels(3, "RGB", 64, 64, 0)  # 24 RLE segments: more than 15
    assert not can_convert(EXPLICIT, RLE, too_deep)
    assert not can_convert(EXPLICIT, J2K_LOSSLESS, ImagePixels(1, "MONOCHROME2", 32, 32, 0))
    assert not can_convert("1.2.840.10008.1.2.4.92", EXPLICIT, MONO16)  # no J2K part 2 decoder


def test_pixels_from_dicom_json() -> None:
    metadata = {
        "00280002": {"vr": "US", "Value": [3]},
        "00280004": {"vr": "CS", "Value": ["YBR_FULL_422"]},
        "00280100": {"vr": "US", "Value": [8]},
        "00280101": {"vr": "US", "Value": [8]},
        "00280103": {"vr": "US", "Value": [0]},
        "7FE00010": {"vr": "OB", "BulkDataURI": "7FE00010"},
    }
    assert ImagePixels.from_json(metadata) == YBR8
    assert YBR8.decoded() == ImagePixels(3, "RGB", 8, 8, 0)
    assert ImagePixels.from_json({"00080016": {"vr": "UI", "Value": ["1.2"]}}) is None


@pytest.mark.parametrize(
    ("name", "target"),
    [
        ("MR_small_bigendian.dcm", EXPLICIT),
        ("MR_small_RLE.dcm", J2K_LOSSLESS),
        ("SC_rgb_jpeg_dcmtk.dcm", RLE),
        ("image_dfl.dcm", IMPLICIT),
        ("CT_small.dcm", DEFLATED),
    ],
)
def test_converted_files_keep_the_pixels(name: str, target: str) -> None:
    path = shipped_file(name)
    with converted_file(path, UID(target)) as handle:
        ds = pydicom.dcmread(handle)
    original = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == target
    assert ds.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(ds.pixel_array, original.pixel_array)


def test_instance_chunks_stream_the_blob_as_stored_or_converted(tmp_path: Path) -> None:
    source = shipped_file("MR_small_RLE.dcm")
    staged = tmp_path / "staged.dcm"
    staged.write_bytes(source.read_bytes())
    get_storage().put("test/one.dcm", staged)
    assert b"".join(instance_chunks("test/one.dcm", RLE, RLE)) == source.read_bytes()
    converted = b"".join(instance_chunks("test/one.dcm", RLE, EXPLICIT))
    ds = pydicom.dcmread(io.BytesIO(converted))
    assert ds.file_meta.TransferSyntaxUID == EXPLICIT
    assert np.array_equal(ds.pixel_array, pydicom.dcmread(source).pixel_array)


def test_a_stream_without_a_file_is_copied_and_the_copy_removed() -> None:
    with local_file(io.BytesIO(b"content")) as path:
        assert path.read_bytes() == b"content"
    assert not path.exists()
