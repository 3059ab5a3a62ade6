"""Study and series downloads as a ZIP archive, streamed: a DICOM file-set (PS3.10 8) with
the stored files, byte for byte, under File IDs (``PT000000/ST000000/SE000000/IM000000``) and
a DICOMDIR (PS3.3 Annex F) as the archive's last entry.

Streamed means that the first bytes leave before the archive exists, and memory does not
grow with the study: Python's :mod:`zipfile` writes to a sink that cannot seek, so each entry
gets a data descriptor after its bytes (APPNOTE 4.3.9) and the central directory comes last;
whatever the ZIP writer has produced is handed to the web server after each chunk of a file.
The DICOMDIR's records are collected while the files go out (a few hundred bytes per
instance) and encoded at the end (:mod:`carina.api.dicomdir`). Entries are deflated at the
fastest level: uncompressed pixel data shrinks, and the CPU stays free. ZIP64 is used for
entries and archives beyond 4 GiB.
"""

from __future__ import annotations

import datetime as dt
import logging
import zipfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from django.db.models import F, QuerySet
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID

from carina.api.dicomdir import DicomdirBuilder, DicomdirError, leaf_type
from carina.archive.models import Instance
from carina.archive.storage import get_storage
from carina.tenancy.models import Hospital

logger = logging.getLogger(__name__)

#: Bytes read from the blob store at a time.
CHUNK = 1 << 20
#: Instances whose metadata is read from the database at a time.
BATCH = 200
COMPRESSION = zipfile.ZIP_DEFLATED
COMPRESS_LEVEL = 1

#: Tags (DICOM JSON keys) a directory record of the four-level hierarchy reads: PATIENT,
#: STUDY, SERIES and IMAGE records (PS3.3 F.5), and what picks the leaf record type.
RECORD_TAGS = frozenset(
    {
        "00080005",  # SpecificCharacterSet
        "00080016",  # SOPClassUID
        "00080018",  # SOPInstanceUID
        "00080020",  # StudyDate
        "00080030",  # StudyTime
        "00080050",  # AccessionNumber
        "00080060",  # Modality
        "00081030",  # StudyDescription
        "00100010",  # PatientName
        "00100020",  # PatientID
        "0020000D",  # StudyInstanceUID
        "0020000E",  # SeriesInstanceUID
        "00200010",  # StudyID
        "00200011",  # SeriesNumber
        "00200013",  # InstanceNumber
    }
)
#: Tags whose presence makes pydicom choose a leaf record other than IMAGE.
OTHER_LEAF_TAGS = frozenset({"00420011", "300A0002"})  # EncapsulatedDocument, RTPlanLabel


@dataclass(frozen=True)
class ZipSource:
    """What to download: the instances (scoped to a hospital), and for the audit trail the
    UID of the study or series and its Patient ID."""

    uid: str
    patient_id: str
    instances: QuerySet[Instance]


def archive_name(level: str, uid: str) -> str:
    return f"{level}-{uid}.zip"


class _Sink:
    """A write-only, non-seekable target: :mod:`zipfile` writes into it, the response takes
    what accumulated."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def write(self, data: bytes, /) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _without_bulk(data_set: dict[str, Any]) -> dict[str, Any]:
    result = {}
    for tag, element in data_set.items():
        if not isinstance(element, dict) or "BulkDataURI" in element:
            continue
        if element.get("vr") == "SQ" and element.get("Value"):
            element = {
                "vr": "SQ",
                "Value": [_without_bulk(i) for i in element["Value"] if isinstance(i, dict)],
            }
        result[tag] = element
    return result


def _dataset(data_set: dict[str, Any], transfer_syntax_uid: str) -> Dataset:
    ds = Dataset.from_json(_without_bulk(data_set))
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(transfer_syntax_uid)
    return ds


def record_dataset(metadata: dict[str, Any], transfer_syntax_uid: str) -> Dataset:
    """The part of an instance's data set its directory records need, from its stored DICOM
    JSON: the few attributes of the PATIENT, STUDY, SERIES and IMAGE records, or the whole
    data set (less bulk data) when the leaf record is of another type (SR DOCUMENT,
    PRESENTATION, …), whose attributes vary."""
    ds = _dataset({t: metadata[t] for t in RECORD_TAGS if t in metadata}, transfer_syntax_uid)
    if OTHER_LEAF_TAGS & metadata.keys() or leaf_type(ds) != "IMAGE":
        ds = _dataset(metadata, transfer_syntax_uid)
    return ds


def _index_dataset(row: Instance) -> Dataset:
    """A data set for the records made from the index alone (metadata unreadable)."""
    ds = Dataset()
    ds.SOPClassUID = row.sop_class_uid
    ds.SOPInstanceUID = row.sop_instance_uid
    ds.StudyInstanceUID = row.series.study.study_instance_uid
    ds.SeriesInstanceUID = row.series.series_instance_uid
    ds.PatientID = row.series.study.patient.patient_id
    ds.PatientName = row.series.study.patient.patient_name
    ds.Modality = row.series.modality
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = UID(row.transfer_syntax_uid)
    return ds


def _defaults(row: Instance, series_ordinal: int, instance_ordinal: int) -> dict[str, Any]:
    """Values for the Type 1 record attributes the object lacks: the archive's index first,
    else invented (docs/api.md, "ZIP downloads")."""
    series = row.series
    study = series.study
    received = study.received_at.astimezone(dt.UTC)
    return {
        "PatientID": study.patient.patient_id or "UNKNOWN",
        "StudyDate": (study.study_date or received.date()).strftime("%Y%m%d"),
        "StudyTime": (study.study_time or received.time()).strftime("%H%M%S"),
        "StudyID": study.study_id or "1",
        "Modality": series.modality or "OT",
        "SeriesNumber": series.series_number
        if series.series_number is not None
        else series_ordinal,
        "InstanceNumber": row.instance_number
        if row.instance_number is not None
        else instance_ordinal,
    }


def _ordered(instances: QuerySet[Instance]) -> list[int]:
    return list(
        instances.order_by(
            F("series__series_number").asc(nulls_last=True),
            "series_id",
            F("instance_number").asc(nulls_last=True),
            "pk",
        ).values_list("pk", flat=True)
    )


def _rows(hospital: Hospital, keys: list[int]) -> Iterator[Instance]:
    for start in range(0, len(keys), BATCH):
        batch = keys[start : start + BATCH]
        found = {
            row.pk: row
            for row in Instance.objects.for_hospital(hospital)
            .filter(pk__in=batch)
            .select_related("series", "series__study", "series__study__patient")
        }
        for key in batch:
            if key in found:  # deleted meanwhile: left out
                yield found[key]


def _date_time(moment: dt.datetime) -> tuple[int, int, int, int, int, int]:
    t = moment.astimezone(dt.UTC)
    return (max(t.year, 1980), t.month, t.day, t.hour, t.minute, t.second)


def stream_zip_with_dicomdir(
    hospital: Hospital,
    source: ZipSource,
    *,
    finished: Callable[[int, bool], None] | None = None,
) -> Generator[bytes, None, None]:
    """The ZIP archive of ``source``'s instances, in chunks. ``finished(sent, complete)`` is
    called once at the end, also when the client goes away (``complete`` false)."""
    keys = _ordered(source.instances)
    sink = _Sink()
    builder = DicomdirBuilder()
    storage = get_storage()
    sent = 0
    complete = False
    series_seen: dict[int, int] = {}
    per_series: dict[int, int] = {}
    try:
        with zipfile.ZipFile(
            sink, mode="w", compression=COMPRESSION, compresslevel=COMPRESS_LEVEL
        ) as archive:
            for row in _rows(hospital, keys):
                series_ordinal = series_seen.setdefault(row.series_id, len(series_seen) + 1)
                per_series[row.series_id] = per_series.get(row.series_id, 0) + 1
                defaults = _defaults(row, series_ordinal, per_series[row.series_id])
                try:
                    ds = record_dataset(row.metadata, row.transfer_syntax_uid)
                    file_id = builder.add(ds, defaults)
                except (DicomdirError, ValueError, TypeError, KeyError) as exc:
                    logger.warning(
                        "DICOMDIR record of %s from the index: %s", row.sop_instance_uid, exc
                    )
                    file_id = builder.add(_index_dataset(row), defaults)
                info = zipfile.ZipInfo("/".join(file_id), date_time=_date_time(row.received_at))
                info.compress_type = COMPRESSION
                info.file_size = row.size_bytes
                with (
                    closing(storage.open(row.blob_key)) as blob,
                    archive.open(info, mode="w") as entry,
                ):
                    while chunk := blob.read(CHUNK):
                        entry.write(chunk)
                        if out := sink.take():
                            yield out
                sent += 1
                if out := sink.take():
                    yield out
            dicomdir = builder.encode()
            info = zipfile.ZipInfo("DICOMDIR", date_time=_date_time(dt.datetime.now(dt.UTC)))
            info.compress_type = COMPRESSION
            archive.writestr(info, dicomdir)
        yield sink.take()
        complete = True
    finally:
        if finished is not None:
            finished(sent, complete)


__all__ = ["ZipSource", "archive_name", "record_dataset", "stream_zip_with_dicomdir"]
