"""The blob storage interface shared by the file-system and S3 backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol


class BlobStorageError(OSError):
    """The blob store could not complete an operation."""


class BlobStorage(Protocol):
    """Where the bytes of DICOM objects are kept, addressed by key."""

    def put(self, key: str, staged: Path) -> None:
        """Make the staged file durable under ``key``; it is consumed (moved or uploaded).

        Returns only once the object is durable: fsync'ed and renamed in place, or uploaded.
        Keys are unique per attempt (see ``keys.blob_key``); a stored object is never
        overwritten.
        """

    def open(self, key: str) -> BinaryIO:
        """A streaming reader of the object (never the whole object in memory)."""

    def delete(self, key: str) -> None:
        """Remove the object; a missing one is not an error."""

    def exists(self, key: str) -> bool:
        """Whether the object is stored."""

    def iter_keys(self) -> Iterator[str]:
        """Every key stored (for integrity checks and tests)."""

    def probe(self) -> None:
        """Raise if the store cannot be reached or written."""

    def describe(self) -> str:
        """A short human description (``file:/path`` or ``s3://bucket/prefix``)."""
