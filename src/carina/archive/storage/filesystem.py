"""Blobs as files in a folder, written durably: temp file, fsync, rename, fsync the folder."""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from carina.archive.storage.base import BlobStorageError


def fsync_dir(path: Path) -> None:
    """Flush a directory entry change (a rename or create) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileSystemBlobStorage:
    """Blob storage in a local folder (the embedded default: ``CARINA_HOME/blobs``)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._prefix = os.path.join(os.path.abspath(root), "")

    def _path(self, key: str) -> Path:
        """The file of ``key``; a key that would leave the folder (``..``, an absolute path)
        is refused. Keys are made by Carina and never contain symbolic links, so the path is
        normalised as text, without a system call per folder level."""
        path = os.path.normpath(os.path.join(self._prefix, key))
        if not path.startswith(self._prefix):
            raise BlobStorageError(f"blob key {key!r} leaves the storage folder")
        return Path(path)

    def put(self, key: str, staged: Path) -> None:
        target = self._path(key)
        created = _makedirs(target.parent)
        if target.exists():  # keys are unique per attempt: never overwrite a stored object
            raise BlobStorageError(f"blob {key} already exists")
        with staged.open("rb") as handle:
            os.fsync(handle.fileno())
        try:
            os.replace(staged, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise BlobStorageError(f"cannot store blob {key}: {exc.strerror}") from exc
            # Staging on another file system: copy next to the target, fsync, rename.
            temp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
            try:
                with staged.open("rb") as src, temp.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                    dst.flush()
                    os.fsync(dst.fileno())
                os.replace(temp, target)
            finally:
                temp.unlink(missing_ok=True)
            staged.unlink(missing_ok=True)
        for folder in [target.parent, *created]:
            fsync_dir(folder)

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise BlobStorageError(f"blob {key} is missing from {self.describe()}") from None

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink()
        except FileNotFoundError:
            return
        fsync_dir(path.parent)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def iter_keys(self) -> Iterator[str]:
        if not self.root.exists():
            return
        for dirpath, _dirs, files in os.walk(self.root):
            for name in files:
                if name.endswith(".dcm") and not name.startswith("."):
                    yield (Path(dirpath) / name).relative_to(self.root).as_posix()

    def probe(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if not os.access(self.root, os.W_OK):
            raise BlobStorageError(f"{self.root} is not writable")

    def describe(self) -> str:
        return f"file:{self.root}"


def _makedirs(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; return the parents whose entries changed."""
    missing: list[Path] = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    folder.mkdir(parents=True, exist_ok=True)
    return [p.parent for p in missing]
