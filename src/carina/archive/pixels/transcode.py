"""Transcoding a stored object to another transfer syntax (PS3.5 Annex A, 8 and 10).

Carina keeps every object in the transfer syntax it was received in. When a reader needs
another one — a DICOM peer that did not accept the stored syntax (C-MOVE, C-GET), or a
DICOMweb client asking for ``transfer-syntax=<uid>`` — the object is converted here, one
instance at a time:

* to an uncompressed syntax (Explicit VR Little Endian, Implicit VR Little Endian, Deflated
  Explicit VR Little Endian, Explicit VR Big Endian): compressed pixel data are decompressed
  with pydicom and its pylibjpeg plugins (JPEG baseline, extended and lossless, JPEG-LS,
  JPEG 2000, RLE), big endian words are swapped, and the data set is re-encoded;
* for an image, to a lossless compressed syntax pydicom can encode (RLE Lossless; JPEG 2000
  Lossless with pylibjpeg-openjpeg), after decompressing.

Nothing is ever encoded into a lossy syntax: a lossy stored object can only be sent as stored
or decompressed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, BinaryIO

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.encoders.base import ENCODING_PROFILES, get_encoder
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    MPEGTransferSyntaxes,
    RLELossless,
)

from carina.archive.storage import get_storage

#: Uncompressed syntaxes Carina converts to, in its order of preference.
UNCOMPRESSED_FALLBACK: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
)
#: Lossless compressed syntaxes Carina converts images to when pydicom has an encoder.
LOSSLESS_FALLBACK: tuple[UID, ...] = (RLELossless, JPEG2000Lossless)

#: Syntaxes whose pixel data went through lossy compression (PS3.5 Annex A): Carina returns
#: them as stored when a DICOMweb client states no transfer syntax (PS3.18 8.7.3.4).
LOSSY: frozenset[str] = frozenset(
    {
        "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
        "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
        "1.2.840.10008.1.2.4.81",  # JPEG-LS Lossy (Near-Lossless)
        "1.2.840.10008.1.2.4.91",  # JPEG 2000 Image Compression
        "1.2.840.10008.1.2.4.93",  # JPEG 2000 Part 2 Multi-component
        "1.2.840.10008.1.2.4.203",  # High-Throughput JPEG 2000
        "1.2.840.10008.1.2.4.141",  # JPEG XL JPEG Recompression
        "1.2.840.10008.1.2.4.142",  # JPEG XL
        *MPEGTransferSyntaxes,  # MPEG-2, MPEG-4 AVC/H.264, HEVC/H.265 video
    }
)
#: Video syntaxes: the pixel data are one compressed stream, not separate frames.
VIDEO: frozenset[str] = frozenset(MPEGTransferSyntaxes)

#: Word size of the VRs whose values are byte-swapped between big and little endian.
WORD_SIZES = {"OW": 2, "OL": 4, "OF": 4, "OD": 8, "OV": 8}
_PIXEL_DATA = 0x7FE00010
CHUNK_SIZE = 1 << 20
#: A converted object is kept in memory up to this size, then in a temporary file.
SPOOL_SIZE = 16 << 20


# --- what can be produced ----------------------------------------------------------------


@functools.cache
def can_encode(syntax: UID) -> bool:
    """Whether pydicom has a usable encoder for ``syntax``."""
    try:
        return bool(get_encoder(syntax).is_available)
    except (NotImplementedError, ValueError):
        return False


@functools.cache
def can_decode(syntax: str) -> bool:
    """Whether pydicom can decode pixel data stored in ``syntax`` (always for uncompressed)."""
    uid = UID(syntax)
    if not uid.is_compressed:
        return True
    try:
        return bool(get_decoder(uid).is_available)
    except (NotImplementedError, ValueError):
        return False


def can_send_any(syntax: str) -> bool:
    """Whether Carina can send every object in ``syntax``: an uncompressed syntax, or a
    lossless one pydicom can encode."""
    uid = UID(syntax)
    return uid in UNCOMPRESSED_FALLBACK or (uid in LOSSLESS_FALLBACK and can_encode(uid))


def is_lossy(syntax: str) -> bool:
    return syntax in LOSSY


@dataclass(frozen=True)
class ImagePixels:
    """The Image Pixel module attributes (PS3.3 C.7.6.3) that decide which encoders fit."""

    samples_per_pixel: int
    photometric_interpretation: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int

    @classmethod
    def from_json(cls, metadata: Mapping[str, Any]) -> ImagePixels | None:
        """From an instance's DICOM JSON (PS3.18 F.2); None for an object without pixels."""
        if not any(tag in metadata for tag in ("7FE00010", "7FE00008", "7FE00009")):
            return None

        def first(tag: str, default: Any) -> Any:
            values = (metadata.get(tag) or {}).get("Value") or [default]
            return values[0] if values[0] is not None else default

        try:
            return cls(
                samples_per_pixel=int(first("00280002", 1)),
                photometric_interpretation=str(first("00280004", "MONOCHROME2")).strip(),
                bits_allocated=int(first("00280100", 16)),
                bits_stored=int(first("00280101", first("00280100", 16))),
                pixel_representation=int(first("00280103", 0)),
            )
        except (TypeError, ValueError):
            return None

    def decoded(self) -> ImagePixels:
        """The attributes after pydicom decompresses the pixel data: YCbCr becomes RGB."""
        if self.samples_per_pixel == 3 and self.photometric_interpretation.startswith("YBR"):
            return ImagePixels(
                3, "RGB", self.bits_allocated, self.bits_stored, self.pixel_representation
            )
        return self


def _fits_encoder(target: UID, pixels: ImagePixels) -> bool:
    """Whether pydicom can encode pixel data described by ``pixels`` into ``target``."""
    if not can_encode(target):
        return False
    if target == RLELossless:
        # PS3.5 G.2: one segment per byte of each sample, at most 15 segments.
        bytes_per_sample = pixels.bits_allocated // 8
        return (
            pixels.bits_allocated % 8 == 0
            and pixels.samples_per_pixel in (1, 3)
            and 0 < bytes_per_sample * pixels.samples_per_pixel <= 15
        )
    if target == JPEG2000Lossless and pixels.bits_stored > 24:
        return False  # pylibjpeg-openjpeg encodes up to 24 bits per sample
    for pi, spp, representations, allocated, stored in ENCODING_PROFILES.get(target, []):
        if (
            pixels.photometric_interpretation == pi
            and pixels.samples_per_pixel == spp
            and pixels.pixel_representation in representations
            and pixels.bits_allocated in allocated
            and pixels.bits_stored in stored
        ):
            return True
    return target not in ENCODING_PROFILES


def can_convert(stored: str, target: str, pixels: ImagePixels | None) -> bool:
    """Whether :func:`convert` turns an object stored in ``stored`` into ``target``.

    ``pixels`` describes the object's pixel data, None when it has none. Any object converts
    to an uncompressed syntax when its pixel data (if compressed) can be decoded; an image
    converts to RLE Lossless or JPEG 2000 Lossless when pydicom has an encoder that fits it.
    """
    source, wanted = UID(stored), UID(target)
    if source == wanted:
        return True
    if pixels is not None and source.is_compressed and not can_decode(source):
        return False
    if source in VIDEO:
        return False
    if wanted in UNCOMPRESSED_FALLBACK:
        return True
    if wanted not in LOSSLESS_FALLBACK or pixels is None:
        return False
    return _fits_encoder(wanted, pixels.decoded() if source.is_compressed else pixels)


def producible(stored: str, pixels: ImagePixels | None) -> list[str]:
    """Every transfer syntax Carina can produce for an object: the stored one first."""
    candidates = [stored, *UNCOMPRESSED_FALLBACK, *LOSSLESS_FALLBACK]
    return [s for s in dict.fromkeys(candidates) if can_convert(stored, s, pixels)]


# --- converting ----------------------------------------------------------------------------


def convert(ds: Dataset, target: UID) -> None:
    """Convert a data set read from a file to transfer syntax ``target`` in place: decompress
    compressed pixel data (pydicom's decoders), swap big endian words, compress into a lossless
    ``target``. The file meta's Transfer Syntax UID is set to ``target``."""
    source = UID(ds.file_meta.TransferSyntaxUID)
    if source.is_compressed and "PixelData" in ds:
        ds.decompress(generate_instance_uid=False)
    elif not source.is_little_endian:
        to_little_endian(ds)
    if target.is_compressed and "PixelData" in ds:
        ds.compress(target, generate_instance_uid=False)
    ds.file_meta.TransferSyntaxUID = target


def to_little_endian(ds: Dataset) -> None:
    """Swap the bytes of OW/OL/OF/OD/OV values read from a big endian data set. Other values
    are decoded by pydicom and re-encoded in the target byte order when written. Pixel Data
    words are BitsAllocated wide (as pydicom reads them)."""
    bits = int(ds.get("BitsAllocated", 16) or 16)
    for elem in ds.iterall():
        size = WORD_SIZES.get(str(elem.VR))
        if size is None or not isinstance(elem.value, bytes) or not elem.value:
            continue
        if elem.tag == _PIXEL_DATA:
            size = bits // 8
        if size > 1 and len(elem.value) % size == 0:
            elem.value = swap_words(elem.value, size)


def swap_words(data: bytes, size: int) -> bytes:
    """``data`` with the byte order of each ``size``-byte word reversed."""
    if size <= 1:
        return data
    return np.frombuffer(data, dtype=f">u{size}").astype(f"<u{size}").tobytes()


def write_converted(path: Path, target: UID) -> Path:
    """A new temporary Part 10 file with the object of ``path`` in transfer syntax ``target``
    (the caller removes it)."""
    ds = pydicom.dcmread(path)
    convert(ds, target)
    with tempfile.NamedTemporaryFile(prefix="send", suffix=".dcm", delete=False) as handle:
        try:
            dcmwrite(handle, ds, enforce_file_format=True)
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise
    return Path(handle.name)


def converted_file(path: Path, target: UID) -> IO[bytes]:
    """The object of ``path`` as a Part 10 file in ``target``, in a spooled temporary file
    (in memory up to 16 MiB) positioned at its start; the caller closes it."""
    ds = pydicom.dcmread(path)
    convert(ds, target)
    out = tempfile.SpooledTemporaryFile(max_size=SPOOL_SIZE, prefix="carina-ts")  # noqa: SIM115
    try:
        dcmwrite(out, ds, enforce_file_format=True)
    except BaseException:
        out.close()
        raise
    del ds
    out.seek(0)
    return out


@contextlib.contextmanager
def local_file(handle: BinaryIO) -> Iterator[Path]:
    """A path to the content of an open blob: the file itself for folder storage, else a
    temporary copy (object storage streams), removed afterwards."""
    name = getattr(handle, "name", None)
    if isinstance(name, str) and os.path.isfile(name):
        yield Path(name)
        return
    with tempfile.NamedTemporaryFile(prefix="carina-blob", suffix=".dcm", delete=False) as copy:
        shutil.copyfileobj(handle, copy, CHUNK_SIZE)
    try:
        yield Path(copy.name)
    finally:
        Path(copy.name).unlink(missing_ok=True)


@contextlib.contextmanager
def blob_path(key: str) -> Iterator[Path]:
    """The stored blob ``key`` as a local file (see :func:`local_file`)."""
    with contextlib.closing(get_storage().open(key)) as handle, local_file(handle) as path:
        yield path


def read_chunks(handle: IO[bytes], size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The content of ``handle`` in chunks of at most ``size`` bytes."""
    while chunk := handle.read(size):
        yield chunk


def instance_chunks(blob_key: str, stored: str, target: str) -> Iterator[bytes]:
    """The Part 10 file of a stored object in transfer syntax ``target``, in chunks: the blob
    itself when ``target`` is the stored syntax (never wholly in memory), else converted (one
    object in memory at a time)."""
    if target == stored:
        with contextlib.closing(get_storage().open(blob_key)) as handle:
            yield from read_chunks(handle)
        return
    with blob_path(blob_key) as path:
        converted = converted_file(path, UID(target))
    with converted:
        yield from read_chunks(converted)
