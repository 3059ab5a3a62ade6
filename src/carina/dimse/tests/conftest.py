"""Fixtures for DIMSE tests: a listener running in-process on 127.0.0.1, DCMTK as the peer,
and a precise comparison of what was sent with what the archive keeps."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pydicom
import pytest
from pydicom.dataset import Dataset
from pynetdicom.dsutils import split_dataset

from carina.archive.models import Instance
from carina.archive.storage import get_storage
from carina.dimse.listener import Listener, ListenerConfig
from carina.tenancy.models import Hospital

HOST = "127.0.0.1"
#: Data Set Trailing Padding and Pixel Data (see _elements).
SKIPPED = frozenset({0xFFFCFFFC, 0x7FE00010})
SCU_AE = "TESTSCU"


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def make_listener(hospital: Hospital, spool: Path) -> Iterator[Callable[..., Listener]]:
    """Start listeners on 127.0.0.1 (a free port); every one is stopped after the test."""
    started: list[Listener] = []

    def make(**overrides: Any) -> Listener:
        config = ListenerConfig(
            host=HOST,
            port=0,
            ae_title="CARINA",
            acse_timeout=5,
            dimse_timeout=10,
            network_timeout=10,
            grace_period=5,
            spool_dir=spool,
        )
        config = replace(config, **overrides)
        listener = Listener(config).start()
        started.append(listener)
        return listener

    yield make
    for listener in reversed(started):
        listener.stop(grace_period=5)


@pytest.fixture
def listener(make_listener: Callable[..., Listener]) -> Listener:
    return make_listener()


def dcmtk(tool: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run a DCMTK tool from /usr/bin (pynetdicom's same-named scripts are not it)."""
    return subprocess.run(
        [f"/usr/bin/{tool}", *args],
        capture_output=True,
        text=True,
        errors="replace",  # DCMTK prints values in the data set's character set
        timeout=timeout,
        check=False,
    )


def scu_args(port: int, called: str = "CARINA", calling: str = SCU_AE) -> list[str]:
    return ["-aet", calling, "-aec", called, HOST, str(port)]


def wait_idle(listener: Listener, timeout: float = 15) -> None:
    """Wait until the listener has no association in progress."""
    deadline = time.monotonic() + timeout
    while listener.active_associations and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not listener.active_associations, "an association thread did not end"


def data_set_bytes(path: Path) -> bytes:
    """The data set part of a Part 10 file: everything after the file meta (PS3.10 7.1)."""
    _, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def stored_blob(hospital: Hospital, sop_instance_uid: str) -> tuple[Instance, bytes]:
    instance = Instance.objects.for_hospital(hospital).get(sop_instance_uid=sop_instance_uid)
    with get_storage().open(instance.blob_key) as handle:
        return instance, handle.read()


def assert_archived_as_sent(
    hospital: Hospital,
    sent: Path,
    calling_ae: str = SCU_AE,
    *,
    same_bytes: bool = False,
    syntax: str | None = None,
) -> Instance:
    """The archive holds ``sent`` for ``hospital``, as received over the network.

    C-STORE carries the data set without the file meta, so what is compared is:
    the transfer syntax (the object was not converted; ``syntax`` when the sender is known to
    convert, e.g. between uncompressed syntaxes), every data element of the data set
    (pydicom equality, so values and VRs), and the Pixel Data bytes; with ``same_bytes``, the
    whole encoded data set byte for byte. The file meta is Carina's own: its Source
    Application Entity Title names the sender.
    """
    original = pydicom.dcmread(sent)
    instance, blob = stored_blob(hospital, str(original.SOPInstanceUID))
    path = sent.parent / f".{sent.name}.stored"
    path.write_bytes(blob)
    try:
        stored = pydicom.dcmread(path)
        expected = syntax or original.file_meta.TransferSyntaxUID
        assert stored.file_meta.TransferSyntaxUID == expected
        assert instance.transfer_syntax_uid == expected
        assert stored.file_meta.SourceApplicationEntityTitle == calling_ae
        assert stored.file_meta.MediaStorageSOPInstanceUID == original.SOPInstanceUID
        assert _differences(stored, original) == []
        if "PixelData" in original:
            assert stored.PixelData == original.PixelData
        if same_bytes:
            assert data_set_bytes(path) == data_set_bytes(sent)
    finally:
        path.unlink()
    assert instance.source == "dimse"
    assert instance.source_detail == calling_ae
    return instance


def _differences(stored: Dataset, original: Dataset) -> list[str]:
    a, b = _elements(stored), _elements(original)
    tags = sorted(set(a.keys()) | set(b.keys()))
    return [
        f"{tag} {a.get(tag)!r:.120} != {b.get(tag)!r:.120}"
        for tag in tags
        if a.get(tag) != b.get(tag)
    ]


def _elements(ds: Dataset) -> Dataset:
    """The data set without what a sender may change when it sends a file: group lengths
    (gggg,0000) and Data Set Trailing Padding (FFFC,FFFC), which DCMTK drops, and Pixel Data,
    compared as bytes instead (DCMTK corrects encapsulated Pixel Data labelled OW to OB,
    PS3.5 A.4)."""
    copy = Dataset()  # a new data set: Dataset(ds) would share, and then lose, ds's elements
    for elem in ds:
        if elem.tag.element != 0 and elem.tag not in SKIPPED:
            copy.add(elem)
    return copy
