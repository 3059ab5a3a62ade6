"""A received C-STORE data set as a DICOM Part 10 file, without re-parsing or re-encoding it.

pynetdicom spools the data set of each C-STORE exactly as received, behind a file meta of its
own. Carina keeps the data set bytes untouched and puts its own File Meta Information in front
(PS3.10 7.1): its implementation identity, and the sender's AE title as Source Application
Entity Title. Both steps run once per object on the listener's hot path, so the group is
encoded here directly (PS3.5 7.1.2, Explicit VR Little Endian) instead of through pydicom's
general writer, and the spooled meta is skipped by its group length.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

from pynetdicom.dsutils import split_dataset

from carina.dimse.conformance import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME

PREAMBLE = b"\x00" * 128 + b"DICM"
#: (0002,0000) File Meta Information Group Length, VR UL, length 4 (PS3.10 Table 7.1-1).
_GROUP_LENGTH_HEADER = struct.pack("<HH2sH", 0x0002, 0x0000, b"UL", 4)


def _element(element: int, vr: bytes, value: bytes) -> bytes:
    """One group 0002 element with a 2-byte length (every VR used here but OB)."""
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _padded(text: str, pad: bytes) -> bytes:
    value = text.encode("ascii", "replace")
    return value + pad if len(value) % 2 else value


def file_meta_bytes(
    *, sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str
) -> bytes:
    """The preamble, prefix and File Meta Information group of a Part 10 file (PS3.10 7.1),
    as pydicom's ``write_file_meta_info`` writes them with Carina's implementation identity."""
    body = b"".join(
        [
            # (0002,0001) File Meta Information Version, OB: reserved bytes, 4-byte length.
            struct.pack("<HH2s2xI", 0x0002, 0x0001, b"OB", 2) + b"\x00\x01",
            _element(0x0002, b"UI", _padded(sop_class, b"\x00")),
            _element(0x0003, b"UI", _padded(sop_instance, b"\x00")),
            _element(0x0010, b"UI", _padded(transfer_syntax, b"\x00")),
            _element(0x0012, b"UI", _padded(IMPLEMENTATION_CLASS_UID, b"\x00")),
            _element(0x0013, b"SH", _padded(IMPLEMENTATION_VERSION_NAME, b" ")),
            _element(0x0016, b"AE", _padded(source_ae, b" ")),
        ]
    )
    return PREAMBLE + _GROUP_LENGTH_HEADER + struct.pack("<I", len(body)) + body


def _seek_data_set(handle: BinaryIO, path: Path) -> int:
    """Move ``handle`` (open on ``path``, at its start) to where the data set starts, and
    return that offset: after the preamble and the file meta group, whose length the group's
    first element gives (pynetdicom writes it so). A file that does not start that way is read
    by pynetdicom's own parser instead."""
    head = handle.read(len(PREAMBLE) + 12)
    if head[:132] == PREAMBLE and head[132:140] == _GROUP_LENGTH_HEADER:
        (length,) = struct.unpack("<I", head[140:144])
        offset = len(PREAMBLE) + 12 + int(length)
    else:
        offset = int(split_dataset(path)[1])
    handle.seek(offset)
    return offset


def data_set_offset(path: Path) -> int:
    """Where the data set starts in a file that pynetdicom spooled (:func:`_seek_data_set`)."""
    with path.open("rb") as handle:
        return _seek_data_set(handle, path)


class _Part10Reader:
    """Reads the new file meta, then the data set bytes of the spool file."""

    def __init__(self, header: bytes, body: BinaryIO) -> None:
        self._header = header
        self._body = body

    def read(self, size: int = -1) -> bytes:
        if self._header:
            header, self._header = self._header, b""
            rest = -1 if size < 0 else max(0, size - len(header))
            return header + (self._body.read(rest) if rest else b"")
        return self._body.read(size)


@contextmanager
def part10_stream(
    dataset_path: Path, *, sop_class: str, sop_instance: str, transfer_syntax: str, source_ae: str
) -> Iterator[BinaryIO]:
    """The received data set as a DICOM Part 10 file, streamed from the spool file."""
    header = file_meta_bytes(
        sop_class=sop_class,
        sop_instance=sop_instance,
        transfer_syntax=transfer_syntax,
        source_ae=source_ae,
    )
    with dataset_path.open("rb") as body:
        _seek_data_set(body, dataset_path)
        yield cast(BinaryIO, _Part10Reader(header, body))
