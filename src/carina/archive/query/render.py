"""Query results as a C-FIND response identifier (a pydicom Dataset) or as DICOM JSON
(PS3.18 F.2) for QIDO-RS.

Each answer carries exactly the keys asked for (PS3.4 C.4.1.1.3.2): with the archive's
value, or zero-length when the entity has no value or the archive does not keep the
attribute at that level. Text is UTF-8: a Dataset whose values are not all ASCII carries
Specific Character Set ``ISO_IR 192``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import PersonName

from carina.archive.query.attributes import attribute_at, tag_of, vr_of
from carina.archive.query.levels import Level
from carina.archive.query.spec import QuerySpec

UTF8 = "ISO_IR 192"
#: VRs whose values are numbers in DICOM JSON and in pydicom.
_NUMBER_VRS = frozenset({"IS", "US", "UL", "SS", "SL", "UV", "SV"})
#: VRs whose values are strings in DICOM JSON.
_TEXT_VRS = frozenset(
    {"AE", "AS", "CS", "DA", "DT", "LO", "LT", "SH", "ST", "TM", "UC", "UI", "UR", "UT"}
)


@dataclass
class Match:
    """One entity that matched: its level, primary key, the values of the indexed keys
    asked for (keyword → column value: text, number, date, time, list, or None), and at
    IMAGE level the instance's stored DICOM JSON, when keys not indexed were asked for."""

    level: Level
    pk: int
    values: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] | None = None


def dicom_value(vr: str, value: Any) -> Any:
    """A column value as pydicom takes it for ``vr``: dates ``YYYYMMDD``, times
    ``HHMMSS[.FFFFFF]``, several values (backslash-joined in the index) as a list."""
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    if isinstance(value, dt.time):
        text = value.strftime("%H%M%S")
        return f"{text}.{value.microsecond:06d}" if value.microsecond else text
    if isinstance(value, list | tuple):
        return [dicom_value(vr, v) for v in value] or None
    if vr in _NUMBER_VRS:
        return int(value)
    if isinstance(value, str) and "\\" in value:
        return value.split("\\")
    return value


def _from_metadata(spec: QuerySpec, key: str, entry: dict[str, Any]) -> dict[str, Any]:
    """A stored DICOM JSON element, with sequence items cut down to the keys requested
    inside the request's item (all of them when the request's sequence was empty)."""
    wanted = spec.sequences.get(key)
    if entry.get("vr") != "SQ" or not wanted or "Value" not in entry:
        return entry
    tags = {f"{tag_of(k):08X}" for k in wanted}
    items = [{t: v for t, v in item.items() if t in tags} for item in entry["Value"]]
    return {"vr": "SQ", "Value": items}


def _element(spec: QuerySpec, match: Match, key: str, retrieve_ae_title: str | None) -> Any:
    """(vr, value) from the index, or a DICOM JSON entry from the instance metadata."""
    if key == "RetrieveAETitle":
        return ("AE", retrieve_ae_title)
    attribute = attribute_at(key, spec.level)
    if attribute is not None:
        if attribute.constant is not None:
            return (attribute.vr, attribute.constant)
        return (attribute.vr, dicom_value(attribute.vr, match.values.get(key)))
    tag = f"{tag_of(key):08X}"
    vr = spec.vrs.get(key) or vr_of(key)
    if match.metadata is not None and tag in match.metadata:
        return _from_metadata(spec, key, match.metadata[tag])
    return (vr, None)


def to_dataset(spec: QuerySpec, match: Match, *, retrieve_ae_title: str | None = None) -> Dataset:
    """The C-FIND response identifier for ``match``: Query/Retrieve Level, every key
    requested, and Specific Character Set when a value is not ASCII."""
    ds = Dataset()
    ds.QueryRetrieveLevel = spec.level.value
    for key in spec.return_keys:
        if key == "SpecificCharacterSet":
            continue
        tag = tag_of(key)
        found = _element(spec, match, key, retrieve_ae_title)
        if isinstance(found, dict):
            ds.add(_element_from_json(tag, found, spec.vrs.get(key) or vr_of(key)))
            continue
        vr, value = found
        if vr == "SQ":
            ds.add_new(tag, "SQ", [])
        else:
            ds.add_new(tag, vr, value)
    if _needs_utf8(ds):
        ds.SpecificCharacterSet = UTF8
    return ds


def _element_from_json(tag: int, entry: dict[str, Any], vr: str) -> DataElement:
    """A data element from its DICOM JSON; bulk data (a BulkDataURI) comes back empty."""
    if "BulkDataURI" in entry or "InlineBinary" in entry:
        return DataElement(tag, entry.get("vr", vr), None)
    try:
        return Dataset.from_json({f"{tag:08X}": entry})[tag]
    except Exception:
        return DataElement(tag, entry.get("vr", vr), None)


def _fast_json(vr: str, value: Any) -> dict[str, Any] | None:
    """The DICOM JSON (PS3.18 F.2) of an index value for the common cases — no value, text,
    integers, single-group person names — without building a pydicom element (ten times
    faster; QIDO renders thousands). ``None`` when pydicom must do it (other VRs, person
    names with ideographic or phonetic groups, lists with empty values)."""
    if vr == "SQ":
        return {"vr": "SQ", "Value": []}
    if value is None:
        return {"vr": vr}
    values = value if isinstance(value, list) else [value]
    if any(v is None or v == "" for v in values):
        return None
    if vr == "PN":
        if any("=" in str(v) for v in values):
            return None
        return {"vr": vr, "Value": [{"Alphabetic": str(v)} for v in values]}
    if vr in _NUMBER_VRS:
        return {"vr": vr, "Value": [int(v) for v in values]}
    if vr in _TEXT_VRS:
        return {"vr": vr, "Value": [str(v) for v in values]}
    return None


def to_json(
    spec: QuerySpec, match: Match, *, retrieve_ae_title: str | None = None
) -> dict[str, Any]:
    """The DICOM JSON (PS3.18 F.2) of ``match``: every key requested, ``{"vr": VR}`` alone
    for a zero-length one. Values from the instance metadata are copied as stored
    (a BulkDataURI holds the element's tag path inside the instance)."""
    result: dict[str, Any] = {}
    plain = Dataset()
    for key in spec.return_keys:
        if key == "SpecificCharacterSet":
            continue
        tag = tag_of(key)
        found = _element(spec, match, key, retrieve_ae_title)
        if isinstance(found, dict):
            result[f"{tag:08X}"] = found
            continue
        vr, value = found
        fast = _fast_json(vr, value)
        if fast is not None:
            result[f"{tag:08X}"] = fast
            continue
        plain.add_new(tag, vr, [] if vr == "SQ" else value)
    result.update(plain.to_json_dict())
    return dict(sorted(result.items()))


def _needs_utf8(ds: Dataset) -> bool:
    for element in ds.iterall():
        value = element.value
        values = value if isinstance(value, MultiValue | list) else [value]
        for v in values:
            if isinstance(v, Sequence):
                continue
            if isinstance(v, PersonName | str) and not str(v).isascii():
                return True
    return False
