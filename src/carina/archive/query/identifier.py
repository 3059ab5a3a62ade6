"""A :class:`QuerySpec` from a C-FIND request identifier (PS3.4 C.4.1.1.3.1).

Every element of the identifier is a key: with a value it is a matching key, without one a
return key. Values of the VRs a Specific Character Set (0008,0005) applies to (PN, LO, SH,
ST, LT, UC, UT) are decoded by pydicom in the identifier's character set; other VRs hold
only the default repertoire and are read from their raw bytes, so a malformed number or
date is reported by the query engine with its attribute named, not lost in a conversion.
"""

from __future__ import annotations

from typing import Any

from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from carina.archive.query.errors import (
    IdentifierMismatchError,
    QueryError,
    UndecodableIdentifierError,
)
from carina.archive.query.levels import InformationModel
from carina.archive.query.spec import QuerySpec

#: VRs whose values are encoded in the Specific Character Set (PS3.5 6.1.2.3).
CHARSET_VRS = frozenset({"SH", "LO", "ST", "PN", "LT", "UC", "UT"})
#: VRs whose values are not text: they can be returned but not matched.
BINARY_VRS = frozenset(
    {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "SQ", "AT", "FL", "FD", "SL", "SS", "SV", "UV"}
)
QUERY_RETRIEVE_LEVEL = 0x00080052
SPECIFIC_CHARACTER_SET = 0x00080005
UNDEFINED_LENGTH = 0xFFFFFFFF


def spec_from_identifier(identifier: Dataset, model: InformationModel) -> QuerySpec:
    """The query a C-FIND identifier asks for, in ``model`` (Patient Root or Study Root).

    Raises :class:`UndecodableIdentifierError` if the identifier cannot be read,
    :class:`IdentifierMismatchError` if its level or unique keys do not fit the model,
    :class:`InvalidValueError` for a value that cannot be matched.
    """
    try:
        level, keys, sequences, vrs, unsupported = _read(identifier)
    except QueryError:
        raise
    except Exception as exc:
        raise UndecodableIdentifierError(
            f"the identifier cannot be decoded: {type(exc).__name__}: {exc}"[:300]
        ) from None
    return QuerySpec(
        level,
        keys,
        model=model,
        sequences=sequences,
        vrs=vrs,
        unsupported=unsupported,
    )


def _read(
    identifier: Dataset,
) -> tuple[str, dict[str, str], dict[str, tuple[str, ...]], dict[str, str], set[str]]:
    level = ""
    keys: dict[str, str] = {}
    sequences: dict[str, tuple[str, ...]] = {}
    vrs: dict[str, str] = {}
    unsupported: set[str] = set()
    for base_tag in list(identifier.keys()):
        tag = int(base_tag)
        if tag >> 16 in (0x0000, 0x0002) or tag & 0xFFFF == 0 or tag == SPECIFIC_CHARACTER_SET:
            continue
        _check_complete(identifier, tag)
        vr = _vr(identifier, tag)
        key = _key(tag)
        if tag == QUERY_RETRIEVE_LEVEL:
            level = _text(identifier, tag, vr)
            continue
        if vr == "SQ":
            items = identifier[tag].value
            requested: list[str] = []
            if isinstance(items, Sequence) and len(items):
                for element in items[0]:
                    requested.append(_key(int(element.tag)))
                    if not _is_empty(element):
                        unsupported.add(key)  # Sequence Matching is not offered
            sequences[key] = tuple(requested)
            keys[key] = ""
            vrs[key] = "SQ"
            continue
        if vr in BINARY_VRS:
            raw = identifier.get_item(tag)
            if raw is not None and raw.value not in (None, b"", ""):
                unsupported.add(key)
            keys[key] = ""
        else:
            keys[key] = _text(identifier, tag, vr)
        vrs[key] = vr
    if not level.strip():
        raise IdentifierMismatchError(
            "QueryRetrieveLevel (0008,0052) is missing or empty; give PATIENT, STUDY, "
            "SERIES or IMAGE",
            "QueryRetrieveLevel",
        )
    return level, keys, sequences, vrs, unsupported


def _check_complete(identifier: Dataset, tag: int) -> None:
    """Refuse an element whose value is shorter than its length says (a cut identifier,
    which pydicom reads leniently)."""
    raw = identifier.get_item(tag)
    if (
        isinstance(raw, RawDataElement)
        and raw.length != UNDEFINED_LENGTH
        and isinstance(raw.value, bytes)
        and len(raw.value) < raw.length
    ):
        raise UndecodableIdentifierError(
            f"the identifier is truncated: element ({tag >> 16:04X},{tag & 0xFFFF:04X}) "
            f"announces {raw.length} bytes, {len(raw.value)} follow",
            _key(tag),
        )


def _key(tag: int) -> str:
    return keyword_for_tag(tag) or f"{tag:08X}"


def _vr(identifier: Dataset, tag: int) -> str:
    raw = identifier.get_item(tag)
    if raw is not None and raw.VR:
        return str(raw.VR)
    try:
        return str(dictionary_VR(tag))
    except KeyError:
        return "UN"


def _text(identifier: Dataset, tag: int, vr: str) -> str:
    """The value of a text element as one string (values joined by backslashes)."""
    raw = identifier.get_item(tag)
    if isinstance(raw, RawDataElement) and vr not in CHARSET_VRS:
        data = raw.value or b""
        text = data.decode("latin-1") if isinstance(data, bytes) else str(data)
        return text.replace("\x00", "").strip()
    value: Any = identifier[tag].value
    if value is None:
        return ""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join("" if v is None else str(v) for v in value).strip()
    if isinstance(value, bytes):
        return value.decode("latin-1").strip()
    return str(value).replace("\x00", "").strip()


def _is_empty(element: DataElement | RawDataElement) -> bool:
    value = element.value
    if value is None:
        return True
    if isinstance(value, Sequence):
        return all(all(_is_empty(e) for e in item) for item in value)
    if isinstance(value, bytes):
        return not value.strip(b" \x00")
    return not str(value).strip()
