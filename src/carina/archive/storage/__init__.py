"""Blob storage for DICOM objects: a folder under CARINA_HOME, or an S3-compatible bucket.

The backend is chosen by ``CARINA_STORAGE_URL`` (see ``carina.config.env``). Both implement
:class:`BlobStorage`; keys come from :func:`carina.archive.storage.keys.blob_key`.
"""

from __future__ import annotations

import threading

from django.conf import settings

from carina.archive.storage.base import BlobStorage, BlobStorageError

__all__ = ["BlobStorage", "BlobStorageError", "get_storage", "reset_storage"]

_lock = threading.Lock()
_cache: dict[object, BlobStorage] = {}


def get_storage() -> BlobStorage:
    """The configured blob store (one per process and configuration)."""
    location = settings.CARINA_STORAGE
    with _lock:
        storage = _cache.get(location)
        if storage is None:
            if location.scheme == "s3":
                from carina.archive.storage.s3 import S3BlobStorage

                storage = S3BlobStorage(location)
            else:
                from carina.archive.storage.filesystem import FileSystemBlobStorage

                assert location.path is not None
                storage = FileSystemBlobStorage(location.path)
            _cache[location] = storage
        return storage


def reset_storage() -> None:
    """Forget cached backends (tests change the configuration)."""
    with _lock:
        _cache.clear()
