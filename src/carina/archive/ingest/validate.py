"""Checks an object must pass before it is stored (PS3.5 9.1 UIDs, PS3.5 10 transfer syntaxes,
PS3.4 B.4.1 the SOP Class/Instance identify the object)."""

from __future__ import annotations

from pydicom.uid import UID

from carina.archive.ingest.errors import (
    InvalidUIDError,
    MissingAttributeError,
    UnknownTransferSyntaxError,
)
from carina.archive.ingest.parse import ParsedObject

_REQUIRED_UIDS = [
    ("SOPClassUID", "(0008,0016)", "sop_class_uid"),
    ("SOPInstanceUID", "(0008,0018)", "sop_instance_uid"),
    ("StudyInstanceUID", "(0020,000D)", "study_instance_uid"),
    ("SeriesInstanceUID", "(0020,000E)", "series_instance_uid"),
]


def is_valid_uid(value: str) -> bool:
    """PS3.5 9.1: 1–64 characters, components of digits without leading zeros, dot-separated."""
    return bool(value) and UID(value).is_valid


def is_known_transfer_syntax(uid: str) -> bool:
    """The transfer syntax is a standard one pydicom knows (PS3.6 Annex A)."""
    try:
        return bool(UID(uid).is_transfer_syntax)
    except ValueError:
        return False


def validate(parsed: ParsedObject, name: str) -> None:
    """Raise the IngestError that says what is wrong with ``parsed``, if anything."""
    for keyword, tag, attr in _REQUIRED_UIDS:
        value: str = getattr(parsed, attr)
        if not value:
            raise MissingAttributeError(name, f"{keyword} {tag} is missing or empty")
        if not is_valid_uid(value):
            raise InvalidUIDError(
                name,
                f"{keyword} {tag} {value[:80]!r} is not a valid UID (digits and dots, "
                "no leading zeros, at most 64 characters; PS3.5 9.1)",
            )
    ts = parsed.transfer_syntax_uid
    if not is_valid_uid(ts) or not is_known_transfer_syntax(ts):
        raise UnknownTransferSyntaxError(
            name, f"transfer syntax {ts[:80]!r} is not a known DICOM transfer syntax"
        )
