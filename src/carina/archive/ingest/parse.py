"""Read a staged Part 10 file's header into the attributes the archive indexes.

The file is parsed with values larger than the bulk-data threshold deferred, so that pixel data
and large private values are never loaded into memory (PS3.10 7.1 file format, PS3.5 7.1 data
elements). The DICOM JSON kept per instance (PS3.18 F.2) is computed here too, with bulk data
replaced by BulkDataURI references.
"""

from __future__ import annotations

import datetime as dt
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from carina.archive.ingest.errors import NotDicomError

#: Binary VRs whose long values are bulk data (PS3.18 F.2.6).
BULK_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
#: Pixel data elements are always bulk data, whatever their size.
PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
UNDEFINED_LENGTH = 0xFFFFFFFF


@dataclass
class ParsedObject:
    """What the pipeline needs from one object's header."""

    transfer_syntax_uid: str
    sop_class_uid: str
    sop_instance_uid: str
    study_instance_uid: str
    series_instance_uid: str
    patient: dict[str, Any]
    study: dict[str, Any]
    series: dict[str, Any]
    instance: dict[str, Any]
    metadata: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def read_header(path: Path, name: str, bulk_threshold: int) -> Dataset:
    """Parse a Part 10 file, deferring large values; raise NotDicomError with the reason."""
    size = path.stat().st_size
    if size == 0:
        raise NotDicomError(name, "the file is empty")
    try:
        ds = pydicom.dcmread(path, defer_size=bulk_threshold)
    except InvalidDicomError:
        raise NotDicomError(
            name,
            "not a DICOM Part 10 file: the 128-byte preamble and 'DICM' prefix of the file "
            "meta information header are missing (PS3.10 7.1)",
        ) from None
    except (
        EOFError,
        struct.error,
        OSError,
        ValueError,
        TypeError,
        KeyError,
        NotImplementedError,
    ) as exc:
        raise NotDicomError(name, f"the file cannot be parsed: {_reason(exc)}") from None
    if "TransferSyntaxUID" not in ds.file_meta:
        raise NotDicomError(
            name, "the file meta information has no Transfer Syntax UID (0002,0010) (PS3.10 7.1)"
        )
    if ds.file_meta.TransferSyntaxUID != DeflatedExplicitVRLittleEndian:
        # A deflated data set is inflated in memory by pydicom: a truncated stream fails to
        # inflate above, and offsets are relative to the inflated bytes.
        _check_complete(ds, size, name)
    return ds


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:300]


def _check_complete(ds: Dataset, size: int, name: str) -> None:
    """Raise if a deferred value runs past the end of the file (a truncated file)."""
    for elem in ds._dict.values():
        if (
            isinstance(elem, RawDataElement)
            and elem.length != UNDEFINED_LENGTH
            and elem.value_tell + elem.length > size
        ):
            raise NotDicomError(
                name,
                f"the file is truncated: element ({elem.tag.group:04X},{elem.tag.elem:04X}) "
                f"needs {elem.length} bytes at offset {elem.value_tell}, the file has {size}",
            )


def _text(ds: Dataset, keyword: str, max_length: int) -> str:
    try:
        value = ds.get(keyword)
    except Exception:
        return ""
    if value is None:
        return ""
    if isinstance(value, pydicom.multival.MultiValue):
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return text.replace("\x00", "").strip()[:max_length]


def _date(ds: Dataset, keyword: str) -> dt.date | None:
    text = _text(ds, keyword, 32)
    if len(text) >= 8 and text[:8].isdigit():
        try:
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:8]))
        except ValueError:
            return None
    return None


def _time(ds: Dataset, keyword: str) -> dt.time | None:
    text = _text(ds, keyword, 32).replace(":", "")
    digits = text.split(".")[0]
    if not digits.isdigit() or len(digits) < 2:
        return None
    try:
        hour = int(digits[0:2])
        minute = int(digits[2:4]) if len(digits) >= 4 else 0
        second = min(int(digits[4:6]), 59) if len(digits) >= 6 else 0
        micro = 0
        if "." in text:
            frac = text.split(".", 1)[1][:6]
            micro = int(frac.ljust(6, "0")) if frac.isdigit() else 0
        return dt.time(hour, minute, second, micro)
    except ValueError:
        return None


def _int(ds: Dataset, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        if value is None or value == "":
            return None
        if isinstance(value, pydicom.multival.MultiValue):
            value = value[0]
        number = int(value)
    except Exception:
        return None
    return number if -(2**31) <= number < 2**31 else None


def extract(ds: Dataset, bulk_threshold: int) -> ParsedObject:
    """The indexed attributes and the DICOM JSON of a parsed data set."""
    modality = _text(ds, "Modality", 16)
    return ParsedObject(
        transfer_syntax_uid=str(ds.file_meta.TransferSyntaxUID).strip(),
        sop_class_uid=_text(ds, "SOPClassUID", 128),
        sop_instance_uid=_text(ds, "SOPInstanceUID", 128),
        study_instance_uid=_text(ds, "StudyInstanceUID", 128),
        series_instance_uid=_text(ds, "SeriesInstanceUID", 128),
        patient={
            "patient_id": _text(ds, "PatientID", 64),
            "issuer_of_patient_id": _text(ds, "IssuerOfPatientID", 64),
            "patient_name": _text(ds, "PatientName", 324),
            "patient_birth_date": _date(ds, "PatientBirthDate"),
            "patient_sex": _text(ds, "PatientSex", 16),
        },
        study={
            "study_date": _date(ds, "StudyDate"),
            "study_time": _time(ds, "StudyTime"),
            "accession_number": _text(ds, "AccessionNumber", 16),
            "study_id": _text(ds, "StudyID", 16),
            "study_description": _text(ds, "StudyDescription", 64),
            "referring_physician_name": _text(ds, "ReferringPhysicianName", 324),
        },
        series={
            "modality": modality,
            "series_number": _int(ds, "SeriesNumber"),
            "series_description": _text(ds, "SeriesDescription", 64),
            "body_part_examined": _text(ds, "BodyPartExamined", 16),
            "series_date": _date(ds, "SeriesDate"),
        },
        instance={
            "instance_number": _int(ds, "InstanceNumber"),
            "rows": _positive(_int(ds, "Rows")),
            "columns": _positive(_int(ds, "Columns")),
            "number_of_frames": _positive(_int(ds, "NumberOfFrames")),
        },
        metadata=dataset_to_json(ds, bulk_threshold),
    )


def _positive(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


def dataset_to_json(ds: Dataset, bulk_threshold: int, path: str = "") -> dict[str, Any]:
    """The DICOM JSON model (PS3.18 F.2) of ``ds`` without bulk data.

    Pixel data, and binary values longer than ``bulk_threshold`` bytes, become
    ``{"vr": VR, "BulkDataURI": PATH}`` where PATH is the element's tag path inside the
    instance (``7FE00010``, or ``00540016/0/00091001`` inside a sequence item). DICOMweb
    turns PATH into an absolute URL. Values are never read for such elements.
    """
    result: dict[str, Any] = {}
    for tag in ds.keys():  # noqa: SIM118 (iterating a Dataset yields elements, not tags)
        tag = BaseTag(tag)
        key = f"{tag:08X}"
        element_path = f"{path}/{key}" if path else key
        raw = ds.get_item(tag)
        if raw is None:
            continue
        vr = str(raw.VR) if raw.VR else "UN"
        if _is_bulk(raw, tag, vr, bulk_threshold):
            result[key] = {"vr": vr, "BulkDataURI": element_path}
            continue
        try:
            elem = ds[tag]
        except Exception:
            result[key] = {"vr": vr}
            continue
        if elem.VR == "SQ":
            items = [
                dataset_to_json(item, bulk_threshold, f"{element_path}/{index}")
                for index, item in enumerate(elem.value or [])
            ]
            result[key] = {"vr": "SQ", "Value": items} if items else {"vr": "SQ"}
            continue
        try:
            result[key] = _without_nul(
                elem.to_json_dict(
                    bulk_data_element_handler=None, bulk_data_threshold=bulk_threshold
                )
            )
        except Exception:
            result[key] = {"vr": str(elem.VR)}
    return result


def _without_nul(value: Any) -> Any:
    """Drop NUL characters from text values: padding some writers leave, which PostgreSQL's
    jsonb cannot hold."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    return value


def _is_bulk(raw: DataElement | RawDataElement, tag: int, vr: str, threshold: int) -> bool:
    if tag in PIXEL_TAGS:
        return True
    if vr not in BULK_VRS:
        return False
    if isinstance(raw, RawDataElement):
        return raw.length == UNDEFINED_LENGTH or raw.length > threshold
    value = raw.value
    return isinstance(value, bytes | bytearray) and len(value) > threshold
