"""Frames and bulk data of a stored instance, read without loading the whole object.

A stored Part 10 file (PS3.10 7.1) is parsed up to its top-level pixel data element only; the
element's header (PS3.5 7.1.2) gives where its value starts, so that

* a frame of native (uncompressed) pixel data is one slice of the value: frame *i* of a
  multi-frame image is the bytes ``[i × frame length, (i + 1) × frame length)`` (PS3.5 8.1.1),
  returned in little endian byte order (big endian words are swapped);
* a frame of encapsulated (compressed) pixel data is the concatenation of its fragments
  (PS3.5 A.4), found through the Basic or Extended Offset Table, or one fragment per frame,
  or the JPEG end-of-image markers, with pydicom's ``pydicom.encaps.get_frame``;
* a frame can also be *decoded* (decompressed to native little endian bytes, colour as RGB
  with interleaved samples, as pydicom decompresses it), one frame at a time.

Other bulk data elements are found by their tag path (``00420011``, or
``00540016/0/00181072`` inside a sequence item — the BulkDataURI paths the ingest pipeline
writes into each instance's DICOM JSON) and streamed from the file.

Deflated files (PS3.5 A.5) have no random access: they are inflated in memory, one object.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, generate_frames, get_frame, parse_basic_offsets
from pydicom.pixels.utils import iter_pixels, pack_bits, pixel_array
from pydicom.uid import UID

from carina.archive.pixels.transcode import CHUNK_SIZE, VIDEO, WORD_SIZES, swap_words

#: Top-level pixel data elements: Pixel Data, Float Pixel Data, Double Float Pixel Data.
PIXEL_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)
_EXTENDED_OFFSETS = 0x7FE00001
_EXTENDED_LENGTHS = 0x7FE00002
UNDEFINED_LENGTH = 0xFFFFFFFF
#: Explicit VRs with a 4-byte length after 2 reserved bytes (PS3.5 Table 7.1-1).
_LONG_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
)
#: Values up to this size are read with the header; larger ones stay in the file.
_DEFER_SIZE = 4096


class PixelDataError(LookupError):
    """The object has no such frame or bulk data (a reader's mistake: 404), or its pixel
    data cannot be read as its header describes (a damaged object)."""


class NoFramesError(PixelDataError):
    """The object has no top-level pixel data (not an image)."""


class FrameNotFoundError(PixelDataError):
    """A frame number beyond the object's Number of Frames."""


class BulkDataNotFoundError(PixelDataError):
    """No bulk data element at that tag path."""


@dataclass(frozen=True)
class PixelElement:
    """Where the top-level pixel data value sits in the file."""

    tag: int
    vr: str
    #: File offset of the first byte of the value.
    offset: int
    #: Value length; None for undefined length (encapsulated pixel data).
    length: int | None


class StoredPixels:
    """The top-level pixel data of one stored Part 10 file, for reading frames.

    Use as a context manager (it holds the file open)::

        with StoredPixels(path) as pixels:
            jpeg = pixels.stored_frame(0)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fp: IO[bytes] = path.open("rb")
        try:
            self._open()
        except BaseException:
            self._fp.close()
            raise

    def _open(self) -> None:
        header = pydicom.dcmread(self._fp, stop_before_pixels=True, defer_size=_DEFER_SIZE)
        self.transfer_syntax = UID(str(header.file_meta.TransferSyntaxUID).strip())
        self._full: Dataset | None = None
        if self.transfer_syntax.is_deflated:
            # No random access into a deflated stream: inflate this one object in memory.
            self._full = pydicom.dcmread(self.path)
            self.header: Dataset = self._full
            self.element = self._element_in_memory(self._full)
        else:
            self.header = header
            self.element = self._element_at(self._fp.tell(), header)
        self.number_of_frames = _int(self.header.get("NumberOfFrames"), 1) or 1
        self.rows = _int(self.header.get("Rows"), 0)
        self.columns = _int(self.header.get("Columns"), 0)
        self.samples_per_pixel = _int(self.header.get("SamplesPerPixel"), 1)
        self.bits_allocated = _int(self.header.get("BitsAllocated"), 8)

    def __enter__(self) -> StoredPixels:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._fp.close()

    # --- the pixel data element ------------------------------------------------------------

    def _element_at(self, position: int, header: Dataset) -> PixelElement | None:
        """Parse the data element header at ``position`` (PS3.5 7.1.2); None when it is not
        a top-level pixel data element (the object has none)."""
        implicit, little = header.original_encoding
        endian = "<" if little else ">"
        self._fp.seek(position)
        raw_tag = self._fp.read(4)
        if len(raw_tag) < 4:
            return None
        group, number = struct.unpack(f"{endian}HH", raw_tag)
        tag = (group << 16) | number
        if tag not in PIXEL_TAGS:
            return None
        if implicit:
            vr = {0x7FE00008: "OF", 0x7FE00009: "OD"}.get(tag, "OW")
            (length,) = struct.unpack(f"{endian}L", self._fp.read(4))
        else:
            vr = self._fp.read(2).decode("ascii", "replace")
            if vr in _LONG_VRS:
                self._fp.read(2)
                (length,) = struct.unpack(f"{endian}L", self._fp.read(4))
            else:
                (length,) = struct.unpack(f"{endian}H", self._fp.read(2))
        offset = self._fp.tell()
        return PixelElement(tag, vr, offset, None if length == UNDEFINED_LENGTH else length)

    @staticmethod
    def _element_in_memory(ds: Dataset) -> PixelElement | None:
        for tag in PIXEL_TAGS:
            if tag in ds:
                elem = ds[tag]
                value = elem.value or b""
                encapsulated = UID(ds.file_meta.TransferSyntaxUID).is_encapsulated
                return PixelElement(tag, str(elem.VR), 0, None if encapsulated else len(value))
        return None

    @property
    def has_frames(self) -> bool:
        return self.element is not None

    @property
    def encapsulated(self) -> bool:
        return self.element is not None and self.element.length is None

    @property
    def is_video(self) -> bool:
        return self.transfer_syntax in VIDEO

    @property
    def frame_bits(self) -> int:
        return self.rows * self.columns * self.samples_per_pixel * self.bits_allocated

    @property
    def frame_length(self) -> int | None:
        """Bytes per native frame; None when frames are not byte-aligned (1-bit images)."""
        bits = self.frame_bits
        return bits // 8 if bits % 8 == 0 else None

    def _word_size(self) -> int:
        """The unit whose bytes are swapped when reading big endian native pixel data."""
        assert self.element is not None
        if self.element.vr == "OW":
            return max(self.bits_allocated // 8, 1) if self.bits_allocated > 8 else 1
        return WORD_SIZES.get(self.element.vr, 1)

    def _check(self, index: int) -> PixelElement:
        if self.element is None:
            raise NoFramesError("the object has no pixel data")
        if not 0 <= index < self.number_of_frames:
            raise FrameNotFoundError(
                f"frame {index + 1} does not exist: the object has {self.number_of_frames} frame(s)"
            )
        return self.element

    def _read(self, offset: int, length: int) -> bytes:
        if self._full is not None:
            assert self.element is not None
            value: bytes = self._full[self.element.tag].value
            return value[offset : offset + length]
        assert self.element is not None
        self._fp.seek(self.element.offset + offset)
        data = self._fp.read(length)
        if len(data) != length:
            raise PixelDataError("the stored pixel data are shorter than the header says")
        return data

    def _buffer(self) -> IO[bytes]:
        """The file, positioned at the start of the encapsulated value (the Basic Offset
        Table item)."""
        assert self.element is not None
        self._fp.seek(self.element.offset)
        return self._fp

    def _extended_offsets(self) -> tuple[bytes, bytes] | None:
        if _EXTENDED_OFFSETS in self.header and _EXTENDED_LENGTHS in self.header:
            offsets = self.header[_EXTENDED_OFFSETS].value
            lengths = self.header[_EXTENDED_LENGTHS].value
            if offsets and lengths:
                return bytes(offsets), bytes(lengths)
        return None

    # --- frames -----------------------------------------------------------------------------

    def stored_frame(self, index: int) -> bytes:
        """Frame ``index`` (0-based) as stored: the compressed bitstream of an encapsulated
        frame (PS3.18 8.7.3.3.2: without the fragment delimiters), or the native frame in
        little endian byte order."""
        element = self._check(index)
        if element.length is not None:
            return self._native_frame(index, element)
        if self.is_video:
            raise PixelDataError("the frames of a video are one stream; they are not separable")
        try:
            if self._full is not None:
                value: bytes = self._full[element.tag].value
                return get_frame(
                    value,
                    index,
                    number_of_frames=self.number_of_frames,
                    extended_offsets=self._extended_offsets(),
                )
            return get_frame(
                self._buffer(),
                index,
                number_of_frames=self.number_of_frames,
                extended_offsets=self._extended_offsets(),
            )
        except (ValueError, struct.error, EOFError) as exc:
            raise PixelDataError(f"frame {index + 1} cannot be read: {exc}") from exc

    def decoded_frame(self, index: int) -> bytes:
        """Frame ``index`` (0-based) as native little endian bytes, decompressed if needed."""
        element = self._check(index)
        if element.length is not None:
            return self._native_frame(index, element)
        return self._pixels_to_bytes(pixel_array(self._source(), index=index))

    def _native_frame(self, index: int, element: PixelElement) -> bytes:
        length = self.frame_length
        if length is None:  # 1-bit frames not starting on a byte boundary
            return pack_bits(pixel_array(self._source(), index=index), pad=False)
        assert element.length is not None
        if (index + 1) * length > element.length:
            raise PixelDataError(
                f"the stored pixel data hold {element.length} bytes, too few for frame "
                f"{index + 1} of {length} bytes"
            )
        data = self._read(index * length, length)
        return self._little_endian(data)

    def _little_endian(self, data: bytes) -> bytes:
        if self.header.original_encoding[1]:
            return data
        return swap_words(data, self._word_size())

    def _source(self) -> Any:
        return self._full if self._full is not None else self.path

    @staticmethod
    def _pixels_to_bytes(array: np.ndarray[Any, Any]) -> bytes:
        if array.dtype == bool:
            return pack_bits(array, pad=False)
        return array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()

    def stored_frames(self) -> Iterator[bytes]:
        """Every frame as stored (see :meth:`stored_frame`), one at a time."""
        if self.element is None:
            raise NoFramesError("the object has no pixel data")
        if not self.encapsulated:
            for index in range(self.number_of_frames):
                yield self.stored_frame(index)
            return
        if self.is_video:
            raise PixelDataError("the frames of a video are one stream; they are not separable")
        source: Any = (
            self._full[self.element.tag].value if self._full is not None else self._buffer()
        )
        yield from generate_frames(
            source,
            number_of_frames=self.number_of_frames,
            extended_offsets=self._extended_offsets(),
        )

    def decoded_frames(self) -> Iterator[bytes]:
        """Every frame as native little endian bytes, decompressed one at a time."""
        if self.element is None:
            raise NoFramesError("the object has no pixel data")
        if not self.encapsulated:
            yield from self.native_value()
            return
        for array in iter_pixels(self._source()):
            yield self._pixels_to_bytes(array)

    def native_value(self) -> Iterator[bytes]:
        """The whole native pixel data value (all frames) in little endian byte order, in
        chunks."""
        element = self.element
        if element is None:
            raise NoFramesError("the object has no pixel data")
        if element.length is None:
            raise PixelDataError("the pixel data are encapsulated")
        word = 8  # chunks hold whole words whatever their size
        chunk = CHUNK_SIZE - CHUNK_SIZE % word
        for start in range(0, element.length, chunk):
            yield self._little_endian(self._read(start, min(chunk, element.length - start)))

    def video_stream(self) -> Iterator[bytes]:
        """The compressed stream of a video (PS3.5 8.2.5–8.2.8): every fragment, in order."""
        element = self.element
        if element is None or element.length is not None:
            raise PixelDataError("the pixel data are not encapsulated")
        buffer: IO[bytes] = (
            BytesIO(self._full[element.tag].value) if self._full is not None else self._buffer()
        )
        parse_basic_offsets(buffer)
        yield from generate_fragments(buffer)


def _int(value: object, default: int) -> int:
    try:
        if isinstance(value, list | tuple):
            value = value[0]
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, IndexError):
        return default


# --- other bulk data ------------------------------------------------------------------------


def parse_tag_path(path: str) -> list[int]:
    """``00540016/0/00181072`` → ``[0x00540016, 0, 0x00181072]``: tags (8 hex digits) at
    even positions, item indexes (from 0) between them; raise BulkDataNotFoundError for any
    other shape."""
    parts = path.strip("/").split("/")
    if len(parts) % 2 != 1:
        raise BulkDataNotFoundError(f"{path!r} is not a tag path")
    result: list[int] = []
    for position, part in enumerate(parts):
        if position % 2 == 0:
            if len(part) != 8 or any(c not in "0123456789abcdefABCDEF" for c in part):
                raise BulkDataNotFoundError(f"{part!r} in {path!r} is not a tag")
            result.append(int(part, 16))
        else:
            if not part.isdigit():
                raise BulkDataNotFoundError(f"{part!r} in {path!r} is not an item number")
            result.append(int(part))
    return result


@dataclass
class BulkValue:
    """One bulk data value: its length and its bytes, little endian, in chunks."""

    length: int
    chunks: Iterator[bytes]


def bulk_value(file: Path, tag_path: list[int]) -> BulkValue:
    """The value of the element at ``tag_path`` in the Part 10 file ``file``, in little
    endian byte order (uncompressed bulk data, PS3.18 8.7.3.3.1). A large value of a little
    endian file is streamed from the file; others are read into memory."""
    first_tag = tag_path[0]
    with file.open("rb") as probe:
        meta = pydicom.filereader.read_preamble(probe, False)  # noqa: F841 (validates DICM)
    ds = pydicom.dcmread(
        file,
        defer_size=_DEFER_SIZE,
        stop_before_pixels=first_tag < PIXEL_TAGS[1],
    )
    syntax = UID(str(ds.file_meta.TransferSyntaxUID).strip())
    if syntax.is_deflated:
        ds = pydicom.dcmread(file)  # offsets refer to the inflated stream: read it whole
    item: Dataset = ds
    for position in range(0, len(tag_path) - 1, 2):
        tag, index = tag_path[position], tag_path[position + 1]
        if tag not in item:
            raise BulkDataNotFoundError(f"no element ({tag >> 16:04X},{tag & 0xFFFF:04X})")
        sequence = item[tag]
        if sequence.VR != "SQ" or index >= len(sequence.value or []):
            raise BulkDataNotFoundError(f"no item {index} in ({tag >> 16:04X},{tag & 0xFFFF:04X})")
        item = sequence.value[index]
    tag = tag_path[-1]
    raw = item.get_item(tag)
    if raw is None:
        raise BulkDataNotFoundError(f"no element ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    _implicit, little = ds.original_encoding
    vr = str(raw.VR or "UN")
    if (
        isinstance(raw, RawDataElement)
        and raw.value is None
        and raw.length != UNDEFINED_LENGTH
        and little
        and not syntax.is_deflated
    ):
        return BulkValue(raw.length, _file_chunks(file, raw.value_tell, raw.length))
    value = item[tag].value
    if value is None:
        value = b""
    if not isinstance(value, bytes | bytearray):
        raise BulkDataNotFoundError(
            f"({tag >> 16:04X},{tag & 0xFFFF:04X}) holds no binary value (VR {vr})"
        )
    data = bytes(value)
    if not little:
        data = swap_words(data, WORD_SIZES.get(vr, 1))
    return BulkValue(len(data), iter([data]))


def _file_chunks(file: Path, offset: int, length: int) -> Iterator[bytes]:
    with file.open("rb") as handle:
        handle.seek(offset)
        remaining = length
        while remaining:
            data = handle.read(min(CHUNK_SIZE, remaining))
            if not data:
                raise PixelDataError("the stored object is shorter than its header says")
            remaining -= len(data)
            yield data
