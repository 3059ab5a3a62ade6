"""A DICOMDIR for the files of a ZIP download (PS3.10 8, PS3.3 Annex F "Basic Directory
Information Object Definition"), built one instance at a time while the files stream.

The directory records are pydicom's: ``pydicom.fileset.DIRECTORY_RECORDERS`` makes the
PATIENT, STUDY, SERIES and leaf (IMAGE, SR DOCUMENT, PRESENTATION, …) records from each
instance's data set, as ``pydicom.fileset.FileSet`` does. The tree and the file itself are
written here, because ``FileSet`` is quadratic in the number of instances (every ``add`` scans
all instances and all siblings; measured with pydicom 3.0: 2,000 instances of one series take
about a minute) — too slow for a CT study. Here each ``add`` is constant time, and the
DICOMDIR is encoded once at the end: the record items are laid out, their offsets computed
(PS3.3 F.3.2.1: offsets count from the first byte of the file), and written.

A File ID (PS3.10 8.2) is known as soon as an instance is added
(``PT000000/ST000000/SE000001/IM000042``), so the ZIP can stream each file under its final
name before the DICOMDIR, which is the archive's last entry, exists.

Directory records need some Type 1 values that an object may lack (StudyID, SeriesNumber,
InstanceNumber, …). They are filled in the record only — never in the files — from the
archive's index or invented (as DCMTK's ``dcmmkdir --invent`` does); docs/api.md lists them.
An instance whose leaf record still cannot be made (a structured report without its
CompletionFlag, say) gets a PRIVATE record (PS3.3 F.5.18) so that its file is still listed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import pydicom.fileset
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    ExplicitVRLittleEndian,
    MediaStorageDirectoryStorage,
    generate_uid,
)

#: Record types of the four-level hierarchy, in order (PS3.3 F.4).
LEVELS = ("PATIENT", "STUDY", "SERIES")
#: File ID component prefixes of each level (8 characters in all, PS3.10 8.2).
PREFIXES = {"PATIENT": "PT", "STUDY": "ST", "SERIES": "SE", "LEAF": "IM"}
#: The most children one record can have with six-digit File ID components.
MAX_CHILDREN = 1_000_000
#: Identifies Carina's PRIVATE records (PS3.3 F.5.18, Private Record UID).
PRIVATE_RECORD_UID = generate_uid(entropy_srcs=["carina", "dicomdir", "private-record"])

_ITEM = struct.pack("<HH", 0xFFFE, 0xE000)
_SEQUENCE_END = struct.pack("<HHL", 0xFFFE, 0xE0DD, 0)
#: (0004,1220) Directory Record Sequence, explicit VR little endian, undefined length.
_SEQUENCE_START = struct.pack("<HH", 0x0004, 0x1220) + b"SQ\x00\x00" + b"\xff\xff\xff\xff"
#: Where the offsets sit in an encoded record (explicit VR LE): the record starts with
#: (0004,1400) UL, (0004,1410) US, (0004,1420) UL — the lowest tags a record holds.
_NEXT_AT = 8
_LOWER_AT = 30


class DicomdirError(ValueError):
    """An instance cannot be listed (the message says why)."""


@dataclass
class _Record:
    encoded: bytearray
    children: list[int] = field(default_factory=list)


def _empty(ds: Dataset, keyword: str) -> bool:
    return keyword not in ds or ds[keyword].VM == 0


def leaf_type(ds: Dataset) -> str:
    """pydicom's choice of the leaf record type for ``ds`` (IMAGE when it has none)."""
    chooser = getattr(pydicom.fileset, "_four_level_record_type", None)
    return str(chooser(ds)) if chooser is not None else "IMAGE"


def _encode(record: Dataset) -> bytearray:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, record)
    encoded = bytearray(fp.getvalue())
    if encoded[:4] != b"\x04\x00\x00\x14" or encoded[22:26] != b"\x04\x00\x20\x14":
        raise DicomdirError("a directory record does not start with its offsets")
    return encoded


def _record(record_type: str, content: Dataset, ds: Dataset) -> Dataset:
    record = Dataset()
    record.OffsetOfTheNextDirectoryRecord = 0
    record.RecordInUseFlag = 0xFFFF
    record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    record.DirectoryRecordType = record_type
    if "SpecificCharacterSet" in ds:
        record.SpecificCharacterSet = ds.SpecificCharacterSet
    for element in content:
        record.add(element)
    return record


class DicomdirBuilder:
    """Collects the records of the instances added, in the order they are added."""

    def __init__(self, file_set_id: str = "CARINA") -> None:
        self.file_set_id = file_set_id
        self.file_set_uid = generate_uid()
        self._records: list[_Record] = []
        self._roots: list[int] = []
        #: (level, key) → record index, for PATIENT (PatientID), STUDY and SERIES (UIDs).
        self._index: dict[tuple[str, str, str], int] = {}
        #: record index → its File ID component.
        self._names: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self._records)

    def _child(self, parent: int | None, record: Dataset, prefix: str) -> int:
        siblings = self._roots if parent is None else self._records[parent].children
        if len(siblings) >= MAX_CHILDREN:
            raise DicomdirError(f"more than {MAX_CHILDREN - 1} entries in one directory")
        index = len(self._records)
        self._records.append(_Record(_encode(record)))
        self._names[index] = f"{prefix}{len(siblings):06d}"
        siblings.append(index)
        return index

    def add(self, ds: Dataset, defaults: dict[str, Any] | None = None) -> list[str]:
        """List the instance ``ds`` (its data set, at least the attributes the records need,
        with ``file_meta.TransferSyntaxUID``) and return its File ID components.

        ``defaults`` fill Type 1 record values the data set lacks or leaves empty
        (``{"StudyID": "1", …}``); ``ds`` is changed accordingly.
        """
        for keyword, value in (defaults or {}).items():
            if _empty(ds, keyword):
                setattr(ds, keyword, value)
        for keyword in ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            if _empty(ds, keyword):
                raise DicomdirError(f"the instance has no {keyword}")
        keys = {
            "PATIENT": str(ds.PatientID),
            "STUDY": str(ds.StudyInstanceUID),
            "SERIES": str(ds.SeriesInstanceUID),
        }
        chain: list[int] = []
        for level in LEVELS:
            parent = chain[-1] if chain else None
            key = (level, str(parent), keys[level])
            found = self._index.get(key)
            if found is None:
                try:
                    content = pydicom.fileset.DIRECTORY_RECORDERS[level](ds)
                except ValueError as exc:
                    raise DicomdirError(f"no {level} record: {exc}") from None
                found = self._child(parent, _record(level, content, ds), PREFIXES[level])
                self._index[key] = found
            chain.append(found)
        series = chain[-1]
        leaf = self._leaf(ds)
        file_id = [self._names[i] for i in chain]
        file_id.append(f"{PREFIXES['LEAF']}{len(self._records[series].children):06d}")
        leaf.ReferencedFileID = file_id
        leaf.ReferencedSOPClassUIDInFile = ds.SOPClassUID
        leaf.ReferencedSOPInstanceUIDInFile = ds.SOPInstanceUID
        leaf.ReferencedTransferSyntaxUIDInFile = ds.file_meta.TransferSyntaxUID
        self._child(series, leaf, PREFIXES["LEAF"])
        return file_id

    def _leaf(self, ds: Dataset) -> Dataset:
        record_type = leaf_type(ds)
        try:
            content = pydicom.fileset.DIRECTORY_RECORDERS[record_type](ds)
        except (ValueError, KeyError, AttributeError):
            content = Dataset()
            content.PrivateRecordUID = PRIVATE_RECORD_UID
            record_type = "PRIVATE"
        return _record(record_type, content, ds)

    def encode(self) -> bytes:
        """The DICOMDIR file (PS3.10 7: preamble, DICM, File Meta Information; PS3.3 F.3:
        the Basic Directory IOD) for the instances added so far."""
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
        meta.MediaStorageSOPInstanceUID = self.file_set_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        fp = DicomBytesIO()
        fp.is_little_endian = True
        fp.is_implicit_VR = False
        fp.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(fp, meta, enforce_standard=True)
        head = Dataset()
        head.FileSetID = self.file_set_id
        head.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = 0
        head.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = 0
        head.FileSetConsistencyFlag = 0
        head_at = fp.tell()
        write_dataset(fp, head)
        prefix = bytearray(fp.getvalue())

        # Lay the items out: each is (FFFE,E000), its length, the record.
        offsets = []
        position = len(prefix) + len(_SEQUENCE_START)
        for record in self._records:
            offsets.append(position)
            position += 8 + len(record.encoded)
        for record in self._records:
            if record.children:
                first = offsets[record.children[0]]
                record.encoded[_LOWER_AT : _LOWER_AT + 4] = struct.pack("<L", first)
            for sibling, following in zip(record.children, record.children[1:], strict=False):
                self._records[sibling].encoded[_NEXT_AT : _NEXT_AT + 4] = struct.pack(
                    "<L", offsets[following]
                )
        for sibling, following in zip(self._roots, self._roots[1:], strict=False):
            self._records[sibling].encoded[_NEXT_AT : _NEXT_AT + 4] = struct.pack(
                "<L", offsets[following]
            )
        if self._roots:
            for tag, value in (
                (b"\x04\x00\x00\x12UL", self._roots[0]),
                (b"\x04\x00\x02\x12UL", self._roots[-1]),
            ):
                at = prefix.index(tag, head_at) + 8
                prefix[at : at + 4] = struct.pack("<L", offsets[value])

        parts = [bytes(prefix), _SEQUENCE_START]
        for record in self._records:
            parts.append(_ITEM + struct.pack("<L", len(record.encoded)))
            parts.append(bytes(record.encoded))
        parts.append(_SEQUENCE_END)
        return b"".join(parts)


__all__ = ["DicomdirBuilder", "DicomdirError"]
