"""Ingest errors: each carries its DIMSE status (PS3.4 B.2.3, PS3.7 C), its HTTP status
(PS3.18 10.5.3) and a sentence that names the object and the reason.

Carina's specific failure codes sit in the ranges PS3.4 B.2.3 reserves for each meaning
(A7xx out of resources, A9xx data set does not match SOP class, Cxxx cannot understand); the
conformance statement lists them.
"""

from __future__ import annotations


class IngestError(Exception):
    """An object was not stored. Nothing of it is left behind."""

    #: DIMSE C-STORE status (PS3.4 Table B.2-1).
    dimse_status: int = 0xC000
    #: HTTP status for STOW-RS and the REST API.
    http_status: int = 400

    def __init__(self, name: str, reason: str) -> None:
        self.name = name
        self.reason = reason
        super().__init__(f"{name}: {reason}")

    @property
    def message(self) -> str:
        """The sentence for a person: which object, and why."""
        return str(self)


class NotDicomError(IngestError):
    """Not a DICOM Part 10 file, unreadable, empty or truncated (Cannot understand)."""

    dimse_status = 0xC000


class MissingAttributeError(IngestError):
    """A required attribute (SOP Class/Instance, Study, Series UID) is absent or empty."""

    dimse_status = 0xC001


class InvalidUIDError(IngestError):
    """A UID does not follow PS3.5 9.1 (digits and dots, at most 64 characters)."""

    dimse_status = 0xC002


class UnknownTransferSyntaxError(IngestError):
    """The file's transfer syntax is not one Carina knows (PS3.5 10, PS3.6 Annex A)."""

    dimse_status = 0xC003
    http_status = 415


class SOPClassMismatchError(IngestError):
    """The data set's SOP Class differs from the one negotiated or announced."""

    dimse_status = 0xA900
    http_status = 409


class DuplicateConflictError(IngestError):
    """Same SOP Instance UID as a stored object, different bytes, and the policy is reject."""

    dimse_status = 0xC010
    http_status = 409


class HierarchyConflictError(IngestError):
    """The object's study belongs to another patient, or its series to another study."""

    dimse_status = 0xC011
    http_status = 409


class StorageUnavailableError(IngestError):
    """The blob could not be written (disk full, bucket unreachable): Out of resources."""

    dimse_status = 0xA700
    http_status = 503
