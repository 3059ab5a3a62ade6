"""Reading frames and bulk data from stored Part 10 files without loading them whole."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate_extended, get_frame
from pydicom.pixels.utils import pack_bits
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from carina.archive.pixels.frames import (
    BulkDataNotFoundError,
    FrameNotFoundError,
    NoFramesError,
    StoredPixels,
    bulk_value,
    parse_tag_path,
)
from carina.core.testing import make_ct_slice, shipped_file


def decoded(name: str) -> list[bytes]:
    ds = pydicom.dcmread(shipped_file(name))
    array = ds.pixel_array
    frames = array if int(ds.get("NumberOfFrames") or 1) > 1 else array[np.newaxis]
    if ds.BitsAllocated == 1:
        return [pack_bits(f, pad=False) for f in frames]
    return [f.astype(f.dtype.newbyteorder("<")).tobytes() for f in frames]


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "emri_small.dcm",
        "emri_small_big_endian.dcm",
        "MR_small_implicit.dcm",
        "image_dfl.dcm",
        "rtdose.dcm",
        "liver.dcm",
        "emri_small_RLE.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
        "examples_ybr_color.dcm",
        "SC_rgb_rle_2frame.dcm",
        "JPGExtended.dcm",
    ],
)
def test_each_frame_decodes_as_pydicom_decodes_the_whole_object(name: str) -> None:
    expected = decoded(name)
    with StoredPixels(shipped_file(name)) as pixels:
        assert pixels.number_of_frames == len(expected)
        assert [pixels.decoded_frame(i) for i in range(len(expected))] == expected
        assert b"".join(pixels.decoded_frames()) == b"".join(expected)


@pytest.mark.parametrize(
    "name", ["emri_small_RLE.dcm", "examples_ybr_color.dcm", "emri_small_jpeg_2k_lossless.dcm"]
)
def test_stored_frames_are_the_compressed_bitstreams(name: str) -> None:
    ds = pydicom.dcmread(shipped_file(name))
    count = int(ds.NumberOfFrames)
    expected = [get_frame(ds.PixelData, i, number_of_frames=count) for i in range(count)]
    with StoredPixels(shipped_file(name)) as pixels:
        assert pixels.encapsulated
        assert [pixels.stored_frame(i) for i in (count - 1, 0)] == [expected[-1], expected[0]]
        assert list(pixels.stored_frames()) == expected


def test_native_frames_are_slices_of_the_value() -> None:
    ds = pydicom.dcmread(shipped_file("emri_small.dcm"))
    with StoredPixels(shipped_file("emri_small.dcm")) as pixels:
        assert not pixels.encapsulated
        assert pixels.frame_length == 64 * 64 * 2
        assert pixels.stored_frame(9) == ds.PixelData[9 * 8192 : 10 * 8192]
        assert b"".join(pixels.native_value()) == ds.PixelData


def test_big_endian_words_are_swapped() -> None:
    little = pydicom.dcmread(shipped_file("emri_small.dcm")).PixelData
    with StoredPixels(shipped_file("emri_small_big_endian.dcm")) as pixels:
        assert pixels.stored_frame(3) == little[3 * 8192 : 4 * 8192]
        assert b"".join(pixels.native_value()) == little


def test_frames_of_one_bit_not_on_a_byte_boundary(tmp_path: Path) -> None:
    """3×3 binary frames take 9 bits each: frame 2 starts in the middle of a byte."""
    frames = np.array([np.eye(3), np.ones((3, 3)), np.zeros((3, 3))], dtype=np.uint8)
    ds = make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0, size=3)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 1, 0
    ds.NumberOfFrames = 3
    ds.PixelData = pack_bits(frames)
    path = tmp_path / "bits.dcm"
    ds.save_as(path, enforce_file_format=True)
    with StoredPixels(path) as pixels:
        assert pixels.frame_length is None
        assert [pixels.decoded_frame(i) for i in range(3)] == [
            pack_bits(f, pad=False) for f in frames
        ]


def test_extended_offset_table(tmp_path: Path) -> None:
    """Frames are found through the Extended Offset Table (PS3.5 A.4) when present."""
    source = pydicom.dcmread(shipped_file("emri_small_RLE.dcm"))
    count = int(source.NumberOfFrames)
    frames = [get_frame(source.PixelData, i, number_of_frames=count) for i in range(count)]
    value, offsets, lengths = encapsulate_extended(frames)
    source.PixelData = value
    source.ExtendedOffsetTable = offsets
    source.ExtendedOffsetTableLengths = lengths
    path = tmp_path / "eot.dcm"
    source.save_as(path, enforce_file_format=True)
    with StoredPixels(path) as pixels:
        assert [pixels.stored_frame(i) for i in range(count)] == frames


def test_a_frame_beyond_the_last_and_an_object_without_pixels() -> None:
    with (
        StoredPixels(shipped_file("emri_small.dcm")) as pixels,
        pytest.raises(FrameNotFoundError, match="frame 11 does not exist: the object has 10 frame"),
    ):
        pixels.stored_frame(10)
    with StoredPixels(shipped_file("test-SR.dcm")) as pixels:
        assert not pixels.has_frames
        with pytest.raises(NoFramesError):
            pixels.decoded_frame(0)


# --- other bulk data ------------------------------------------------------------------------


def _with_bulk(tmp_path: Path, syntax: str = ExplicitVRLittleEndian) -> tuple[Path, Dataset]:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(syntax)
    ds.file_meta.MediaStorageSOPClassUID = UID("1.2.840.10008.5.1.4.1.1.104.1")
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.EncapsulatedDocument = b"%PDF" + bytes(range(256)) * 40
    inner = Dataset()
    inner.add_new(0x00091011, "OB", b"\xab" * 5000)
    ds.ReferencedImageSequence = [Dataset(), inner]
    path = tmp_path / "bulk.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, ds


def test_bulk_values_by_tag_path(tmp_path: Path) -> None:
    path, ds = _with_bulk(tmp_path)
    value = bulk_value(path, parse_tag_path("00420011"))
    assert value.length == len(ds.EncapsulatedDocument)
    assert b"".join(value.chunks) == ds.EncapsulatedDocument
    nested = bulk_value(path, parse_tag_path("00081140/1/00091011"))
    assert b"".join(nested.chunks) == b"\xab" * 5000


@pytest.mark.parametrize(
    "path", ["", "0042001", "00420011/0", "00081140/x/00091011", "zzzzzzzz", "00081140/5/00091011"]
)
def test_a_tag_path_that_names_nothing(tmp_path: Path, path: str) -> None:
    file, _ = _with_bulk(tmp_path)
    with pytest.raises(BulkDataNotFoundError):
        bulk_value(file, parse_tag_path(path))


def test_a_deflated_file_is_read_inflated(tmp_path: Path) -> None:
    path, ds = _with_bulk(tmp_path, "1.2.840.10008.1.2.1.99")
    assert b"".join(bulk_value(path, parse_tag_path("00420011")).chunks) == ds.EncapsulatedDocument
