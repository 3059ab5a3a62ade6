"""Blobs in a local folder: a key can never name a file outside the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from carina.archive.storage.base import BlobStorageError
from carina.archive.storage.filesystem import FileSystemBlobStorage


@pytest.mark.parametrize("key", ["../outside.dcm", "a/../../outside.dcm", "/etc/passwd"])
def test_a_key_that_leaves_the_folder_is_refused(tmp_path: Path, key: str) -> None:
    storage = FileSystemBlobStorage(tmp_path / "blobs")
    staged = tmp_path / "staged"
    staged.write_bytes(b"DICM")
    with pytest.raises(BlobStorageError, match="leaves the storage folder"):
        storage.put(key, staged)
    with pytest.raises(BlobStorageError, match="leaves the storage folder"):
        storage.open(key)
    assert not (tmp_path / "outside.dcm").exists()
    assert staged.exists()


def test_a_key_inside_the_folder_is_stored_and_read_back(tmp_path: Path) -> None:
    storage = FileSystemBlobStorage(tmp_path / "blobs")
    staged = tmp_path / "staged"
    staged.write_bytes(b"DICM")
    storage.put("1/2/a/../b.dcm", staged)
    assert (tmp_path / "blobs" / "1" / "2" / "b.dcm").read_bytes() == b"DICM"
    with storage.open("1/2/b.dcm") as handle:
        assert handle.read() == b"DICM"
    assert list(storage.iter_keys()) == ["1/2/b.dcm"]
