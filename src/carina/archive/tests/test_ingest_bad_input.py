"""Bad input gets a clear error naming the file and the reason; nothing else changes."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from carina.archive.ingest import IngestError, Origin, ingest
from carina.archive.ingest.errors import (
    InvalidUIDError,
    MissingAttributeError,
    NotDicomError,
    UnknownTransferSyntaxError,
)
from carina.archive.models import Source
from carina.core.testing import make_ct_slice, shipped_file, write_series
from carina.tenancy.models import Hospital

pytestmark = pytest.mark.django_db


@pytest.fixture
def populated(tmp_path: Path, hospital: Hospital) -> None:
    """An archive that already holds a small study, so that 'nothing changed' means something."""
    for path in write_series(tmp_path / "existing", 3):
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT))


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _bad_uid_file(tmp_path: Path, **attrs: object) -> Path:
    ds = make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0, size=8)
    for keyword, value in attrs.items():
        if value is None:
            delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    path = tmp_path / "bad.dcm"
    ds.preamble = b"\x00" * 128
    ds.save_as(path, enforce_file_format=False)
    return path


CASES: list[tuple[str, Callable[[Path], Path], type[IngestError], str]] = [
    ("empty file", lambda t: _write(t, "empty.dcm", b""), NotDicomError, "the file is empty"),
    (
        "not DICOM",
        lambda t: _write(t, "notes.txt", b"Patient notes, not an image\n" * 50),
        NotDicomError,
        "not a DICOM Part 10 file",
    ),
    ("missing meta header", lambda t: shipped_file("no_meta.dcm"), NotDicomError, "'DICM' prefix"),
    (
        "meta without transfer syntax",
        lambda t: shipped_file("meta_missing_tsyntax.dcm"),
        NotDicomError,
        "no Transfer Syntax UID",
    ),
    ("truncated", lambda t: shipped_file("rtplan_truncated.dcm"), NotDicomError, "truncated"),
    (
        "truncated pixel data",
        lambda t: _write(t, "cut.dcm", shipped_file("CT_small.dcm").read_bytes()[:20000]),
        NotDicomError,
        "truncated",
    ),
    (
        "missing StudyInstanceUID",
        lambda t: shipped_file("JPEGLSNearLossless_16.dcm"),
        MissingAttributeError,
        "StudyInstanceUID (0020,000D) is missing",
    ),
    (
        "missing SOPInstanceUID",
        lambda t: _bad_uid_file(t, SOPInstanceUID=None),
        MissingAttributeError,
        "SOPInstanceUID (0008,0018) is missing",
    ),
    (
        "missing SeriesInstanceUID",
        lambda t: _bad_uid_file(t, SeriesInstanceUID=None),
        MissingAttributeError,
        "SeriesInstanceUID (0020,000E) is missing",
    ),
    (
        "invalid UID letters",
        lambda t: _bad_uid_file(t, StudyInstanceUID="1.2.abc.4"),
        InvalidUIDError,
        "'1.2.abc.4' is not a valid UID",
    ),
    (
        "invalid UID leading zero",
        lambda t: _bad_uid_file(t, SeriesInstanceUID="1.2.03.4"),
        InvalidUIDError,
        "SeriesInstanceUID (0020,000E) '1.2.03.4' is not a valid UID",
    ),
    (
        "UID too long",
        lambda t: _bad_uid_file(t, SOPInstanceUID="1." + "2" * 70),
        InvalidUIDError,
        "is not a valid UID",
    ),
]


@pytest.mark.usefixtures("populated")
@pytest.mark.parametrize(("label", "make", "error", "reason"), CASES, ids=[c[0] for c in CASES])
def test_bad_object_is_refused_with_reason_and_nothing_changes(
    label: str,
    make: Callable[[Path], Path],
    error: type[IngestError],
    reason: str,
    tmp_path: Path,
    hospital: Hospital,
    snapshot: Callable[[], dict[str, object]],
) -> None:
    path = make(tmp_path)
    before = snapshot()
    with pytest.raises(error) as caught:
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT), name=path.name)
    assert reason in caught.value.reason
    assert caught.value.message.startswith(f"{path.name}: ")
    assert caught.value.dimse_status in range(0xA700, 0xD000)
    assert 400 <= caught.value.http_status < 600
    assert snapshot() == before


def test_unknown_transfer_syntax_is_refused(
    tmp_path: Path, hospital: Hospital, snapshot: Callable[[], dict[str, object]]
) -> None:
    ds = make_ct_slice(study_uid=generate_uid(), series_uid=generate_uid(), index=0, size=8)
    path = tmp_path / "private-ts.dcm"
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes().replace(b"1.2.840.10008.1.2.1\x00", b"1.2.3.4.5.6.7.8.9.0\x00")
    path.write_bytes(data)
    before = snapshot()
    with pytest.raises(UnknownTransferSyntaxError) as caught:
        ingest(path, hospital=hospital, origin=Origin(Source.IMPORT), name="private-ts.dcm")
    assert "'1.2.3.4.5.6.7.8.9.0' is not a known DICOM transfer syntax" in caught.value.message
    assert caught.value.http_status == 415
    assert snapshot() == before


def test_stream_source_is_accepted_like_a_file(hospital: Hospital) -> None:
    data = shipped_file("CT_small.dcm").read_bytes()
    result = ingest(
        io.BytesIO(data),
        hospital=hospital,
        origin=Origin(Source.API, "alice"),
        name="upload CT_small.dcm",
    )
    assert result.size_bytes == len(data)


def test_unreadable_path_is_reported(tmp_path: Path, hospital: Hospital) -> None:
    with pytest.raises(NotDicomError) as caught:
        ingest(tmp_path / "missing.dcm", hospital=hospital, origin=Origin(Source.IMPORT))
    assert "cannot be read" in caught.value.reason
